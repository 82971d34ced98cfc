"""Objects from the semantic map: the fused surface split into connected parts of one class.

Geometry alone merges touching furniture (a chair pushed under its table, pillows on a bed);
a class per surface point separates them, and a connected component of one class is one
object instance.
"""
from __future__ import annotations

import numpy as np

from scene_llm_ros.fusion.semantic_map import STRUCTURE_CLASSES, UNKNOWN_CLASS
from scene_llm_ros.geometry.boxes import box_from_corners
from scene_llm_ros.grounding.components import label_components
from scene_llm_ros.grounding.errors import GroundingInputError
from scene_llm_ros.grounding.floor import estimate_floor_height
from scene_llm_ros.grounding.proposals import ObjectProposal, structure_bands
from scene_llm_ros.grounding.validation import (
    checked_clustering,
    checked_points,
    checked_positive,
)


def object_classes(points: np.ndarray, point_classes: np.ndarray,
                   point_object_classes: np.ndarray, class_names: tuple[str, ...], *,
                   voxel_size: float = 0.04, floor_z: float | None = None,
                   band_voxels: float = 1.5) -> np.ndarray:
    """The object class of every surface point, -1 for room structure and unknown points.

    A point's class is the semantic map's, except that geometry has the last word on room
    structure: points in the floor and ceiling bands belong to no object, and a point the
    map calls wall or floor away from every wall and floor takes its most probable object
    class (patches at an object's edge are mostly the structure behind it). Points the map
    gives an object class keep it in a wall's band: doors, windows and pictures are there.

    :param points: float (N, 3) fused surface points, scene frame (+Z up), metres.
    :param point_classes: int (N,) most probable class per point, index into
        ``class_names``, -1 = unknown (``SceneSnapshot.point_classes``).
    :param point_object_classes: int (N,) most probable non-structure class per point
        (``SceneSnapshot.point_object_classes``).
    :param class_names: the classes.
    :param voxel_size: spacing of ``points``, metres.
    :param floor_z: floor height, metres; None estimates it.
    :param band_voxels: half-thickness of the structure bands, voxels.
    :return: int64 (N,) indices into ``class_names``, never of a structure class, or -1.
    :raises GroundingInputError: (a ``ValueError``) on mismatched or invalid inputs.
    """
    points = checked_points(points)
    voxel_size = checked_positive(voxel_size, "voxel_size")
    band = checked_positive(band_voxels, "band_voxels") * voxel_size
    classes = _checked_classes(point_classes, len(points), len(class_names))
    fallback = _checked_classes(point_object_classes, len(points), len(class_names))
    if len(points) == 0:
        return classes
    if floor_z is None:
        floor_z = estimate_floor_height(points, voxel_size=voxel_size)
    horizontal, walls = structure_bands(points, voxel_size=voxel_size, floor_z=floor_z,
                                        band=band)
    structure = np.array([name in STRUCTURE_CLASSES for name in class_names] + [False])
    said_structure = structure[classes]  # index -1 reads the appended False
    resolved = np.where(said_structure, np.where(walls, UNKNOWN_CLASS, fallback), classes)
    resolved[horizontal] = UNKNOWN_CLASS
    return resolved


def segment_by_class(points: np.ndarray, classes: np.ndarray, class_names: tuple[str, ...],
                     *, voxel_size: float = 0.04, floor_z: float, link_voxels: float = 1.75,
                     band_voxels: float = 1.5, min_points: int = 10) -> list[ObjectProposal]:
    """Connected components of the surface points of each object class.

    :param points: float (N, 3) fused surface points, scene frame (+Z up), metres.
    :param classes: int (N,) object class per point, -1 = none (:func:`object_classes`).
    :param class_names: the classes.
    :param voxel_size: spacing of ``points``, metres.
    :param floor_z: floor height, metres.
    :param link_voxels: points of one class closer than this many voxels are connected.
    :param band_voxels: half-thickness of the floor band, voxels.
    :param min_points: smaller components are dropped as misclassified specks.
    :return: the segments, labelled with their class, by decreasing point count; a segment
        reaching down to the floor band has its box extended onto the floor, and no box is
        thinner than one voxel.
    :raises GroundingInputError: (a ``ValueError``) on mismatched or invalid inputs.
    """
    points, voxel_size, link, band = checked_clustering(points, voxel_size, link_voxels,
                                                        band_voxels, min_points)
    classes = _checked_classes(classes, len(points), len(class_names))
    segments = []
    for class_index in np.unique(classes[classes != UNKNOWN_CLASS]):
        members = np.flatnonzero(classes == class_index)
        if len(members) < min_points:
            continue
        count, labels = label_components(points[members], link)
        sizes = np.bincount(labels, minlength=count)
        for component in np.flatnonzero(sizes >= min_points):
            indices = members[labels == component].astype(np.int64)
            box_min, box_max = points[indices].min(axis=0), points[indices].max(axis=0)
            if box_min[2] <= floor_z + band + voxel_size:
                box_min[2] = floor_z  # it stands on the floor, whose band was dropped
            center, size = box_from_corners(box_min, box_max)
            # A flat segment (a picture on a wall) still occupies one voxel of depth.
            size = np.maximum(size, voxel_size)
            segments.append(ObjectProposal(indices, center, size,
                                           class_names[int(class_index)]))
    segments.sort(key=lambda segment: -len(segment.indices))
    return segments


def _checked_classes(classes: np.ndarray, count: int, num_classes: int) -> np.ndarray:
    classes = np.asarray(classes)
    if classes.shape != (count,) or not np.issubdtype(classes.dtype, np.integer):
        raise GroundingInputError(f"need one integer class per point: {classes.dtype} "
                                  f"{classes.shape} for {count} points")
    if count and (classes.min() < UNKNOWN_CLASS or classes.max() >= num_classes):
        raise GroundingInputError(f"point classes must lie in [-1, {num_classes})")
    return classes.astype(np.int64)
