"""Class-agnostic object proposals: the fused surface minus floor, ceiling and walls, clustered.

Usable as grounding candidates and to sanity-check counts ("how many chairs").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scene_llm_ros.geometry.boxes import box_of_points
from scene_llm_ros.grounding.components import label_components
from scene_llm_ros.grounding.errors import GroundingInputError
from scene_llm_ros.grounding.floor import estimate_floor_height
from scene_llm_ros.grounding.normals import estimate_normals
from scene_llm_ros.grounding.planes import largest_plane, plane_candidates
from scene_llm_ros.grounding.supports import count_behind
from scene_llm_ros.grounding.validation import checked_clustering

# Walls are searched on a grid this many voxels coarse: a room's worth of normals at full
# resolution costs seconds, walls are metres wide.
_WALL_SEARCH_STRIDE = 2
# A wall patch is at least this long and this tall, metres (furniture faces are smaller or
# have the room behind them).
_MIN_WALL_LENGTH_M = 1.0
_MIN_WALL_HEIGHT_M = 1.2
# A ceiling is this far above the floor at least, metres, and covers this area, square metres.
_MIN_CEILING_HEIGHT_M = 1.8
_MIN_CEILING_AREA_M2 = 1.0
# Vertical planes examined, largest first (a room has 4-8 walls; furniture faces come next).
_MAX_WALLS = 12
# Planes with fewer points (on the coarse grid) are not looked at.
_MIN_WALL_POINTS = 40
# A wall has at most this fraction of its own point count behind it, up to this depth (m).
_MAX_BEHIND_FRACTION = 0.1
_BEHIND_DEPTH_M = 1.0


@dataclass(frozen=True)
class ObjectProposal:
    """One cluster of non-structure surface points.

    :ivar indices: int64 (M,) rows of the scene points, ascending.
    :ivar center: float64 (3,) centre of its axis-aligned box, scene frame, metres.
    :ivar size: float64 (3,) full extents of that box, metres.
    :ivar label: the class of its points, empty for a class-agnostic proposal.
    """

    indices: np.ndarray
    center: np.ndarray
    size: np.ndarray
    label: str = ""


def propose_objects(points: np.ndarray, *, voxel_size: float = 0.04,
                    floor_z: float | None = None, min_points: int = 30,
                    link_voxels: float = 1.75, band_voxels: float = 1.5
                    ) -> list[ObjectProposal]:
    """Segment the fused surface into object proposals, largest first.

    The floor band, the ceiling band (when a ceiling was observed) and the bands of the walls
    (large vertical planes with nothing observed behind them) are removed; the rest is split
    into connected components. Objects touching each other (a monitor on its desk) form one
    proposal; flat things on walls vanish with the wall band.

    :param points: float32/64 (N, 3) fused surface points, scene frame (+Z up), metres.
    :param voxel_size: spacing of ``points``, metres.
    :param floor_z: floor height, metres; None estimates it from ``points``.
    :param min_points: smaller clusters are dropped as clutter.
    :param link_voxels: points closer than this many voxels are connected.
    :param band_voxels: points closer than this many voxels to floor, ceiling or a wall are
        structure.
    :return: the proposals, by decreasing point count; empty for an empty scene.
    :raises GroundingInputError: (a ``ValueError``) on points that are not finite (N, 3) or
        non-positive settings.
    """
    points, voxel_size, link, band = checked_clustering(points, voxel_size, link_voxels,
                                                        band_voxels, min_points)
    if floor_z is not None and not np.isfinite(floor_z):
        raise GroundingInputError(f"floor_z must be finite or None, got {floor_z}")
    if len(points) == 0:
        return []
    if floor_z is None:
        floor_z = estimate_floor_height(points, voxel_size=voxel_size)
    horizontal, walls = structure_bands(points, voxel_size=voxel_size, floor_z=floor_z,
                                        band=band)
    index = np.flatnonzero(~(horizontal | walls))
    count, labels = label_components(points[index], link)
    sizes = np.bincount(labels, minlength=count)
    proposals = []
    for label in np.argsort(-sizes, kind="stable"):
        if sizes[label] < min_points:
            break
        members = index[labels == label]
        center, size = box_of_points(points[members])
        proposals.append(ObjectProposal(members.astype(np.int64), center, size))
    return proposals


def structure_bands(points: np.ndarray, *, voxel_size: float, floor_z: float, band: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Which points lie on the room's structure.

    :param points: float (N, 3) fused surface points, scene frame (+Z up), metres, checked.
    :param floor_z: floor height, metres.
    :param band: half-thickness of a structure band, metres.
    :return: ``(horizontal, walls)`` bool (N,) masks: within ``band`` of (or beyond) the
        floor or an observed ceiling, and within ``band`` of a wall (a large vertical plane
        with nothing observed behind it), along its observed length.
    """
    horizontal = points[:, 2] <= floor_z + band
    ceiling_z = _ceiling_height(points, floor_z, voxel_size)
    if ceiling_z is not None:
        horizontal |= points[:, 2] >= ceiling_z - band
    walls = np.zeros(len(points), bool)
    for normal, offset, along, (start, end) in _walls(points, voxel_size):
        # Only along the wall's observed length: in an L-shaped room its plane runs on
        # through the open part of the room.
        position = points @ along
        walls |= (np.abs(points @ normal - offset) <= band) & (position >= start - band) & (
            position <= end + band)
    return horizontal, walls


