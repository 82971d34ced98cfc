"""Prompt construction for every task, shared by inference and teacher-forced training.

Layout (``prompt_format_version`` 1): the system prompt, the start of the user turn and the
K scene tokens come first, so that prefix is the same for every question about a scene and its
KV cache can be reused; then the task instruction, the prompt points, the question, the
start of the assistant turn and, for models with referent tokens, the ``<referent>``
placeholders. A ``<scene>`` placeholder is expanded into K ``<scene>`` tokens
here, like Llava's processor expands ``<image>``, so the sequence length never changes inside
the model. With a chat template the tokenizer's own template renders the turns, otherwise the
fixed plain template ``{system}\\n\\nUSER: {user}\\nASSISTANT:`` does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jinja2 import TemplateError

from scene_llm_ros.model.errors import (
    InvalidPromptPointsError,
    InvalidQuestionError,
    UnknownTaskError,
)

if TYPE_CHECKING:
    from transformers import GenerationConfig, PreTrainedTokenizerBase

SCENE_TOKEN = "<scene>"
GROUND_TOKEN = "<ground>"
POINT_TOKEN = "<point>"
SPECIAL_TOKENS = (SCENE_TOKEN, GROUND_TOKEN, POINT_TOKEN)
#: Placeholder of a referent token; only models with ``referent_tokens`` add it.
REFERENT_TOKEN = "<referent>"
RESERVED_TOKENS = (*SPECIAL_TOKENS, REFERENT_TOKEN)

#: Task names: "" lets the model infer the task from the question (it is trained on a mix).
TASKS = ("", "qa", "ground", "caption", "situated")
TASK_INSTRUCTIONS = {
    "": "",
    "qa": "Answer the question about the scene briefly.",
    "ground": "Find the objects the description refers to and mark each with a grounding token.",
    "caption": "Describe the object at the marked point or the described object.",
    "situated": "Imagine you are in the situation described, then answer the question.",
}
#: Label value the loss ignores (PyTorch's cross-entropy default).
IGNORE_INDEX = -100


@dataclass(frozen=True)
class SpecialTokenIds:
    """Vocabulary ids of the model's added tokens."""

    scene: int
    ground: int
    point: int
    #: None when the tokenizer has no ``<referent>`` token.
    referent: int | None = None


@dataclass(frozen=True)
class PromptIds:
    """A tokenized prompt, split where the shareable scene prefix ends.

    :ivar prefix_ids: system prompt, user-turn start and ``num_scene_tokens`` ``<scene>`` ids.
    :ivar suffix_ids: instruction, ``<point>`` ids, question, ``<referent>`` ids and
        assistant-turn start.
    """

    prefix_ids: list[int]
    suffix_ids: list[int]

    @property
    def input_ids(self) -> list[int]:
        return self.prefix_ids + self.suffix_ids


@dataclass(frozen=True)
class TrainingExample:
    """One teacher-forcing sequence.

    :ivar input_ids: int64 (T,) prompt then target ids.
    :ivar labels: int64 (T,) ``input_ids`` with every prompt position set to
        :data:`IGNORE_INDEX`, so only the answer is learned (shift happens in the LLM's loss).
    :ivar num_prompt_tokens: length of the prompt part.
    :ivar num_ground_tokens: ``<ground>`` tokens in the target, one per referred object.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    num_prompt_tokens: int
    num_ground_tokens: int


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> SpecialTokenIds:
    """Ids of ``<scene>``, ``<ground>``, ``<point>`` and, when present, ``<referent>``.

    :raises ValueError: when the tokenizer lacks one of them (see :func:`add_special_tokens`).
    """
    vocab = tokenizer.get_vocab()
    missing = [token for token in SPECIAL_TOKENS if token not in vocab]
    if missing:
        raise ValueError(f"the tokenizer has no {missing} tokens; call add_special_tokens first")
    return SpecialTokenIds(*(vocab[token] for token in SPECIAL_TOKENS),
                           referent=vocab.get(REFERENT_TOKEN))


def add_special_tokens(tokenizer: PreTrainedTokenizerBase, *, referent: bool = False) -> int:
    """Add the model's tokens as special tokens (so decoding can skip them).

    :param referent: also add ``<referent>`` (models with referent tokens).
    :return: how many tokens were new.
    """
    tokens = [*SPECIAL_TOKENS, REFERENT_TOKEN] if referent else list(SPECIAL_TOKENS)
    return tokenizer.add_tokens(tokens, special_tokens=True)


def stop_token_ids(tokenizer: PreTrainedTokenizerBase,
                   generation_config: GenerationConfig | None = None) -> set[int]:
    """Token ids that end an answer: the tokenizer's EOS and the LLM's configured EOS ids."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(generation_config, "eos_token_id", None)
    if configured is not None:
        ids.update(int(i) for i in (configured if isinstance(configured, list) else [configured]))
    if not ids:
        raise ValueError("neither the tokenizer nor the LLM defines an end-of-sequence token")
    return ids


