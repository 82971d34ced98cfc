"""Planes that connect an object to the rest of the scene: its supports and its top.

Support surfaces (the floor, a table top, a wall) connect every object standing on or
leaning against them, and an object's top connects it to what stands on it, so they must be
cut before connected components can isolate one object. Supports are large planes that span
the neighbourhood of the box, which an object's own faces do not.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scene_llm_ros.grounding.planes import largest_plane, plane_candidates


@dataclass(frozen=True)
class SupportPlane:
    """A support surface: the plane ``normal . x = offset`` (scene frame, metres).

    :ivar normal: float64 (3,) unit normal pointing towards the supported object.
    :ivar offset: signed distance of the plane from the origin along ``normal``.
    :ivar horizontal: True for floors and table tops, False for walls.
    :ivar inliers: points of the neighbourhood that lie on the plane (0 for the floor, which
        is given by its height).
    """

    normal: np.ndarray
    offset: float
    horizontal: bool
    inliers: int

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """float64 (N,) distance of each point from the plane, positive on the object's side."""
        return points @ self.normal - self.offset


@dataclass(frozen=True)
class PlaneSearch:
    """Settings of :func:`find_cuts`.

    :ivar inlier_distance_m: a point within this distance of a plane lies on it.
    :ivar min_plane_points: planes with fewer inliers are ignored.
    :ivar max_planes: planes extracted per neighbourhood, supports or not.
    :ivar min_coverage: a wall spans at least this fraction of the neighbourhood along its
        length or height.
    :ivar min_table_overhang: a table top is at least this many times wider than the
        predicted box along one horizontal axis (and not much narrower along the other).
    :ivar min_top_coverage: an object's top spans at least this fraction of the predicted
        box along both horizontal axes.
    :ivar max_behind_fraction: a plane bounds the scene when the points behind it number at
        most this fraction of its own points.
    :ivar behind_depth_m: how far behind a plane points are looked for, metres.
    """

    inlier_distance_m: float
    min_plane_points: int = 40
    max_planes: int = 6
    min_coverage: float = 0.75
    min_table_overhang: float = 1.3
    min_top_coverage: float = 0.6
    max_behind_fraction: float = 0.1
    behind_depth_m: float = 1.0


@dataclass(frozen=True)
class Cuts:
    """What separates an object from its surroundings.

    :ivar supports: the floor, table top and walls it stands on or against; they are cut away
        with everything beyond them.
    :ivar top_z: height of the object's own top surface (a desk top), metres, or None; what
        stands on it (a monitor) is cut away above it.
    """

    supports: tuple[SupportPlane, ...]
    top_z: float | None


def find_cuts(points: np.ndarray, normals: np.ndarray, context: np.ndarray,
              box_center: np.ndarray, box_size: np.ndarray, search: PlaneSearch, *,
              floor_z: float) -> Cuts:
    """Support planes and top surface of the object predicted by a box.

    Planes are extracted greedily, largest first, from points whose normals are horizontal or
    vertical, then judged:

    - The floor (the plane at ``floor_z``) supports everything above it.
    - A wall bounds the observed scene (almost nothing lies behind it, while behind an
      object's own face is the rest of the object or of the room), reaches the top of the
      neighbourhood and spans it along its length or its height (the object hides the rest).
    - A table top lies below the box centre and overhangs the box: it is wider than the box
      along one axis by more than the box's size error (a table top under a monitor is; a
      chair seat, no wider than the chair, is not).
    - The object's top is the highest horizontal plane in its top quarter that spans most of
      the box's footprint (a desk top does; a monitor's thin top edge does not).

    :param points: float64 (N, 3) scene-frame neighbourhood of the box, metres.
    :param normals: float64 (N, 3) unit normals of ``points`` (any sign).
    :param context: float64 (M, 3) scene points around ``points``, at least
        ``search.behind_depth_m`` farther out on every side: what lies behind a plane.
    :param box_center: float64 (3,) centre of the predicted box.
    :param box_size: float64 (3,) full extents of the predicted box.
    :param search: plane extraction and support thresholds.
    :param floor_z: height of the scene's floor, metres.
    :return: the cuts; walls face the room, floors and table tops face up.
    """
    supports = []
    if floor_z < box_center[2]:
        supports.append(SupportPlane(np.array([0.0, 0.0, 1.0]), float(floor_z), True, 0))
    top_z = None
    candidates = plane_candidates(normals)
    for _ in range(search.max_planes):
        plane = largest_plane(points, normals, candidates,
                              inlier_distance_m=search.inlier_distance_m,
                              min_points=search.min_plane_points)
        if plane is None:
            break
        candidates[plane.horizontal] = np.setdiff1d(candidates[plane.horizontal],
                                                    plane.inliers, assume_unique=True)
        plane_points = points[plane.inliers]
        if plane.horizontal:
            height = plane.offset
            if abs(height - floor_z) <= search.inlier_distance_m:
                continue  # the floor, cut already
            if _is_table_top(height, plane_points, box_center, box_size, search):
                supports.append(SupportPlane(plane.normal, height, True, len(plane.inliers)))
            elif _is_object_top(height, plane_points, box_center, box_size, search):
                top_z = height if top_z is None else max(top_z, height)
            continue
        # A wall faces the room, the side holding most of the neighbourhood (not necessarily
        # the box centre's side: a predicted box may stick out through the wall).
        distance = points @ plane.normal - plane.offset
        in_front = np.count_nonzero(distance > search.inlier_distance_m)
        facing = 1.0 if in_front >= np.count_nonzero(distance < -search.inlier_distance_m) \
            else -1.0
        normal, offset = facing * plane.normal, facing * plane.offset
        if _is_wall(normal, offset, plane_points, points, context, search):
            supports.append(SupportPlane(normal, offset, False, len(plane.inliers)))
    return Cuts(tuple(supports), top_z)


