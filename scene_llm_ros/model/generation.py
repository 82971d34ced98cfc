"""Token generation: a greedy loop that streams and stops on request, and beam search."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import StoppingCriteria, StoppingCriteriaList


@dataclass
class Decoded:
    """Generated ids (end-of-sequence included when emitted) and whether it was cancelled."""

    token_ids: list[int]
    cancelled: bool


def greedy_decode(llm, cache, first_logits: torch.Tensor, *, max_new_tokens: int,
                  stop_ids: set[int], on_token: Callable[[list[int]], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Decoded:
    """Greedy decoding from a prefilled cache.

    :param llm: the causal LM.
    :param cache: KV cache of the prompt; extended in place.
    :param first_logits: (V,) logits after the last prompt token.
    :param max_new_tokens: generation limit.
    :param stop_ids: ids that end the answer (kept in the output).
    :param on_token: called with all ids so far after every new token.
    :param should_stop: polled before every token; True cancels generation.
    """
    ids: list[int] = []
    logits = first_logits
    while len(ids) < max_new_tokens:
        if should_stop is not None and should_stop():
            return Decoded(ids, cancelled=True)
        token = int(logits.argmax())
        ids.append(token)
        if on_token is not None:
            on_token(ids)
        if token in stop_ids or len(ids) == max_new_tokens:
            break
        out = llm(input_ids=torch.tensor([[token]], device=logits.device),
                  past_key_values=cache, use_cache=True)
        logits = out.logits[0, -1]
    return Decoded(ids, cancelled=False)


class _PollStop(StoppingCriteria):
    """Ends beam search when ``should_stop()`` turns True, and remembers that it did."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop
        self.triggered = False

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        self.triggered = self.triggered or bool(self.should_stop())
        return torch.full((input_ids.shape[0],), self.triggered, dtype=torch.bool,
                          device=input_ids.device)


def beam_decode(llm, cache, prompt_embeddings: torch.Tensor, *, num_beams: int,
                max_new_tokens: int, stop_ids: set[int], pad_id: int,
                should_stop: Callable[[], bool] | None = None) -> Decoded:
    """Beam search with ``generate``, reusing a KV cache of the prompt's first tokens.

    :param llm: the causal LM.
    :param cache: KV cache of a prefix of the prompt (batch 1); consumed.
    :param prompt_embeddings: (1, T, H) embeddings of the whole prompt.
    :param should_stop: polled after every step through a stopping criterion.
    """
    cache.batch_repeat_interleave(num_beams)
    poll = _PollStop(should_stop or (lambda: False))
    out = llm.generate(inputs_embeds=prompt_embeddings, past_key_values=cache,
                       num_beams=num_beams, do_sample=False, max_new_tokens=max_new_tokens,
                       eos_token_id=sorted(stop_ids), pad_token_id=pad_id,
                       stopping_criteria=StoppingCriteriaList([poll]))
    ids = out[0].tolist()
    # generate pads finished sequences; cut after the first stop token.
    for i, token in enumerate(ids):
        if token in stop_ids:
            ids = ids[:i + 1]
            break
    return Decoded(ids, cancelled=poll.triggered)
