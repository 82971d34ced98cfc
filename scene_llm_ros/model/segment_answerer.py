"""A short-answer head over the scene's object segments (ScanQA / SQA3D questions).

A small LLM trained from scratch answers from the question's words and the answer priors,
not from the scene: on held-out rooms it says "yes" to every existence question and the
most common colour to every colour question, even with the listener's best segments in its
prompt. The answerer reads the scene the way the segment listener does (it starts as a copy
of it), then answers by classification over the answers seen in training, in the manner of
the ScanQA baseline and 3D-VisTA's QA head: the question's words, the segment it is about
(the listener's attention, supervised with ScanQA's object ids), a second segment related to
it (the anchor of "where is the lamp?" -> "on the nightstand", also supervised with the
object ids), their features and colours relative to the room, the pair's geometry, and a
soft count of the segments it asks for feed an MLP over the answer vocabulary; the attended
segment's colour adds its own evidence for the answers, as much as the question lets it. The
attended segment grounds the answer. It is stored beside the LLM in ``segment_answerer/``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch import nn

from scene_llm_ros.grounding.segment_features import (
    COLOUR_FEATURES,
    COLOUR_STATISTICS,
    PAIR_FEATURES,
    SEGMENT_GEOMETRY_FEATURES,
    SegmentFeatures,
)
from scene_llm_ros.model import checkpoint
from scene_llm_ros.model.segment_listener import SegmentListener, SegmentListenerConfig

ANSWERER_DIR = "segment_answerer"
_WEIGHTS_NAME = "segment_answerer.safetensors"
_WEIGHTS_PREFIX = "answerer"
# sigmoid(-3) = 0.05.
_CLOSED_GATE_BIAS = -3.0
#: Tasks whose answers are short and come from the answer vocabulary.
ANSWERER_TASKS = ("qa", "situated")


def answerer_question(question: str, situation: str | None) -> str:
    """The text the answerer reads: the situation (SQA3D), then the question."""
    return f"{situation.strip()} {question.strip()}" if situation else question.strip()


@dataclass
class SegmentAnswererConfig(SegmentListenerConfig):
    """A listener's shape and classes plus the answers it can give.

    :ivar answers: the answer vocabulary, most frequent in training first.
    """

    answers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.answers or len(set(self.answers)) != len(self.answers):
            raise ValueError("answers must be a non-empty list without duplicates")

    def listener_config(self) -> SegmentListenerConfig:
        """The config of the listener that reads the scene."""
        names = {f.name for f in fields(SegmentListenerConfig)}
        return SegmentListenerConfig(**{k: v for k, v in asdict(self).items() if k in names})


@dataclass(frozen=True)
class SegmentAnswer:
    """The answerer's choice for one question.

    :ivar text: the answer.
    :ivar probability: its probability among the vocabulary.
    :ivar segment: index (into the features' segments) of the segment the question is about.
    :ivar segment_probability: the attention on that segment.
    """

    text: str
    probability: float
    segment: int
    segment_probability: float


class SegmentAnswerer(checkpoint.SideModuleFiles, nn.Module):
    """Answers a question from the scene's segments.

    :param config: shape, classes and answer vocabulary.
    """

    config_class = SegmentAnswererConfig
    weights_name = _WEIGHTS_NAME
    weights_prefix = _WEIGHTS_PREFIX
    description = "segment answerer"

    def __init__(self, config: SegmentAnswererConfig) -> None:
        super().__init__()
        self.config = config
        width = config.hidden_size
        self.reader = SegmentListener(config.listener_config())
        self.count_gate = nn.Linear(width, 1)
        # The attended segments' own features (class, colour, size) reach the head directly
        # too, standardised, through their own MLP: read through the relation rounds, or
        # normalised together with the states, a colour is one faint signal among hundreds.
        features = len(config.class_names) + SEGMENT_GEOMETRY_FEATURES + COLOUR_FEATURES
        self.register_buffer("feature_shift", torch.zeros(features))
        self.register_buffer("feature_scale", torch.ones(features))
        self.feature_lift = nn.Sequential(nn.Linear(features, width), nn.GELU(),
                                          nn.Linear(width, width))
        # The anchor is scored from its state and its geometry as seen from the attended
        # segment.
        self.pair_lift = nn.Sequential(nn.Linear(PAIR_FEATURES, width), nn.GELU(),
                                       nn.Linear(width, width))
        self.anchor_score = nn.Sequential(nn.Linear(width, width), nn.GELU(),
                                          nn.Linear(width, 1))
        # The attended segment's colour also reaches the answers through a path of its own,
        # opened by the question: inside the head it is a few numbers among thousands, which
        # lets the head learn the training rooms instead of the colours (held-out colour
        # answers with the right segment attended: 0.46 without this path, 0.61 with it; a
        # small MLP on that segment's colour alone, 0.66).
        classes = len(config.class_names)
        colour_columns = [*range(classes, classes + COLOUR_STATISTICS),
                          *range(features - COLOUR_FEATURES, features)]
        self.register_buffer("colour_columns", torch.tensor(colour_columns), persistent=False)
        self.colour_answers = nn.Sequential(nn.Linear(len(colour_columns), width), nn.GELU(),
                                            nn.Linear(width, len(config.answers)))
        self.colour_gate = nn.Linear(width, 1)
        # Closed at first: it opens for the questions whose answers the colour tells.
        nn.init.constant_(self.colour_gate.bias, _CLOSED_GATE_BIAS)
        pooled = 7 * width
        self.norm = nn.LayerNorm(pooled)
        # Two count inputs (count and its log) stay outside the norm, which would erase scale.
        self.head = nn.Sequential(nn.Linear(pooled + 2, 2 * width), nn.GELU(),
                                  nn.Dropout(0.1), nn.Linear(2 * width, len(config.answers)))

    @classmethod
    def from_listener(cls, listener: SegmentListener, answers: list[str]) -> SegmentAnswerer:
        """A new answerer whose reader starts as a copy of a trained listener."""
        answerer = cls(SegmentAnswererConfig(**asdict(listener.config), answers=list(answers)))
        answerer.reader.load_state_dict(listener.state_dict())
        return answerer.to(listener.word.weight.device)

    def standardise_features(self, features: torch.Tensor) -> None:
        """Set the feature standardisation from (N, F) segment features (``objects`` and
        ``colours`` side by side) of the training scenes."""
        with torch.no_grad():
            self.feature_shift.copy_(features.mean(dim=0))
            self.feature_scale.copy_(features.std(dim=0).clamp_min(1e-3))

    def forward(self, question_ids: torch.Tensor, segments: torch.Tensor, pairs: torch.Tensor,
                segment_mask: torch.Tensor, colours: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched answer logits (B, A) and attention logits over the segments (B, S) for
        the segment the question is about and for its anchor.

        Takes :meth:`SegmentListener.forward`'s inputs and the segments' float (B, S,
        COLOUR_FEATURES) relative colours.
        """
        state, words, _ = self.reader.encode(question_ids, segments, pairs, segment_mask,
                                             colours)
        standardised = (torch.cat([segments, colours], dim=-1) - self.feature_shift) \
            / self.feature_scale
        lifted = self.feature_lift(standardised)
        focus = self.reader.score_states(state, segment_mask)
        focus_weights = focus.softmax(dim=-1)
        # Each segment as seen from the attended one.
        seen_from_focus = self.pair_lift(torch.einsum("bi,bijf->bjf", focus_weights, pairs))
        anchor = self.anchor_score(state + seen_from_focus).squeeze(-1).masked_fill(
            ~segment_mask, -1e9)
        weights, anchor_weights = focus_weights[..., None], anchor.softmax(dim=-1)[..., None]
        gate = torch.sigmoid(self.count_gate(state)).squeeze(-1) * segment_mask
        count = gate.sum(dim=1, keepdim=True)
        counted = (gate[..., None] * state).sum(dim=1) / count.clamp_min(1.0)
        present = (question_ids >= 0).float()[..., None]
        question = (words * present).sum(dim=1) / present.sum(dim=1).clamp_min(1.0)
        pooled = torch.cat([question, (weights * state).sum(dim=1), (weights * lifted).sum(dim=1),
                            counted, (anchor_weights * state).sum(dim=1),
                            (anchor_weights * lifted).sum(dim=1),
                            (anchor_weights * seen_from_focus).sum(dim=1)], dim=-1)
        inputs = torch.cat([self.norm(pooled), count, torch.log1p(count)], dim=-1)
        focus_colour = (weights * standardised[..., self.colour_columns]).sum(dim=1)
        colour_evidence = torch.sigmoid(self.colour_gate(question)) * self.colour_answers(
            focus_colour)
        return self.head(inputs) + colour_evidence, focus, anchor

    @torch.inference_mode()
    def answer(self, question_ids: list[int], features: SegmentFeatures) -> SegmentAnswer:
        """The most probable answer about a scene with at least one segment.

        :raises ValueError: when ``features`` has no segment.
        """
        if not len(features.segments):
            raise ValueError("the answerer needs at least one segment")
        device = self.reader.word.weight.device
        ids = torch.tensor([question_ids[:self.config.max_question_tokens]], device=device)
        logits, focus, _ = self(ids, torch.from_numpy(features.objects)[None].to(device),
                                torch.from_numpy(features.pairs)[None].to(device),
                                torch.ones(1, len(features.segments), dtype=torch.bool,
                                           device=device),
                                torch.from_numpy(features.colours)[None].to(device))
        answer_p = logits[0].float().softmax(dim=-1).cpu().numpy()
        focus_p = focus[0].float().softmax(dim=-1).cpu().numpy()
        best, segment = int(np.argmax(answer_p)), int(np.argmax(focus_p))
        return SegmentAnswer(self.config.answers[best], float(answer_p[best]), segment,
                             float(focus_p[segment]))

    def extend_vocabulary(self, vocab_size: int) -> None:
        """Grow the word table (see :meth:`SegmentListener.extend_vocabulary`)."""
        self.reader.extend_vocabulary(vocab_size)
        self.config.vocab_size = vocab_size