def answer_text(tokenizer: PreTrainedTokenizerBase, token_ids: list[int]) -> str:
    """Readable answer text: special tokens dropped, ``<ground>`` removed with its leading space.

    Plain ``skip_special_tokens`` decoding would leave "the chair  next to" where a
    ``<ground>`` stood, so the grounding tokens are removed from the text instead.
    """
    ground = special_token_ids(tokenizer).ground
    special = set(tokenizer.all_special_ids) | set(special_token_ids(tokenizer).__dict__.values())
    special.discard(None)
    kept = [i for i in token_ids if i == ground or i not in special]
    text = tokenizer.decode(kept, skip_special_tokens=False)
    return re.sub(r"[ \t]*" + re.escape(GROUND_TOKEN), "", text).strip()


def _check_text(name: str, text, *, allow_points: bool) -> str:
    if not isinstance(text, str):
        raise InvalidQuestionError(f"the {name} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidQuestionError(f"the {name} is empty")
    reserved = [t for t in RESERVED_TOKENS if t in text and not (allow_points and t == POINT_TOKEN)]
    if reserved:
        raise InvalidQuestionError(f"the {name} contains the reserved tokens {reserved}: "
                                   f"{text!r}")
    return text.strip()


def user_message(question: str, *, task: str = "", num_points: int = 0,
                 situation: str | None = None) -> str:
    """The user turn's text with one ``<scene>`` placeholder first.

    :param question: the request; may place ``<point>`` placeholders itself, else one per
        prompt point is put before it.
    :param task: one of :data:`TASKS`.
    :param num_points: prompt points given with the question.
    :param situation: SQA3D situation text (task "situated"); when None the question is
        expected to state it.
    :raises UnknownTaskError: for a task not in :data:`TASKS`.
    :raises InvalidQuestionError: for an empty question/situation or one with reserved tokens.
    :raises InvalidPromptPointsError: when the question's ``<point>`` count is not
        ``num_points``.
    """
    if task not in TASKS:
        raise UnknownTaskError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    question = _check_text("question", question, allow_points=True)
    placed = question.count(POINT_TOKEN)
    if placed and placed != num_points:
        raise InvalidPromptPointsError(f"the question has {placed} {POINT_TOKEN} placeholders "
                                       f"but {num_points} prompt points were given")
    lines = [SCENE_TOKEN]
    if TASK_INSTRUCTIONS[task]:
        lines.append(TASK_INSTRUCTIONS[task])
    if num_points and not placed:
        lines.append("Marked points: " + " ".join([POINT_TOKEN] * num_points))
    if situation is not None:
        lines.append("Situation: " + _check_text("situation", situation, allow_points=False))
        lines.append("Question: " + question)
    else:
        lines.append(question)
    return "\n".join(lines)


def _render(tokenizer: PreTrainedTokenizerBase, user_text: str, system_prompt: str,
            answer: str | None) -> tuple[str, str]:
    """(prompt text, target text); the target is empty when ``answer`` is None."""
    if tokenizer.chat_template:
        messages = [{"role": "system", "content": system_prompt},
                    {"role": "user", "content": user_text}]
        try:
            prompt = tokenizer.apply_chat_template(messages, tokenize=False,
                                                   add_generation_prompt=True)
        except TemplateError:
            # Some templates (e.g. Gemma's) reject a system turn; the system prompt then
            # opens the user turn, still before the scene tokens.
            messages = [{"role": "user", "content": f"{system_prompt}\n\n{user_text}"}]
            prompt = tokenizer.apply_chat_template(messages, tokenize=False,
                                                   add_generation_prompt=True)
        if answer is None:
            return prompt, ""
        full = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": answer}], tokenize=False)
        if not full.startswith(prompt):
            raise ValueError("the tokenizer's chat template does not render the prompt as a "
                             "prefix of the conversation, so targets cannot be cut from it")
        return prompt, full[len(prompt):]
    prompt = f"{system_prompt}\n\nUSER: {user_text}\nASSISTANT:"
    if answer is None:
        return prompt, ""
    return prompt, f" {answer}{tokenizer.eos_token or ''}"


def _encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    # Templates carry their own BOS/EOS text, so the tokenizer must not add more.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt_text: str,
                num_scene_tokens: int) -> PromptIds:
    if num_scene_tokens <= 0:
        raise ValueError(f"num_scene_tokens must be > 0, got {num_scene_tokens}")
    cut = prompt_text.index(SCENE_TOKEN) + len(SCENE_TOKEN)
    prefix = _encode(tokenizer, prompt_text[:cut])
    scene_id = special_token_ids(tokenizer).scene
    if prefix.count(scene_id) != 1 or prefix[-1] != scene_id:
        raise ValueError(f"the rendered prompt must hold exactly one {SCENE_TOKEN}, at the end "
                         f"of its prefix: {prompt_text[:cut]!r}")
    if not tokenizer.chat_template and tokenizer.bos_token_id is not None:
        prefix = [tokenizer.bos_token_id, *prefix]
    prefix = prefix[:-1] + [scene_id] * num_scene_tokens
    return PromptIds(prefix_ids=prefix, suffix_ids=_encode(tokenizer, prompt_text[cut:]))


