"""Horizontal and vertical planes in a point set, found greedily and deterministically."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scene_llm_ros.grounding.components import label_components

# A surface counts as horizontal (vertical) when its normal is within this angle of +Z (of
# the XY plane).
_ORIENTATION_TOLERANCE_DEG = 20.0
# Plane hypotheses tested per extraction round; seeds are spread evenly over the candidates,
# which keeps the search deterministic.
_MAX_SEEDS = 96
# Candidate points a hypothesis is scored on.
_MAX_SCORED_POINTS = 1500
# Refits of a plane to its inliers (two reach the fixed point on fused surfaces).
_REFITS = 2


@dataclass(frozen=True)
class Plane:
    """A horizontal or vertical plane ``normal . x = offset`` found among points.

    :ivar normal: float64 (3,) unit normal (+Z for horizontal planes, sign otherwise arbitrary).
    :ivar offset: metres.
    :ivar inliers: int64 indices of the points on it (one connected patch).
    """

    normal: np.ndarray
    offset: float
    horizontal: bool
    inliers: np.ndarray


def plane_candidates(normals: np.ndarray) -> dict[bool, np.ndarray]:
    """Indices of the points that can lie on a horizontal (key True) or vertical plane."""
    up = np.abs(normals[:, 2])
    return {True: np.flatnonzero(up >= np.cos(np.radians(_ORIENTATION_TOLERANCE_DEG))),
            False: np.flatnonzero(up <= np.sin(np.radians(_ORIENTATION_TOLERANCE_DEG)))}


def largest_plane(points: np.ndarray, normals: np.ndarray, candidates: dict[bool, np.ndarray],
                  *, inlier_distance_m: float, min_points: int) -> Plane | None:
    """The horizontal or vertical plane with most inliers among the candidate points.

    One-point hypotheses: each seed's own (horizontal or vertical) normal and position define
    a plane, so no random sampling is needed. The winner is refitted to its inliers, since a
    single point's normal is noisy, and cut down to its largest connected patch.

    :param points: float64 (N, 3) metres.
    :param normals: float64 (N, 3) unit normals of ``points`` (any sign).
    :param candidates: from :func:`plane_candidates`, possibly with extracted planes removed.
    :param inlier_distance_m: a point within this distance of a plane lies on it.
    :param min_points: planes with fewer inliers are ignored.
    :return: the plane, or None when no plane has ``min_points`` inliers.
    """
    best: Plane | None = None
    agreement = np.cos(np.radians(_ORIENTATION_TOLERANCE_DEG))
    for horizontal, index in candidates.items():
        if len(index) < min_points:
            continue
        seeds = _spread(index, _MAX_SEEDS)
        seed_normals = _snap(normals[seeds], horizontal)
        offsets = np.einsum("si,si->s", seed_normals, points[seeds])
        # Hypotheses are scored on an evenly spread subset, which bounds the cost on large
        # neighbourhoods; the winner's inliers are then taken from all candidates.
        scored = _spread(index, _MAX_SCORED_POINTS)
        on_plane = (np.abs(points[scored] @ seed_normals.T - offsets) <= inlier_distance_m
                    ) & (np.abs(normals[scored] @ seed_normals.T) >= agreement)      # (P, S)
        winner = int(np.argmax(on_plane.sum(axis=0)))
        normal, offset = seed_normals[winner], float(offsets[winner])
        inliers = index[(np.abs(points[index] @ normal - offset) <= inlier_distance_m)
                        & (np.abs(normals[index] @ normal) >= agreement)]
        for _ in range(_REFITS):
            if not len(inliers):
                break  # a degenerate patch (one spot, a line) can lose every inlier on refit
            normal, offset = _fit(points[inliers], horizontal)
            inliers = index[(np.abs(points[index] @ normal - offset) <= inlier_distance_m)
                            & (np.abs(normals[index] @ normal) >= agreement)]
        if not len(inliers):
            continue
        inliers = _largest_patch(points, inliers, 2.0 * inlier_distance_m)
        if len(inliers) >= min_points and (best is None or len(inliers) > len(best.inliers)):
            best = Plane(normal, offset, horizontal, inliers)
    return best


def _spread(index: np.ndarray, count: int) -> np.ndarray:
    """At most ``count`` entries of ``index``, evenly spread."""
    if len(index) <= count:
        return index
    return index[np.linspace(0, len(index) - 1, count).astype(int)]


def _largest_patch(points: np.ndarray, inliers: np.ndarray, link: float) -> np.ndarray:
    """The largest connected patch of a plane's inliers: coplanar faces of separate objects
    (a row of cabinet fronts) must not add up to one wall-sized plane."""
    count, labels = label_components(points[inliers], link)
    return inliers[labels == np.argmax(np.bincount(labels, minlength=count))]


def _fit(plane_points: np.ndarray, horizontal: bool) -> tuple[np.ndarray, float]:
    """Least-squares horizontal or vertical plane through points: (unit normal, offset)."""
    if horizontal:
        normal = np.array([0.0, 0.0, 1.0])
    else:
        # The normal of a vertical plane is the least-spread direction of the points' XY.
        xy = plane_points[:, :2] - plane_points[:, :2].mean(axis=0)
        _, vectors = np.linalg.eigh(xy.T @ xy)
        normal = np.array([vectors[0, 0], vectors[1, 0], 0.0])
    return normal, float(np.median(plane_points @ normal))


def _snap(normals: np.ndarray, horizontal: bool) -> np.ndarray:
    """Exactly vertical (for horizontal planes) or exactly horizontal unit normals."""
    if horizontal:
        return np.tile([0.0, 0.0, 1.0], (len(normals), 1))
    flat = normals.copy()
    flat[:, 2] = 0.0
    return flat / np.linalg.norm(flat, axis=1, keepdims=True)


