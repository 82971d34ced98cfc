"""Training losses of the grounding head: token matching, box regression and label."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from scene_llm_ros.model.grounding import GroundingHead
from scene_llm_ros.model.processing_scene_llm import IGNORE_INDEX


@dataclass
class GroundingLosses:
    """Scalar losses; ``total`` is the weighted sum to back-propagate. ``token_class`` is the
    token-class and query-class loss of a head with token classes (0 otherwise)."""

    total: torch.Tensor
    token: torch.Tensor
    box_l1: torch.Tensor
    box_iou: torch.Tensor
    label: torch.Tensor
    token_class: torch.Tensor = field(default_factory=lambda: torch.zeros(()))


def axis_aligned_iou(centers_a: torch.Tensor, sizes_a: torch.Tensor, centers_b: torch.Tensor,
                     sizes_b: torch.Tensor) -> torch.Tensor:
    """Differentiable IoU of paired axis-aligned boxes (N, 3) -> (N,); full sizes."""
    return _overlap(centers_a, sizes_a, centers_b, sizes_b)[0]


def generalized_iou(centers_a: torch.Tensor, sizes_a: torch.Tensor, centers_b: torch.Tensor,
                    sizes_b: torch.Tensor) -> torch.Tensor:
    """Differentiable GIoU (Rezatofighi et al., 2019) of paired axis-aligned boxes (N, 3) ->
    (N,) in (-1, 1]: the IoU minus the share of the enclosing box that neither box fills, so
    disjoint boxes still pull together."""
    iou, union = _overlap(centers_a, sizes_a, centers_b, sizes_b)
    enclosing = (torch.maximum(centers_a + sizes_a / 2, centers_b + sizes_b / 2)
                 - torch.minimum(centers_a - sizes_a / 2, centers_b - sizes_b / 2)).prod(dim=-1)
    return iou - (enclosing - union) / enclosing.clamp(min=1e-9)


def _overlap(centers_a: torch.Tensor, sizes_a: torch.Tensor, centers_b: torch.Tensor,
             sizes_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(IoU, union volume) of paired boxes."""
    low = torch.maximum(centers_a - sizes_a / 2, centers_b - sizes_b / 2)
    high = torch.minimum(centers_a + sizes_a / 2, centers_b + sizes_b / 2)
    intersection = (high - low).clamp(min=0).prod(dim=-1)
    union = sizes_a.prod(dim=-1) + sizes_b.prod(dim=-1) - intersection
    return intersection / union.clamp(min=1e-9), union


