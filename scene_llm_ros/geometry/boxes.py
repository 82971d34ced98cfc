"""Axis-aligned 3D boxes as (centre, size) arrays, and their overlap.

Boxes follow vision_msgs/BoundingBox3D semantics: ``size`` holds full extents, not half
sizes. Functions broadcast over leading dimensions, so (N, 3) arrays give N boxes.
"""
from __future__ import annotations

import numpy as np


def box_corners(center: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(minimum corner, maximum corner) of boxes given by centre and full size."""
    center = np.asarray(center, np.float64)
    half = np.asarray(size, np.float64) / 2.0
    return center - half, center + half


def box_from_corners(box_min: np.ndarray, box_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, full size) of boxes given by their minimum and maximum corners."""
    box_min = np.asarray(box_min, np.float64)
    box_max = np.asarray(box_max, np.float64)
    return (box_min + box_max) / 2.0, box_max - box_min


def box_of_points(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, full size) of the tightest axis-aligned box around (N, 3) points.

    :raises ValueError: when ``points`` is empty.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if len(points) == 0:
        raise ValueError("the box of no points is undefined")
    return box_from_corners(points.min(axis=0), points.max(axis=0))


def box_iou(center_a: np.ndarray, size_a: np.ndarray, center_b: np.ndarray,
            size_b: np.ndarray) -> np.ndarray:
    """Intersection over union of axis-aligned boxes, broadcast over leading dimensions.

    This is the ScanRefer / Multi3DRefer / Scan2Cap definition (volumes of axis-aligned
    boxes). Degenerate boxes (zero volume) have IoU 0 with everything.
    """
    min_a, max_a = box_corners(center_a, size_a)
    min_b, max_b = box_corners(center_b, size_b)
    overlap = np.clip(np.minimum(max_a, max_b) - np.maximum(min_a, min_b), 0.0, None)
    intersection = overlap.prod(axis=-1)
    volume_a = np.clip(max_a - min_a, 0.0, None).prod(axis=-1)
    volume_b = np.clip(max_b - min_b, 0.0, None).prod(axis=-1)
    union = volume_a + volume_b - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def pairwise_box_iou(centers_a: np.ndarray, sizes_a: np.ndarray, centers_b: np.ndarray,
                     sizes_b: np.ndarray) -> np.ndarray:
    """(N, M) IoU matrix between N boxes and M boxes."""
    centers_a = np.asarray(centers_a, np.float64).reshape(-1, 1, 3)
    sizes_a = np.asarray(sizes_a, np.float64).reshape(-1, 1, 3)
    centers_b = np.asarray(centers_b, np.float64).reshape(1, -1, 3)
    sizes_b = np.asarray(sizes_b, np.float64).reshape(1, -1, 3)
    return box_iou(centers_a, sizes_a, centers_b, sizes_b)