def build_prompt(tokenizer: PreTrainedTokenizerBase, question: str, *, num_scene_tokens: int,
                 task: str = "", num_points: int = 0, situation: str | None = None,
                 num_referents: int = 0, system_prompt: str) -> PromptIds:
    """Tokenize the prompt for a question about a scene of ``num_scene_tokens`` tokens.

    :param num_referents: ``<referent>`` placeholders at the very end, after the start of the
        assistant turn, so the position that predicts the first answer token is one of the
        objects the model's segment listener finds the question to mean.

    :raises UnknownTaskError, InvalidQuestionError, InvalidPromptPointsError: see
        :func:`user_message`.
    """
    user_text = user_message(question, task=task, num_points=num_points, situation=situation)
    prompt_text, _ = _render(tokenizer, user_text, system_prompt, None)
    return _prompt_ids(tokenizer, prompt_text + REFERENT_TOKEN * num_referents,
                       num_scene_tokens)


def build_training_example(tokenizer: PreTrainedTokenizerBase, question: str, answer: str, *,
                           num_scene_tokens: int, task: str = "", num_points: int = 0,
                           situation: str | None = None, num_referents: int = 0,
                           system_prompt: str) -> TrainingExample:
    """Prompt and target ids for teacher forcing, with the prompt masked out of the labels.

    The prompt ids are exactly those :func:`build_prompt` gives, so training sees what
    inference sees. ``answer`` marks each referred object with ``<ground>`` after its name.

    :raises InvalidQuestionError: when the answer is empty or has ``<scene>``/``<point>``.
    """
    if not isinstance(answer, str) or not answer.strip():
        raise InvalidQuestionError(f"the training answer is empty: {answer!r}")
    if any(token in answer for token in RESERVED_TOKENS if token != GROUND_TOKEN):
        raise InvalidQuestionError(f"the answer may only contain {GROUND_TOKEN}: {answer!r}")
    user_text = user_message(question, task=task, num_points=num_points, situation=situation)
    prompt_text, target_text = _render(tokenizer, user_text, system_prompt, answer.strip())
    prompt = _prompt_ids(tokenizer, prompt_text + REFERENT_TOKEN * num_referents,
                         num_scene_tokens)
    target = _encode(tokenizer, target_text)
    input_ids = torch.tensor(prompt.input_ids + target, dtype=torch.long)
    labels = input_ids.clone()
    labels[:len(prompt.input_ids)] = IGNORE_INDEX
    ground_id = special_token_ids(tokenizer).ground
    return TrainingExample(input_ids=input_ids, labels=labels,
                           num_prompt_tokens=len(prompt.input_ids),
                           num_ground_tokens=target.count(ground_id))
