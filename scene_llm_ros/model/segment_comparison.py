"""Where each segment ranks among the segments a description could mean.

"The chair closest to the window" and "the largest table" are superlatives: the target wins a
comparison against the other chairs or tables, not a test it passes on its own. Message
passing between segments can learn such a ranking only slowly (a chair would have to read
every other chair's distance to the window), so a listener compares explicitly: heads over
the segments pick the description's candidates (the segments of the class it names) and its
anchors (the window), and each segment learns how much candidate mass is nearer to each
anchor, farther from it, larger or smaller than itself.
"""
from __future__ import annotations

import torch
from torch import nn

from scene_llm_ros.grounding.segment_features import PAIR_DISTANCE

# Softness of the rankings: distances in metres (descriptions state superlatives with a
# 0.3 m margin) and log volumes (size superlatives need a 1.3x ratio, log 0.26).
_DISTANCE_SOFTNESS_M = 0.1
_VOLUME_SOFTNESS = 0.1


class CandidateComparison(nn.Module):
    """Ranks of each segment among the described candidates, by distance to each anchor and
    by volume, as an update of the segment states.

    :param width: the listener's state width.
    :param anchor_heads: how many anchors a description can compare against.
    :param log_size_columns: the three columns of the segment features holding log sizes.
    """

    def __init__(self, width: int, anchor_heads: int, log_size_columns: slice) -> None:
        super().__init__()
        self.log_size_columns = log_size_columns
        self.candidate = nn.Linear(width, 1)
        self.anchor = nn.Linear(width, anchor_heads)
        features = 3 * anchor_heads + 2
        self.lift = nn.Sequential(nn.LayerNorm(features), nn.Linear(features, width), nn.GELU(),
                                  nn.Linear(width, width))

    def forward(self, state: torch.Tensor, segments: torch.Tensor, pairs: torch.Tensor,
                segment_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The state update (B, S, W) and the candidate logits (B, S).

        :param state: float (B, S, W) segment states that have read the description.
        :param segments: float (B, S, F) segment features.
        :param pairs: float (B, S, S, PAIR_FEATURES).
        :param segment_mask: bool (B, S), True for real segments.
        """
        hidden = ~segment_mask
        candidate_logits = self.candidate(state).squeeze(-1).masked_fill(hidden, -1e9)
        candidates = candidate_logits.softmax(dim=-1)
        anchors = self.anchor(state).masked_fill(hidden[..., None], -1e9).softmax(dim=1)
        # (B, S, K): each segment's distance to each anchor (a weighted mix of segments).
        distance = torch.einsum("bij,bjk->bik", pairs[..., PAIR_DISTANCE], anchors)
        nearer = self._outranked_by(distance, candidates, _DISTANCE_SOFTNESS_M)
        farther = self._outranked_by(-distance, candidates, _DISTANCE_SOFTNESS_M)
        volume = segments[..., self.log_size_columns].sum(dim=-1, keepdim=True)
        larger = self._outranked_by(-volume, candidates, _VOLUME_SOFTNESS)
        smaller = self._outranked_by(volume, candidates, _VOLUME_SOFTNESS)
        ranks = torch.cat([distance, nearer, farther, larger, smaller], dim=-1)
        return self.lift(ranks), candidate_logits

    @staticmethod
    def _outranked_by(values: torch.Tensor, candidates: torch.Tensor,
                      softness: float) -> torch.Tensor:
        """(B, S, K) candidate mass, other than the segment itself, with a lower value than
        each segment's, per column of ``values`` (B, S, K)."""
        lower = torch.sigmoid((values[:, :, None, :] - values[:, None, :, :]) / softness)
        mass = torch.einsum("bijk,bj->bik", lower, candidates)
        return mass - 0.5 * candidates[..., None]
