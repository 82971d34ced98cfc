"""Unoriented surface normals of a point set from the shape of each point's neighbourhood."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def estimate_normals(points: np.ndarray, *, neighbours: int = 10,
                     tree: cKDTree | None = None) -> np.ndarray:
    """Unit normal of every point: the direction of least spread of its ``neighbours`` nearest
    points (principal component analysis).

    The sign is arbitrary: grounding only asks whether a surface is horizontal or vertical.

    :param points: float64 (N, 3) metres.
    :param neighbours: points per neighbourhood, the point itself included.
    :param tree: a KD-tree of ``points`` if the caller already has one.
    :return: float64 (N, 3); rows are zero for fewer than 3 points in total.
    """
    n = len(points)
    if n < 3:
        return np.zeros((n, 3))
    k = min(neighbours, n)
    tree = tree if tree is not None else cKDTree(points)
    _, index = tree.query(points, k=k)
    local = points[index] - points[index].mean(axis=1, keepdims=True)   # (N, k, 3)
    covariance = np.einsum("nki,nkj->nij", local, local)
    # eigh sorts eigenvalues ascending: column 0 is the least-spread direction.
    _, vectors = np.linalg.eigh(covariance)
    return vectors[:, :, 0]
