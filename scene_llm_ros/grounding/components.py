"""Connected components of a point set: points closer than a radius belong together."""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


def label_components(points: np.ndarray, radius: float) -> tuple[int, np.ndarray]:
    """Label the connected components of the graph linking points within ``radius``.

    :param points: float64 (N, 3) metres.
    :param radius: link distance, metres (about 1.5-2 voxels for fused surface points, so that
        neighbouring surface points link and a one-voxel gap separates).
    :return: ``(count, labels int32 (N,))`` with labels in ``[0, count)``.
    """
    n = len(points)
    if n == 0:
        return 0, np.zeros(0, np.int32)
    pairs = cKDTree(points).query_pairs(radius, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])),
                       shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), labels.astype(np.int32)
