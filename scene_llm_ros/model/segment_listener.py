"""A referring-expression listener: which object segment does a description mean?

The tiny LLM of the embedded model names the right class of a referred object far more often
than it finds the right instance (it reads "the chair closest to the window" as "a chair").
The listener scores the scene's object segments
(:mod:`scene_llm_ros.grounding.segment_features`) against the question's tokens, in the
manner of ReferIt3D-style neural listeners: segments read the words through cross-attention
and each other through relation layers whose messages depend on the pair's geometry (offset,
gap, size ratio), so "closest to the window" can single out one of several chairs; a last
comparison (:mod:`~scene_llm_ros.model.segment_comparison`) ranks each segment among the
description's candidates by distance to its anchors and by size before the segments read the
words once more. Segments enter with their colours relative to the room's (grey-world
constancy), which name "the white chair" in a dim room as well as in a lit one. It uses the
scene LLM's tokenizer and is stored beside the LLM in ``segment_listener/``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scene_llm_ros.grounding.segment_features import (
    COLOUR_FEATURES,
    LOG_SIZES,
    PAIR_FEATURES,
    SEGMENT_GEOMETRY_FEATURES,
    SegmentFeatures,
    quarter_turned,
)
from scene_llm_ros.model import checkpoint
from scene_llm_ros.model.segment_comparison import CandidateComparison

LISTENER_DIR = "segment_listener"
_WEIGHTS_NAME = "segment_listener.safetensors"
_WEIGHTS_PREFIX = "listener"


@dataclass
class ListenerShape:
    """The size of a :class:`SegmentListener` (what a training config chooses).

    :ivar hidden_size: width of word and segment states.
    :ivar text_layers: transformer layers over the question.
    :ivar relation_layers: segment-to-segment message passing rounds.
    :ivar heads: attention heads.
    :ivar anchor_heads: anchors a superlative can be measured from ("closest to the window").
    :ivar max_segments: the largest segments scored; the rest are specks and parts.
    :ivar max_question_tokens: longer questions are cut.
    """

    hidden_size: int = 128
    text_layers: int = 2
    relation_layers: int = 2
    heads: int = 4
    anchor_heads: int = 2
    max_segments: int = 48
    max_question_tokens: int = 96

    def __post_init__(self) -> None:
        for name in ("hidden_size", "text_layers", "heads", "anchor_heads", "max_segments",
                     "max_question_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{type(self).__name__}.{name} must be a positive int, got "
                                 f"{value!r}")
        if self.relation_layers < 0 or self.hidden_size % self.heads:
            raise ValueError("relation_layers must be >= 0 and hidden_size divisible by heads")


class ListenerReading(NamedTuple):
    """What :meth:`SegmentListener.encode` makes of a question and a scene.

    :ivar state: float (B, S, W) segment states.
    :ivar words: float (B, L, W) word states.
    :ivar candidates: float (B, S) logits of the segments the description could mean.
    """

    state: torch.Tensor
    words: torch.Tensor
    candidates: torch.Tensor


@dataclass
class SegmentListenerConfig(ListenerShape):
    """A listener's shape plus what its data gives it.

    :ivar vocab_size: size of the tokenizer the question ids come from.
    :ivar class_names: the segment classes (the semantic map's), in one-hot order.
    """

    vocab_size: int = 0
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.vocab_size, int) or self.vocab_size <= 0:
            raise ValueError(f"SegmentListenerConfig.vocab_size must be a positive int, got "
                             f"{self.vocab_size!r}")
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            raise ValueError("class_names must be a non-empty list without duplicates")


class SegmentListener(checkpoint.SideModuleFiles, nn.Module):
    """Scores the segments of a scene for a question.

    :param config: the listener's shape.
    """

    config_class = SegmentListenerConfig
    weights_name = _WEIGHTS_NAME
    weights_prefix = _WEIGHTS_PREFIX
    description = "segment listener"

    def __init__(self, config: SegmentListenerConfig) -> None:
        super().__init__()
        self.config = config
        width = config.hidden_size
        self.word = nn.Embedding(config.vocab_size, width)
        self.word_position = nn.Embedding(config.max_question_tokens, width)
        layer = nn.TransformerEncoderLayer(width, config.heads, 2 * width, dropout=0.1,
                                           batch_first=True, norm_first=True)
        self.text = nn.TransformerEncoder(layer, config.text_layers, enable_nested_tensor=False)
        classes = len(config.class_names)
        inputs = classes + SEGMENT_GEOMETRY_FEATURES + COLOUR_FEATURES
        self.segment = nn.Sequential(nn.Linear(inputs, width), nn.GELU(),
                                     nn.Linear(width, width))
        rounds = config.relation_layers + 1
        self.read_norm = nn.ModuleList(nn.LayerNorm(width) for _ in range(rounds))
        self.read = nn.ModuleList(nn.MultiheadAttention(width, config.heads, batch_first=True)
                                  for _ in range(rounds))
        # Relation rounds: a message from j to i is an MLP of (state_i, state_j, pair_ij),
        # split into per-part projections so the (S, S) grid costs one width-sized add.
        self.relation_norm = nn.ModuleList(nn.LayerNorm(width)
                                           for _ in range(config.relation_layers))
        self.from_receiver = nn.ModuleList(nn.Linear(width, width)
                                           for _ in range(config.relation_layers))
        self.from_sender = nn.ModuleList(nn.Linear(width, width, bias=False)
                                         for _ in range(config.relation_layers))
        self.from_pair = nn.ModuleList(nn.Linear(PAIR_FEATURES, width, bias=False)
                                       for _ in range(config.relation_layers))
        self.message = nn.ModuleList(nn.Linear(width, width)
                                     for _ in range(config.relation_layers))
        self.attention = nn.ModuleList(nn.Linear(width, 1)
                                       for _ in range(config.relation_layers))
        self.comparison = CandidateComparison(
            width, config.anchor_heads,
            slice(classes + LOG_SIZES.start, classes + LOG_SIZES.stop))
        self.score = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def forward(self, question_ids: torch.Tensor, segments: torch.Tensor, pairs: torch.Tensor,
                segment_mask: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
        """Batched scores.

        :param question_ids: int64 (B, L) token ids, padded with -1.
        :param segments: float (B, S, F) segment features.
        :param pairs: float (B, S, S, PAIR_FEATURES).
        :param segment_mask: bool (B, S), True for real segments.
        :param colours: float (B, S, COLOUR_FEATURES) the segments' colours relative to the
            room's.
        :return: float (B, S) logits; padding segments get a very low score.
        """
        return self.logits(question_ids, segments, pairs, segment_mask, colours)[0]

    def logits(self, question_ids: torch.Tensor, segments: torch.Tensor, pairs: torch.Tensor,
               segment_mask: torch.Tensor, colours: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward`'s scores and the candidate logits of the comparison (which
        training also fits to the target, so that they settle on the described class)."""
        reading = self.encode(question_ids, segments, pairs, segment_mask, colours)
        return self.score_states(reading.state, segment_mask), reading.candidates

    def score_states(self, state: torch.Tensor, segment_mask: torch.Tensor) -> torch.Tensor:
        """float (B, S) logits of :meth:`encode`'s segment states."""
        return self.score(state).squeeze(-1).masked_fill(~segment_mask, -1e9)

    def encode(self, question_ids: torch.Tensor, segments: torch.Tensor, pairs: torch.Tensor,
               segment_mask: torch.Tensor, colours: torch.Tensor) -> ListenerReading:
        """Segment states that have read the question and each other, and the word states.

        Takes :meth:`forward`'s inputs.
        """
        padding = question_ids < 0
        positions = torch.arange(question_ids.shape[1], device=question_ids.device)
        words = self.text(self.word(question_ids.clamp_min(0)) + self.word_position(positions),
                          src_key_padding_mask=padding)
        state = self.segment(torch.cat([segments, colours], dim=-1))
        for k in range(self.config.relation_layers):
            state = self._relate(k, self._read(k, state, words, padding), pairs, segment_mask)
        # The last read sees the ranks, so that "closest" and "farthest" can pick theirs.
        update, candidates = self.comparison(state, segments, pairs, segment_mask)
        state = self._read(self.config.relation_layers, state + update, words, padding)
        return ListenerReading(state, words, candidates)

    def _relate(self, round_index: int, state: torch.Tensor, pairs: torch.Tensor,
                segment_mask: torch.Tensor) -> torch.Tensor:
        """Segment states after a relation round: each receiver adds the attention-weighted
        mean of the messages its segments send it."""
        k = round_index
        normed = self.relation_norm[k](state)
        # In place: the (B, S, S, W) grid is the round's largest tensor.
        hidden = F.gelu(self.from_pair[k](pairs).add_(self.from_receiver[k](normed)[:, :, None])
                        .add_(self.from_sender[k](normed)[:, None]))
        weights = self.attention[k](hidden).squeeze(-1)
        weights = weights.masked_fill(~segment_mask[:, None, :], -1e9).softmax(dim=-1)
        # The message is affine in the hidden pair and each receiver's weights sum to 1, so
        # projecting the weighted mean of the hidden pairs equals weighting the projected
        # messages, at 1/S of the cost.
        return state + self.message[k](torch.einsum("bij,bijw->biw", weights, hidden))

    def _read(self, round_index: int, state: torch.Tensor, words: torch.Tensor,
              padding: torch.Tensor) -> torch.Tensor:
        """Segment states after a cross-attention read of the words."""
        return state + self.read[round_index](self.read_norm[round_index](state), words, words,
                                              key_padding_mask=padding, need_weights=False)[0]

    def extend_vocabulary(self, vocab_size: int) -> None:
        """Grow the word table to ``vocab_size`` ids (the model's tokenizer gained special
        tokens, which never occur in question text); the new rows are zeros."""
        old = self.word.weight
        if vocab_size < len(old):
            raise ValueError(f"cannot shrink the vocabulary from {len(old)} to {vocab_size}")
        if vocab_size == len(old):
            return
        word = nn.Embedding(vocab_size, old.shape[1], device=old.device, dtype=old.dtype)
        with torch.no_grad():
            word.weight.zero_()
            word.weight[:len(old)] = old
        self.word = word
        self.config.vocab_size = vocab_size

    @torch.inference_mode()
    def scores(self, question_ids: list[int], features: SegmentFeatures) -> np.ndarray:
        """float (S,) log-probabilities that each described segment is the one meant.

        The listener reads the room as it is and turned by one, two and three quarter turns
        about +Z, and the four readings' probabilities are averaged: it learnt from turned
        rooms, and its slips in one reading are mostly not made in the others (held out,
        picks right 0.814 -> 0.820).
        """
        if not len(features.segments):
            return np.zeros(0)
        device = self.word.weight.device
        turned = [quarter_turned(features.objects, features.pairs, len(self.config.class_names),
                                 turns) for turns in range(4)]
        ids = torch.tensor([question_ids[:self.config.max_question_tokens]] * len(turned),
                           device=device)
        objects, pairs = (torch.from_numpy(np.stack(arrays)).to(device)
                          for arrays in zip(*turned, strict=True))
        logits = self(ids, objects, pairs,
                      torch.ones(len(turned), len(features.segments), dtype=torch.bool,
                                 device=device),
                      torch.from_numpy(features.colours)[None].expand(len(turned), -1, -1)
                      .to(device))
        return logits.float().softmax(dim=-1).mean(dim=0).log().cpu().numpy()
