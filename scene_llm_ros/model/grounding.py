"""Grounding head: a ``<ground>`` hidden state queries the scene tokens for a box and label."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GroundingPrediction:
    """Head outputs for N ``<ground>`` queries over K scene tokens (scene frame, metres).

    :ivar token_logits: (N, K) matching scores; softmax over K gives where the object is.
    :ivar anchor_index: int64 (N,) the token each box is regressed from.
    :ivar centers: (N, 3) box centres, scene frame.
    :ivar log_sizes: (N, 3) natural log of full box extents.
    :ivar label_logits: (N, L) scores over the config's label vocabulary.
    :ivar token_class_logits: (K, L) per-token class scores (sigmoid), None without token
        classes.
    :ivar query_class_logits: (N, L) the class each query asks for (softmax), None without
        token classes.
    """

    token_logits: torch.Tensor
    anchor_index: torch.Tensor
    centers: torch.Tensor
    log_sizes: torch.Tensor
    label_logits: torch.Tensor
    token_class_logits: torch.Tensor | None = None
    query_class_logits: torch.Tensor | None = None

    @property
    def sizes(self) -> torch.Tensor:
        """(N, 3) full box extents, metres (vision_msgs semantics)."""
        return self.log_sizes.exp()

    def scores(self, positions: torch.Tensor) -> torch.Tensor:
        """(N,) confidence in [0, 1]: the matching probability mass inside each box.

        Training pushes the softmax onto the tokens inside the true box, so mass that lands
        inside the predicted box measures agreement between matching and regression.

        :param positions: (K, 3) scene-token positions, scene frame.
        """
        probabilities = self.token_logits.float().softmax(dim=-1)
        half = self.sizes.float()[:, None, :] / 2
        inside = ((positions[None].float() - self.centers.float()[:, None, :]).abs()
                  <= half).all(dim=-1)
        return (probabilities * inside).sum(dim=-1).clamp(0.0, 1.0)


class GroundingHead(nn.Module):
    """Dot-product matching of ``<ground>`` queries against scene tokens, then box and label.

    Keys are the sum of a projection of the scene tokens' last-layer hidden states and one of
    their input embeddings (when given).

    :param hidden_size: LLM hidden size (queries and scene keys both come from the LLM).
    :param grounding_dim: width of the matching space.
    :param num_labels: size of the label vocabulary.
    :param box_offset_scale_m: metres per unit of the regressed centre offset.
    :param token_classes: also classify every scene token from its input embedding and add
        the agreement between that class and the class the query asks for to the matching
        score (a semantic prior a small LLM does not learn through its own layers).
    """

    def __init__(self, hidden_size: int, grounding_dim: int, num_labels: int,
                 box_offset_scale_m: float, *, token_classes: bool = False) -> None:
        super().__init__()
        self.box_offset_scale_m = box_offset_scale_m
        self.query = nn.Sequential(nn.Linear(hidden_size, grounding_dim),
                                   nn.LayerNorm(grounding_dim))
        self.key = nn.Sequential(nn.Linear(hidden_size, grounding_dim),
                                 nn.LayerNorm(grounding_dim))
        # Keys also read the scene tokens' input embeddings (lifted features + position), so
        # a token's own identity reaches the matching even where a small LLM's last layer
        # has blended the scene tokens (a short trial showed no gain yet: training/README.md).
        self.input_key = nn.Sequential(nn.Linear(hidden_size, grounding_dim),
                                       nn.LayerNorm(grounding_dim))
        self.box = nn.Sequential(nn.Linear(2 * grounding_dim, grounding_dim), nn.GELU(),
                                 nn.Linear(grounding_dim, 6))
        self.label_hidden = nn.Sequential(nn.Linear(2 * grounding_dim, grounding_dim), nn.GELU())
        self.label = nn.Linear(grounding_dim, num_labels)
        self.token_label = nn.Linear(hidden_size, num_labels) if token_classes else None
        self.query_label = nn.Linear(grounding_dim, num_labels) if token_classes else None

    def forward(self, query_hidden: torch.Tensor, scene_hidden: torch.Tensor,
                positions: torch.Tensor, anchor_index: torch.Tensor | None = None, *,
                scene_inputs: torch.Tensor | None = None) -> GroundingPrediction:
        """Match N queries against K scene tokens.

        :param query_hidden: (N, H) LLM last-layer hidden states at ``<ground>`` tokens.
        :param scene_hidden: (K, H) LLM last-layer hidden states at the scene tokens.
        :param positions: (K, 3) scene-token positions, scene frame, metres.
        :param anchor_index: int64 (N,) tokens to regress from (training passes the token
            nearest the true box); None takes each query's best match.
        :param scene_inputs: (K, H) the scene tokens' input embeddings (what the projector
            gave the LLM); None uses the last layer alone.
        """
        dtype = self.query[0].weight.dtype
        queries = self.query(query_hidden.to(dtype))  # (N, D)
        keys = self.key(scene_hidden.to(dtype))  # (K, D)
        if scene_inputs is not None:
            keys = keys + self.input_key(scene_inputs.to(dtype))
        token_logits = queries @ keys.T / keys.shape[-1] ** 0.5  # (N, K)
        token_class = query_class = None
        if self.token_label is not None and scene_inputs is not None:
            token_class = self.token_label(scene_inputs.to(dtype)).float()  # (K, L)
            query_class = self.query_label(queries).float()  # (N, L)
            # log P(token is of the class the query asks for), marginalised over classes.
            agreement = torch.logsumexp(query_class.log_softmax(dim=-1)[:, None, :]
                                        + F.logsigmoid(token_class)[None], dim=-1)
            token_logits = token_logits.float() + agreement
        if anchor_index is None:
            anchor_index = token_logits.argmax(dim=-1)
        pair = torch.cat([queries, keys[anchor_index]], dim=-1)  # (N, 2D)
        box = self.box(pair).float()
        centers = positions[anchor_index].float() + box[:, :3] * self.box_offset_scale_m
        return GroundingPrediction(token_logits=token_logits, anchor_index=anchor_index,
                                   centers=centers, log_sizes=box[:, 3:],
                                   label_logits=self.label(self.label_hidden(pair)),
                                   token_class_logits=token_class,
                                   query_class_logits=query_class)

    def add_labels(self, count: int) -> None:
        """Grow the classifiers by ``count`` classes, keeping the existing rows."""
        self.label = _grown(self.label, count)
        if self.token_label is not None:
            self.token_label = _grown(self.token_label, count)
            self.query_label = _grown(self.query_label, count)


def _grown(old: nn.Linear, count: int) -> nn.Linear:
    new = nn.Linear(old.in_features, old.out_features + count, device=old.weight.device,
                    dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight[:old.out_features] = old.weight
        new.bias[:old.out_features] = old.bias
    return new
