"""Deterministic token budgets: farthest-point sampling of 3D positions."""
from __future__ import annotations

import numpy as np


def farthest_point_sampling(points: np.ndarray, budget: int) -> np.ndarray:
    """Indices of at most ``budget`` points spread evenly over ``points``.

    Deterministic: it starts from the point nearest the centroid and breaks distance ties by
    the lowest index, so the same memory always yields the same tokens.

    :param points: float (N, 3).
    :param budget: maximum number of indices to return.
    :return: int64 (min(N, budget),) indices, sorted ascending.
    """
    n = len(points)
    if budget <= 0 or n == 0:
        return np.zeros(0, np.int64)
    if n <= budget:
        return np.arange(n, dtype=np.int64)
    pts = np.asarray(points, np.float64)
    chosen = np.empty(budget, np.int64)
    chosen[0] = int(np.argmin(((pts - pts.mean(axis=0)) ** 2).sum(axis=1)))
    nearest = ((pts - pts[chosen[0]]) ** 2).sum(axis=1)
    for i in range(1, budget):
        chosen[i] = int(np.argmax(nearest))
        np.minimum(nearest, ((pts - pts[chosen[i]]) ** 2).sum(axis=1), out=nearest)
    return np.sort(chosen)
