"""Pictures of the replay evaluation: box projection, mask overlay, written PNGs."""
from __future__ import annotations

import numpy as np
from PIL import Image

from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.evaluation import AskResult, PredictedObject, ReferenceCamera
from scene_llm_ros.evaluation.pictures import (
    LabelledBox,
    box_corners,
    draw_grounding,
    draw_topdown,
    overlay_masks,
    picture_name,
    project_box,
)

CAMERA = ReferenceCamera(CameraIntrinsics(100.0, 100.0, 80.0, 60.0, 160, 120), np.eye(4), 5, "cam")


def test_box_corners_and_projection():
    corners = box_corners(np.array([1.0, 2.0, 3.0, 2.0, 4.0, 6.0]))
    np.testing.assert_allclose(corners[0], [0, 0, 0])
    np.testing.assert_allclose(corners[7], [2, 4, 6])
    np.testing.assert_allclose(corners[1], [2, 0, 0])  # bit 0 = x
    # A flat square 2 m ahead of an identity camera: 12 edges, 4 of them zero-length.
    segments = project_box(np.array([0.0, 0.0, 2.0, 0.2, 0.4, 0.0]), CAMERA)
    pixels = np.concatenate(segments)
    assert len(segments) == 12
    np.testing.assert_allclose(pixels.min(axis=0), [75.0, 50.0])
    np.testing.assert_allclose(pixels.max(axis=0), [85.0, 70.0])
    # A camera moved 1 m to +x sees the square 50 px further left.
    moved = ReferenceCamera(CAMERA.intrinsics, np.diag([1.0, 1, 1, 1]), 5, "cam")
    moved.T_world_cam[0, 3] = 1.0
    shifted = np.concatenate(project_box(np.array([0.0, 0.0, 2.0, 0.2, 0.4, 0.0]), moved))
    np.testing.assert_allclose(shifted.min(axis=0), [25.0, 50.0])
    # Behind the camera: nothing; across the near plane: edges cut, all finite.
    assert project_box(np.array([0.0, 0.0, -2.0, 1.0, 1.0, 1.0]), CAMERA) == []
    crossing = project_box(np.array([0.0, 0.0, 0.0, 1.0, 1.0, 2.0]), CAMERA)
    assert crossing and all(np.all(np.isfinite(s)) for s in crossing)


def test_overlay_tints_only_the_mask():
    image = np.full((4, 5, 3), 100, np.uint8)
    mask = np.zeros((4, 5), np.uint8)
    mask[1, 2] = 255
    out = overlay_masks(image, [mask, np.ones((3, 3), np.uint8), None])
    assert not np.array_equal(out[1, 2], image[1, 2]) and out[1, 2, 0] > 100
    untouched = np.ones((4, 5), bool)
    untouched[1, 2] = False
    np.testing.assert_array_equal(out[untouched], image[untouched])


def test_pictures_are_written(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 3, size=(500, 3)).astype(np.float32)
    colors = rng.integers(0, 256, size=(500, 3), dtype=np.uint8)
    box = np.array([1.0, 1.0, 0.5, 0.5, 0.5, 1.0])
    path = draw_topdown(tmp_path / "topdown.png", points, colors,
                        predicted=[LabelledBox(box, "Q0")], ground_truth=[LabelledBox(box, "Q0")])
    assert Image.open(path).size == (800, 800)
    draw_topdown(tmp_path / "empty.png", np.zeros((0, 3), np.float32),
                 np.zeros((0, 3), np.uint8), predicted=[], ground_truth=[])
    assert (tmp_path / "empty.png").stat().st_size > 0

    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 60:100] = 255
    result = AskResult(True, "", "", "the chair", [PredictedObject(
        "0", "chair", 0.8, np.array([0.0, 0.0, 2.0]), np.array([0.4, 0.4, 0.4]),
        (60, 40, 40, 40), mask)], CAMERA)
    image = np.zeros((120, 160, 3), np.uint8)
    path = draw_grounding(tmp_path / "grounding" / "q.png", image, result, question="the chair",
                          gt_boxes=box[None], caption="iou 0.10")
    with Image.open(path) as written:
        assert written.format == "PNG" and written.size[0] == 700
    failed = AskResult.failed("TIMEOUT", "slow")
    assert draw_grounding(tmp_path / "f.png", None, failed, question="q", gt_boxes=None).is_file()


def test_picture_names_are_safe():
    assert picture_name("scene0000_00|12|3") == "scene0000_00_12_3"
    assert picture_name("../..") == "question"
    assert picture_name("a b/c") == "a_b_c"