def matching_targets(positions: torch.Tensor, centers: torch.Tensor, sizes: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Which scene tokens each true box should match, and the token to regress it from.

    :param positions: (K, 3) token positions; ``centers``, ``sizes``: (N, 3) true boxes.
    :return: (N, K) target distribution (uniform over tokens inside the box, or one-hot on
        the token nearest the centre when none is inside) and int64 (N,) anchor tokens (the
        token nearest the centre, preferring tokens inside the box).
    """
    offsets = positions[None].float() - centers[:, None, :].float()  # (N, K, 3)
    inside = (offsets.abs() <= sizes[:, None, :].float() / 2).all(dim=-1)
    distance = offsets.norm(dim=-1)
    nearest = distance.argmin(dim=-1)
    fallback = F.one_hot(nearest, positions.shape[0]).bool()
    has_inside = inside.any(dim=-1, keepdim=True)
    chosen = torch.where(has_inside, inside, fallback).float()
    # Outside tokens get an infinite distance, so the anchor is inside whenever possible.
    anchor = torch.where(has_inside, distance.masked_fill(~inside, float("inf")),
                         distance).argmin(dim=-1)
    return chosen / chosen.sum(dim=-1, keepdim=True), anchor


def grounding_loss(head: GroundingHead, query_hidden: torch.Tensor, scene_hidden: torch.Tensor,
                   positions: torch.Tensor, target_centers: torch.Tensor,
                   target_sizes: torch.Tensor, target_labels: torch.Tensor, *,
                   token_weight: float = 1.0, l1_weight: float = 1.0, iou_weight: float = 1.0,
                   label_weight: float = 0.5, token_class_weight: float = 1.0,
                   scene_inputs: torch.Tensor | None = None,
                   token_classes: torch.Tensor | None = None) -> GroundingLosses:
    """Losses for N ``<ground>`` queries of one scene against their true boxes.

    :param head: the grounding head.
    :param query_hidden: (N, H) hidden states at the ``<ground>`` tokens, in answer order.
    :param scene_hidden: (K, H) hidden states at the scene tokens.
    :param positions: (K, 3) scene-token positions, scene frame.
    :param target_centers: (N, 3) true box centres, scene frame, metres.
    :param target_sizes: (N, 3) true full extents, metres, > 0.
    :param target_labels: int64 (N,) label indices, :data:`IGNORE_INDEX` when unknown.
    :param scene_inputs: (K, H) the scene tokens' input embeddings, passed to the head.
    :param token_classes: int64 (K,) class of the object holding each scene token (-1: none,
        :data:`IGNORE_INDEX`: unknown), for a head with token classes.
    :return: cross-entropy against the matching targets, L1 on centre and log-size, 1 - IoU,
        label cross-entropy, the token-class losses, and their weighted total.
    :raises ValueError: when the counts disagree or a size is not positive.
    """
    n = query_hidden.shape[0]
    if not (target_centers.shape == target_sizes.shape == (n, 3)
            and target_labels.shape == (n,)):
        raise ValueError(f"{n} queries need (N, 3) centres/sizes and (N,) labels, got "
                         f"{tuple(target_centers.shape)}, {tuple(target_sizes.shape)}, "
                         f"{tuple(target_labels.shape)}")
    if n == 0:
        raise ValueError("grounding_loss needs at least one query")
    if not bool((target_sizes > 0).all()):
        raise ValueError(f"target sizes must be > 0, got {target_sizes.tolist()}")
    target_distribution, anchor = matching_targets(positions, target_centers, target_sizes)
    prediction = head(query_hidden, scene_hidden, positions, anchor_index=anchor,
                      scene_inputs=scene_inputs)
    log_probabilities = prediction.token_logits.float().log_softmax(dim=-1)
    token = -(target_distribution * log_probabilities).sum(dim=-1).mean()
    target_centers, target_sizes = target_centers.float(), target_sizes.float()
    box_l1 = ((prediction.centers - target_centers).abs().mean()
              + (prediction.log_sizes - target_sizes.log()).abs().mean())
    box_iou = 1.0 - axis_aligned_iou(prediction.centers, prediction.sizes, target_centers,
                                     target_sizes).mean()
    if bool((target_labels != IGNORE_INDEX).any()):
        label = F.cross_entropy(prediction.label_logits.float(), target_labels,
                                ignore_index=IGNORE_INDEX)
    else:
        label = prediction.label_logits.sum() * 0.0
    token_class = _token_class_loss(prediction, target_labels, token_classes)
    total = (token_weight * token + l1_weight * box_l1 + iou_weight * box_iou
             + label_weight * label + token_class_weight * token_class)
    return GroundingLosses(total=total, token=token, box_l1=box_l1, box_iou=box_iou,
                           label=label, token_class=token_class)


def _token_class_loss(prediction, target_labels: torch.Tensor,
                      token_classes: torch.Tensor | None) -> torch.Tensor:
    """Binary cross-entropy of every token's classes (summed over classes, averaged over
    tokens) plus cross-entropy of the class each query asks for; 0 without token classes."""
    if prediction.token_class_logits is None or token_classes is None:
        return prediction.label_logits.sum() * 0.0
    logits = prediction.token_class_logits
    known = token_classes != IGNORE_INDEX
    target = torch.zeros_like(logits)
    held = known & (token_classes >= 0)
    target[held, token_classes[held]] = 1.0
    tokens = F.binary_cross_entropy_with_logits(logits[known], target[known],
                                                reduction="sum") / known.sum().clamp_min(1)
    if bool((target_labels != IGNORE_INDEX).any()):
        query = F.cross_entropy(prediction.query_class_logits, target_labels,
                                ignore_index=IGNORE_INDEX)
    else:
        query = logits.sum() * 0.0
    return tokens + query
