"""Checks of the arrays and settings grounding functions accept, with clear errors."""
from __future__ import annotations

import numpy as np

from scene_llm_ros.grounding.errors import GroundingInputError


def checked_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    """``points`` as float64 (N, 3); N may be 0.

    :raises GroundingInputError: when the shape is not (N, 3) or a coordinate is not finite.
    """
    array = np.asarray(points)
    if array.ndim != 2 or array.shape[1] != 3:
        raise GroundingInputError(f"{name} must have shape (N, 3), got {array.shape}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array).all(axis=1)).sum())
        raise GroundingInputError(f"{name} holds {bad} points with NaN or infinite coordinates")
    return array


def checked_box(center: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(center, size)`` as float64 (3,) arrays of a finite box with positive extents.

    :raises GroundingInputError: on a wrong shape, a non-finite value or a size <= 0.
    """
    center = np.asarray(center, np.float64)
    size = np.asarray(size, np.float64)
    if center.shape != (3,) or size.shape != (3,):
        raise GroundingInputError(
            f"box center and size must have shape (3,), got {center.shape} and {size.shape}")
    if not (np.isfinite(center).all() and np.isfinite(size).all()):
        raise GroundingInputError(f"box must be finite, got center {center} size {size}")
    if not (size > 0).all():
        raise GroundingInputError(f"box size must be positive on every axis, got {size}")
    return center, size


def checked_positive(value: float, name: str) -> float:
    """``value`` as a float, which must be finite and > 0.

    :raises GroundingInputError: otherwise.
    """
    if not (np.isfinite(value) and value > 0):
        raise GroundingInputError(f"{name} must be a positive number, got {value}")
    return float(value)


def checked_clustering(points: np.ndarray, voxel_size: float, link_voxels: float,
                       band_voxels: float, min_points: int
                       ) -> tuple[np.ndarray, float, float, float]:
    """The inputs shared by the surface clusterings, checked.

    :return: ``(points float64 (N, 3), voxel_size, link, band)``, the last two in metres.
    :raises GroundingInputError: on bad points or a setting out of range.
    """
    points = checked_points(points)
    voxel_size = checked_positive(voxel_size, "voxel_size")
    link = checked_positive(link_voxels, "link_voxels") * voxel_size
    band = checked_positive(band_voxels, "band_voxels") * voxel_size
    if min_points < 1:
        raise GroundingInputError(f"min_points must be >= 1, got {min_points}")
    return points, voxel_size, link, band
