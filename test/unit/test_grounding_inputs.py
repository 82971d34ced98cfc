"""Grounding on hand-built point sets: supports, refinement, fallbacks and input errors."""
from __future__ import annotations

import numpy as np
import pytest

from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.fusion.snapshot import Keyframe
from scene_llm_ros.geometry.boxes import box_iou
from scene_llm_ros.grounding import (
    GroundingInputError,
    estimate_floor_height,
    ground_object,
    mask_in_view,
    propose_objects,
)
from scene_llm_ros.grounding.components import label_components
from scene_llm_ros.grounding.normals import estimate_normals
from scene_llm_ros.grounding.planes import largest_plane, plane_candidates

VOXEL = 0.04


def grid(lower, upper, axis_fixed: int) -> np.ndarray:
    """Points every 4 cm on the axis-aligned rectangle lower..upper (flat along one axis)."""
    axes = [np.arange(lo, hi + 1e-9, VOXEL) if i != axis_fixed else np.array([lo])
            for i, (lo, hi) in enumerate(zip(lower, upper, strict=True))]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def box_surface(lower, upper, *, bottom: bool = False) -> np.ndarray:
    """Sampled faces of an axis-aligned box, as a TSDF sees a closed object."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    faces = []
    for axis in range(3):
        for value in (lower[axis], upper[axis]):
            if axis == 2 and value == lower[2] and not bottom:
                continue
            lo, hi = lower.copy(), upper.copy()
            lo[axis] = hi[axis] = value
            faces.append(grid(lo, hi, axis))
    return np.unique(np.round(np.concatenate(faces), 4), axis=0)


def room_corner() -> np.ndarray:
    """Floor (z = 0) and a wall (x = 0) of a 3 m room corner."""
    return np.concatenate([grid([0.0, 0.0, 0.0], [3.0, 3.0, 0.0], 2),
                           grid([0.0, 0.0, 0.0], [0.0, 3.0, 2.5], 0)])


def test_a_cabinet_against_the_wall_is_cut_from_floor_and_wall():
    cabinet_min, cabinet_max = np.array([0.04, 1.0, 0.0]), np.array([0.64, 1.8, 0.8])
    cabinet = box_surface(cabinet_min, cabinet_max)
    points = np.concatenate([room_corner(), cabinet])
    true_center, true_size = (cabinet_min + cabinet_max) / 2, cabinet_max - cabinet_min
    # The model's box: 12 cm off and 15 % too big.
    predicted_center, predicted_size = true_center + [0.08, -0.06, 0.07], true_size * 1.15
    grounded = ground_object(points, predicted_center, predicted_size, voxel_size=VOXEL)
    assert grounded.refined
    assert sorted(p.horizontal for p in grounded.supports) == [False, True]
    np.testing.assert_allclose(grounded.center, true_center, atol=VOXEL)
    np.testing.assert_allclose(grounded.size, true_size, atol=1.5 * VOXEL)
    assert box_iou(grounded.center, grounded.size, true_center, true_size) > 0.85
    assert box_iou(predicted_center, predicted_size, true_center, true_size) < 0.6
    # The 3D mask is exactly the cabinet's surface minus the 6 cm bands on floor and wall.
    expected = cabinet[(cabinet[:, 0] > 1.5 * VOXEL) & (cabinet[:, 2] > 1.5 * VOXEL)]
    selected = points[grounded.indices]
    assert len(selected) == len(expected)
    np.testing.assert_array_equal(np.unique(selected, axis=0), np.unique(expected, axis=0))


def test_a_monitor_on_a_table_is_cut_from_the_table_top():
    table = np.concatenate([grid([0.8, 0.8, 0.76], [2.0, 1.6, 0.76], 2)]
                           + [box_surface([x, y, 0.0], [x + 0.04, y + 0.04, 0.72])
                              for x in (0.8, 1.96) for y in (0.8, 1.56)])
    monitor_min, monitor_max = np.array([1.2, 1.2, 0.76]), np.array([1.4, 1.6, 1.16])
    points = np.concatenate([room_corner(), table, box_surface(monitor_min, monitor_max)])
    true_center, true_size = (monitor_min + monitor_max) / 2, monitor_max - monitor_min
    grounded = ground_object(points, true_center + [-0.1, 0.05, -0.06], true_size * 0.85,
                             voxel_size=VOXEL)
    assert grounded.refined
    # The floor (estimated) and the table top.
    assert [round(float(p.offset), 2) for p in grounded.supports if p.horizontal] == [0.0, 0.76]
    assert box_iou(grounded.center, grounded.size, true_center, true_size) > 0.8
    assert grounded.center[2] == pytest.approx(true_center[2], abs=VOXEL)


def test_a_box_over_empty_space_falls_back_to_the_prediction():
    points = room_corner()
    center, size = np.array([1.5, 1.5, 1.2]), np.array([0.4, 0.4, 0.4])
    grounded = ground_object(points, center, size)
    assert not grounded.refined and len(grounded.indices) == 0
    np.testing.assert_array_equal(grounded.center, center)
    np.testing.assert_array_equal(grounded.size, size)


def test_a_picture_flat_on_the_wall_falls_back_to_the_prediction():
    # 2 cm thick: inside the wall's support band, so geometry cannot tell it from the wall.
    picture_min, picture_max = np.array([0.0, 1.0, 1.2]), np.array([0.02, 1.6, 1.6])
    points = np.concatenate([room_corner(), box_surface(picture_min, picture_max)])
    center, size = (picture_min + picture_max) / 2 + [0.05, 0.05, 0.0], [0.1, 0.7, 0.5]
    grounded = ground_object(points, center, size)
    assert not grounded.refined
    np.testing.assert_array_equal(grounded.center, center)
    assert [p.horizontal for p in grounded.supports] == [True, False]
    # Its points are the surface the prediction covers: the picture and the wall behind it.
    lower, upper = center - np.asarray(size) / 2, center + np.asarray(size) / 2
    covered = np.flatnonzero(((points >= lower) & (points <= upper)).all(axis=1))
    np.testing.assert_array_equal(grounded.indices, covered)
    assert len(covered) > 0


def test_floor_height_of_a_room_and_of_nothing():
    points = np.concatenate([room_corner(), box_surface([1.0, 1.0, 0.0], [1.5, 1.5, 0.4])])
    assert estimate_floor_height(points - [0.0, 0.0, 0.3]) == pytest.approx(-0.3, abs=1e-9)
    assert estimate_floor_height(np.zeros((0, 3))) is None


@pytest.mark.parametrize("center, size, message", [
    ([np.nan, 0.0, 0.0], [1.0, 1.0, 1.0], "finite"),
    ([0.0, 0.0, 0.0], [1.0, 0.0, 1.0], "positive"),
    ([0.0, 0.0, 0.0], [1.0, -1.0, 1.0], "positive"),
    ([0.0, 0.0], [1.0, 1.0, 1.0], "shape"),
])
def test_bad_boxes_are_rejected(center, size, message):
    with pytest.raises(GroundingInputError, match=message):
        ground_object(room_corner(), center, size)


def test_bad_points_and_settings_are_rejected():
    with pytest.raises(ValueError, match="without surface points"):
        ground_object(np.zeros((0, 3)), np.zeros(3), np.ones(3))
    with pytest.raises(GroundingInputError, match=r"shape \(N, 3\)"):
        ground_object(np.zeros((5, 2)), np.zeros(3), np.ones(3))
    with pytest.raises(GroundingInputError, match="1 points with NaN"):
        ground_object(np.array([[0.0, 0.0, np.nan], [1.0, 1.0, 1.0]]), np.zeros(3), np.ones(3))
    with pytest.raises(GroundingInputError, match="voxel_size"):
        ground_object(room_corner(), np.ones(3), np.ones(3), voxel_size=0.0)
    with pytest.raises(GroundingInputError, match="floor_z"):
        ground_object(room_corner(), np.ones(3), np.ones(3), floor_z=float("nan"))
    with pytest.raises(GroundingInputError, match="passes must be >= 1"):
        ground_object(room_corner(), np.ones(3), np.ones(3), passes=0)


def flat_keyframe(depth_m: float = 2.0) -> Keyframe:
    """A 64x48 camera at the origin looking along +Z at a wall ``depth_m`` away."""
    k = CameraIntrinsics(60.0, 60.0, 31.5, 23.5, 64, 48)
    depth = np.full((48, 64), depth_m, np.float32)
    return Keyframe(np.zeros((48, 64, 3), np.uint8), depth, k, np.eye(4), 0, "cam")


def test_view_mask_marks_exactly_the_patch_seen_at_its_depth():
    keyframe = flat_keyframe()
    # A 0.4 m square patch of the wall in front of the camera, sampled every 4 cm.
    patch = grid([-0.2, -0.2, 2.0], [0.2, 0.2, 2.0], 2)
    view = mask_in_view(patch, keyframe, voxel_size=VOXEL, radius_voxels=1.0)
    assert view.mask.dtype == np.uint8 and view.mask.shape == (48, 64)
    assert set(np.unique(view.mask)) == {0, 255}
    # The patch spans +-0.2 m at 2 m: +-6 px around the principal point, plus one radius.
    x, y, width, height = view.roi
    assert abs(x + width / 2 - 32) <= 1 and abs(y + height / 2 - 24) <= 1
    assert 12 <= width <= 16 and 12 <= height <= 16
    assert view.visible and (view.mask > 0).sum() == width * height  # dense, no holes
    # The same points behind an occluder 1 m from the camera are not visible.
    hidden = mask_in_view(patch, flat_keyframe(1.0), voxel_size=VOXEL)
    assert not hidden.visible and hidden.roi == (0, 0, 0, 0) and not hidden.mask.any()
    # Behind the camera: nothing to project.
    assert not mask_in_view(patch * [1, 1, -1], keyframe).visible
    assert not mask_in_view(np.zeros((0, 3)), keyframe).visible


def test_view_mask_fills_depth_dropouts_inside_the_object_only():
    keyframe = flat_keyframe()
    keyframe.depth[24, 32] = np.nan      # a dropout inside the patch
    keyframe.depth[5, 5] = np.nan        # one far away from it
    view = mask_in_view(grid([-0.2, -0.2, 2.0], [0.2, 0.2, 2.0], 2), keyframe)
    assert view.mask[24, 32] == 255 and view.mask[5, 5] == 0


def test_view_mask_splats_where_depth_is_missing_unless_an_occluder_is_next_to_it():
    patch = grid([-0.2, -0.2, 2.0], [0.2, 0.2, 2.0], 2)
    # Beyond the depth range: no depth anywhere, the projected points make the mask.
    beyond = flat_keyframe()
    beyond.depth[:] = np.nan
    splatted = mask_in_view(patch, beyond, voxel_size=VOXEL)
    # 0.4 m at 2 m is 12 px; each point grows by its 1.2 px spacing, one pixel per side.
    assert splatted.visible and splatted.roi[2:] == (15, 15)
    assert (splatted.mask > 0).sum() == 15 * 15  # dense
    # An occluder at 1 m over the left half, its edge pixels dropped (as structured light
    # sensors do): the dropouts next to the nearer occluder are not the object.
    occluded = flat_keyframe()
    occluded.depth[:, :32] = 1.0
    occluded.depth[:, 31:33] = np.nan
    view = mask_in_view(patch, occluded, voxel_size=VOXEL)
    assert not view.mask[:, :33].any()
    assert view.mask[24, 34] == 255


def test_view_mask_rejects_a_missing_or_inconsistent_keyframe():
    with pytest.raises(GroundingInputError, match="no keyframe"):
        mask_in_view(np.zeros((3, 3)), None)
    keyframe = flat_keyframe()
    bad = Keyframe(keyframe.color, keyframe.depth[:40], keyframe.intrinsics, np.eye(4), 0, "c")
    with pytest.raises(GroundingInputError, match="64x40"):
        mask_in_view(np.zeros((3, 3)), bad)


def test_components_link_within_the_radius_only():
    line = np.stack([np.arange(5) * VOXEL, np.zeros(5), np.zeros(5)], 1)
    apart = np.concatenate([line, line + [1.0, 0.0, 0.0]])
    count, labels = label_components(apart, 1.75 * VOXEL)
    assert count == 2 and labels.tolist() == [0] * 5 + [1] * 5
    assert label_components(np.zeros((0, 3)), 0.1)[0] == 0


def test_normals_of_a_plane_are_its_axis():
    normals = estimate_normals(grid([0.0, 0.0, 1.0], [1.0, 1.0, 1.0], 2))
    np.testing.assert_allclose(np.abs(normals[:, 2]), 1.0, atol=1e-9)


def test_proposals_are_the_objects_without_floor_and_wall():
    cabinet = box_surface([0.04, 1.0, 0.0], [0.64, 1.8, 0.8])
    crate = box_surface([1.5, 1.5, 0.0], [1.9, 2.1, 0.5])
    points = np.concatenate([room_corner(), cabinet, crate])
    proposals = propose_objects(points, voxel_size=VOXEL)
    assert [len(p.indices) for p in proposals] == sorted(len(p.indices) for p in proposals)[::-1]
    assert len(proposals) == 2
    boxes = {round(float(p.center[0]), 2): (p.center, p.size) for p in proposals}
    # Both lose the floor band (6 cm, the grid rows at 0 and 4 cm), the cabinet also the wall
    # band (its back at x = 4 cm).
    np.testing.assert_allclose(boxes[1.7][1], [0.4, 0.6, 0.5 - 2 * VOXEL], atol=1e-6)
    np.testing.assert_allclose(boxes[0.36][1], [0.56, 0.8, 0.8 - 2 * VOXEL], atol=1e-6)
    assert propose_objects(np.zeros((0, 3))) == []


def test_a_degenerate_plane_patch_is_no_plane():
    # Points on one spot: their vertical refit has no direction and keeps no inliers (this
    # used to crash on the empty patch during offline evaluation).
    points = np.zeros((3, 3))
    normals = np.tile([0.0, 1.0, 0.0], (3, 1))
    assert largest_plane(points, normals, plane_candidates(normals), inlier_distance_m=0.02,
                         min_points=2) is None