def _ceiling_height(points: np.ndarray, floor_z: float, voxel_size: float) -> float | None:
    """Height of an observed ceiling (the densest layer near the top), or None."""
    # The same search as for the floor, upside down.
    ceiling_z = -estimate_floor_height(points * [1.0, 1.0, -1.0], voxel_size=voxel_size)
    layer = np.count_nonzero(np.abs(points[:, 2] - ceiling_z) <= voxel_size)
    if ceiling_z - floor_z < _MIN_CEILING_HEIGHT_M or \
            layer * voxel_size ** 2 < _MIN_CEILING_AREA_M2:
        return None
    return ceiling_z


def _walls(points: np.ndarray, voxel_size: float
           ) -> list[tuple[np.ndarray, float, np.ndarray, tuple[float, float]]]:
    """The large vertical planes that bound the observed scene.

    :return: per wall: unit normal, offset, unit horizontal in-plane axis, and the extent of
        its points along that axis (metres).
    """
    cell = _WALL_SEARCH_STRIDE * voxel_size
    _, first = np.unique(np.floor(points / cell).astype(np.int64), axis=0, return_index=True)
    coarse = points[np.sort(first)]
    coarse = coarse[np.lexsort(coarse.T)]
    normals = estimate_normals(coarse)
    candidates = plane_candidates(normals)
    candidates[True] = np.zeros(0, np.int64)  # floor and ceiling are handled by height
    walls = []
    for _ in range(_MAX_WALLS):
        plane = largest_plane(coarse, normals, candidates, inlier_distance_m=cell,
                              min_points=_MIN_WALL_POINTS)
        if plane is None:
            break
        candidates[False] = np.setdiff1d(candidates[False], plane.inliers, assume_unique=True)
        patch = coarse[plane.inliers]
        along = np.array([-plane.normal[1], plane.normal[0], 0.0])
        along /= np.linalg.norm(along)
        if np.ptp(patch @ along) < _MIN_WALL_LENGTH_M or np.ptp(patch[:, 2]) < \
                _MIN_WALL_HEIGHT_M:
            continue
        in_plane = np.stack([along, np.eye(3)[2]])
        # A wall has nothing behind it on one side: the outside of the room.
        for facing in (1.0, -1.0):
            behind = count_behind(facing * plane.normal, facing * plane.offset, patch, coarse,
                                  in_plane, inlier_distance_m=cell, depth_m=_BEHIND_DEPTH_M)
            if behind <= _MAX_BEHIND_FRACTION * len(patch):
                position = patch @ along
                walls.append((plane.normal, plane.offset, along,
                              (float(position.min()), float(position.max()))))
                break
    return walls
