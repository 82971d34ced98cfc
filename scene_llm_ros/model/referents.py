"""Referent tokens' inputs: the segments a segment listener finds a question to mean.

A model with ``referent_tokens`` places them at the very end of the prompt (``<referent>``
placeholders after the start of the assistant turn, the best last), so the first answer token
is predicted at the referred object instead of having to find it among the scene tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scene_llm_ros.grounding.segment_features import SegmentFeatures
from scene_llm_ros.model.position_embedding import relative_positions
from scene_llm_ros.model.segment_listener import SegmentListener


@dataclass(frozen=True)
class ReferentInputs:
    """The segments a segment listener finds a question to mean, best first.

    :ivar features: float32 (R, F) object token features of the segments
        (:attr:`~scene_llm_ros.grounding.segment_features.SegmentFeatures.objects`); all zero
        where the scene has fewer than R segments.
    :ivar relative: float32 (R, 3) segment centres relative to the scene's origin.
    :ivar probabilities: float32 (R,) the listener's probability of each segment (0 for
        padding).
    """

    features: torch.Tensor
    relative: torch.Tensor
    probabilities: torch.Tensor

    @property
    def count(self) -> int:
        return len(self.features)


def pick_referents(listener: SegmentListener, question_ids: list[int],
                   segments: SegmentFeatures | None, origin: np.ndarray, *, count: int,
                   feature_dim: int) -> ReferentInputs:
    """The ``count`` segments ``listener`` scores highest for a question, best first.

    :param segments: the scene's segments as the listener reads them; None (no semantic map)
        or fewer than ``count`` are padded with zeros at ``origin``.
    :param origin: the scene's origin (``scene_origin``), which the centres are relative to.
    :param feature_dim: width of a segment's features (for the padding).
    """
    features = np.zeros((count, feature_dim), np.float32)
    centers = np.tile(np.asarray(origin, np.float64), (count, 1))
    probabilities = np.zeros(count, np.float32)
    if segments is not None and len(segments.segments):
        log_probabilities = listener.scores(question_ids, segments)
        best = np.argsort(-log_probabilities, kind="stable")[:count]
        features[:len(best)] = segments.objects[best]
        centers[:len(best)] = [segments.segments[i].center for i in best]
        probabilities[:len(best)] = np.exp(log_probabilities[best])
    return ReferentInputs(features=torch.from_numpy(features),
                          relative=relative_positions(centers, origin),
                          probabilities=torch.from_numpy(probabilities))
