"""The floor height of a fused room: the densest horizontal layer near its bottom."""
from __future__ import annotations

import numpy as np

from scene_llm_ros.grounding.validation import checked_points, checked_positive

# The floor is looked for this far above the lowest surface points (their 1st percentile, so
# a few noisy points under the floor do not move the search window).
_SEARCH_HEIGHT_M = 0.5
_LOW_PERCENTILE = 1.0


def estimate_floor_height(points: np.ndarray, *, voxel_size: float = 0.04) -> float | None:
    """Height of the floor under the fused surface points, for ``ground_object(floor_z=...)``.

    A floor is the largest horizontal surface of a room, so the ``voxel_size`` thick layer
    holding most points near the bottom of the scene is taken as the floor, its height the
    median height of those points. Compute it once per snapshot.

    :param points: float32/64 (N, 3) fused surface points, scene frame (+Z up), metres.
    :param voxel_size: spacing of ``points``, metres (the layer thickness).
    :return: the floor height in metres, or None when ``points`` is empty.
    :raises GroundingInputError: (a ``ValueError``) on points that are not finite (N, 3).
    """
    points = checked_points(points)
    voxel_size = checked_positive(voxel_size, "voxel_size")
    if len(points) == 0:
        return None
    heights = points[:, 2]
    low = np.percentile(heights, _LOW_PERCENTILE)
    near_bottom = heights[(heights >= low - voxel_size) & (heights <= low + _SEARCH_HEIGHT_M)]
    layers = np.floor((near_bottom - near_bottom.min()) / voxel_size).astype(np.int64)
    densest = np.argmax(np.bincount(layers))
    # The densest layer and its neighbours hold the floor's points wherever the layer
    # boundary happens to cut them.
    return float(np.median(near_bottom[np.abs(layers - densest) <= 1]))