def _is_table_top(height: float, plane_points: np.ndarray, box_center: np.ndarray,
                  box_size: np.ndarray, search: PlaneSearch) -> bool:
    if height >= box_center[2]:
        return False
    extent = np.ptp(plane_points[:, :2], axis=0) / box_size[:2]
    return bool(extent.max() >= search.min_table_overhang
                and extent.min() >= 1.0 / search.min_table_overhang)


def _is_object_top(height: float, plane_points: np.ndarray, box_center: np.ndarray,
                   box_size: np.ndarray, search: PlaneSearch) -> bool:
    if height < box_center[2] + box_size[2] / 4:
        return False
    extent = np.ptp(plane_points[:, :2], axis=0)
    return bool(np.all(extent >= search.min_top_coverage * box_size[:2]))


def _is_wall(normal: np.ndarray, offset: float, plane_points: np.ndarray, points: np.ndarray,
             context: np.ndarray, search: PlaneSearch) -> bool:
    if plane_points[:, 2].max() < points[:, 2].max() - 2 * search.inlier_distance_m:
        return False  # walls rise above what stands against them
    along = np.array([-normal[1], normal[0], 0.0])
    in_plane = np.stack([along / np.linalg.norm(along), np.eye(3)[2]])
    behind = count_behind(normal, offset, plane_points, context, in_plane,
                          inlier_distance_m=search.inlier_distance_m,
                          depth_m=search.behind_depth_m)
    if behind > search.max_behind_fraction * len(plane_points):
        return False
    return max(_coverage(plane_points, points, axis) for axis in in_plane) >= search.min_coverage


def count_behind(normal: np.ndarray, offset: float, plane_points: np.ndarray,
                 context: np.ndarray, in_plane: np.ndarray, *, inlier_distance_m: float,
                 depth_m: float) -> int:
    """Scene points behind a plane's patch, up to ``depth_m`` deep.

    The region behind the patch is its extent along the horizontal in-plane axes shrunk by the
    inlier distance, so that a perpendicular wall meeting it in a corner does not count, and
    its vertical extent grown by it, so that the floor in front of an object's face (behind
    it, seen from the object) does count while the floor of the room is in front of a wall.

    :param normal: float64 (3,) unit normal; "behind" is its negative side.
    :param offset: the plane is ``normal . x = offset``, metres.
    :param plane_points: float64 (P, 3) the patch.
    :param context: float64 (M, 3) the scene points to count.
    :param in_plane: float64 (2, 3) unit in-plane axes.
    """
    depth = context @ normal - offset
    behind = (depth < -inlier_distance_m) & (depth > -depth_m)
    for axis in in_plane:
        projected = plane_points @ axis
        pad = inlier_distance_m if axis[2] == 1.0 else -inlier_distance_m
        position = context @ axis
        behind &= (position > projected.min() - pad) & (position < projected.max() + pad)
    return int(behind.sum())


def _coverage(plane_points: np.ndarray, points: np.ndarray, axis: np.ndarray) -> float:
    """Extent of the plane's points along ``axis`` as a fraction of all points' extent."""
    extent = np.ptp(points @ axis)
    return float(np.ptp(plane_points @ axis) / extent) if extent > 0 else 1.0
