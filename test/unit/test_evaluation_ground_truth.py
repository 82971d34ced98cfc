"""Ground-truth boxes of the replay evaluation: GT transforms, ScanNet-format scenes, attaching."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from scene_llm_ros.data.scannet import (
    ScanNetMesh,
    SegGroup,
    write_aggregation,
    write_mesh,
    write_segs,
)
from scene_llm_ros.data.transforms import make_transform
from scene_llm_ros.evaluation import (
    EvalQuestion,
    GroundTruthError,
    attach_ground_truth,
    read_transform,
    scene_boxes,
)

# Two chairs and a table: corners of axis-aligned boxes, one segment per object.
OBJECTS = {1: ("chair", [0.0, 0.0, 0.0], [0.5, 0.4, 0.9]),
           2: ("chair", [2.0, 1.0, 0.0], [2.5, 1.4, 0.9]),
           3: ("table", [1.0, 2.0, 0.0], [2.2, 2.8, 0.75])}


def _write_scene(root):
    scene = root / "scans" / "scene0123_00"
    scene.mkdir(parents=True)
    vertices, segments, groups = [], [], []
    for object_id, (label, lo, hi) in OBJECTS.items():
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])], np.float32)
        vertices.append(corners)
        segments += [object_id] * 8
        groups.append(SegGroup(id=object_id - 1, object_id=object_id, segments=[object_id],
                               label=label))
    vertices = np.concatenate(vertices)
    faces = np.array([[0, 1, 2]], np.int32)
    write_mesh(scene / "scene0123_00_vh_clean_2.ply",
               ScanNetMesh(vertices, np.full((len(vertices), 4), 200, np.uint8), faces))
    segs = "scene0123_00_vh_clean_2.0.010000.segs.json"
    write_segs(scene / segs, np.array(segments), scene_id="scene0123_00")
    write_aggregation(scene / "scene0123_00.aggregation.json", groups, scene_id="scene0123_00",
                      segs_file=segs)
    return scene


def test_read_transform_layouts_and_errors(tmp_path):
    T = make_transform([0.9238795, 0.0, 0.0, 0.3826834], [1.0, -2.0, 0.5])
    layouts = {"plain.txt": "\n".join(" ".join(f"{v:.9f}" for v in row) for row in T),
               "line.txt": " ".join(f"{v:.9f}" for v in T.ravel()),
               "matrix.json": json.dumps(T.tolist()),
               "meta.txt": "axisAlignment = " + " ".join(f"{v:.9f}" for v in T.ravel())}
    for name, text in layouts.items():
        (tmp_path / name).write_text(text)
        np.testing.assert_allclose(read_transform(tmp_path / name), T, atol=1e-8)
    (tmp_path / "short.txt").write_text("1 0 0 0 1 0")
    with pytest.raises(GroundTruthError, match="16 numbers, found 6"):
        read_transform(tmp_path / "short.txt")
    (tmp_path / "scaled.txt").write_text(" ".join(str(v) for v in (2 * np.eye(4)).ravel()))
    with pytest.raises(GroundTruthError, match="last row"):
        read_transform(tmp_path / "scaled.txt")
    scaled = np.eye(4)
    scaled[0, 0] = 2.0
    (tmp_path / "scaled2.txt").write_text(" ".join(str(v) for v in scaled.ravel()))
    with pytest.raises(GroundTruthError, match="not orthonormal"):
        read_transform(tmp_path / "scaled2.txt")
    with pytest.raises(GroundTruthError, match="cannot read"):
        read_transform(tmp_path / "missing.txt")


def test_scene_boxes_in_the_mesh_frame_and_transformed(tmp_path):
    scene = _write_scene(tmp_path)
    boxes = scene_boxes(scene)
    np.testing.assert_allclose(boxes.boxes[1], [0.25, 0.2, 0.45, 0.5, 0.4, 0.9], atol=1e-6)
    np.testing.assert_allclose(boxes.boxes[3], [1.6, 2.4, 0.375, 1.2, 0.8, 0.75], atol=1e-6)
    # Without a label map the raw labels decide unique/multiple: two chairs, one table.
    assert not boxes.is_unique(1) and boxes.is_unique(3)
    # A quarter turn about +Z swaps the x and y extents and moves the centre.
    T = make_transform([0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4)], [10.0, 0.0, 0.0])
    turned = scene_boxes(scene, T)
    np.testing.assert_allclose(turned.boxes[3], [10 - 2.4, 1.6, 0.375, 0.8, 1.2, 0.75],
                               atol=1e-5)
    with pytest.raises(GroundTruthError, match="object ids \\[7\\]"):
        boxes.boxes_of([1, 7], question_id="q9")
    with pytest.raises(GroundTruthError, match="--gt-scene"):
        scene_boxes(tmp_path / "scans" / "nothing_here")


def test_attach_ground_truth(tmp_path):
    gt = scene_boxes(_write_scene(tmp_path))
    given = np.array([[9.0, 9.0, 9.0, 1.0, 1.0, 1.0]])
    questions = [
        EvalQuestion("r", "the chair", "ground", "scanrefer", object_ids=(2,)),
        EvalQuestion("m", "the chairs", "ground", "multi3drefer", object_ids=(1, 2),
                     eval_type="mt"),
        EvalQuestion("b", "the box", "ground", "scanrefer", gt_boxes=given, object_ids=(3,)),
        EvalQuestion("qa", "what?", "qa", "scanqa", references=("x",), object_ids=(99,)),
    ]
    out = {q.id: q for q in attach_ground_truth(questions, gt)}
    np.testing.assert_allclose(out["r"].gt_boxes, [gt.boxes[2]])
    assert out["r"].unique is False and out["b"].unique is True
    assert out["m"].gt_boxes.shape == (2, 6) and out["m"].unique is None
    np.testing.assert_allclose(out["b"].gt_boxes, given)  # the file's boxes win
    assert out["qa"].gt_boxes is None  # not a grounding question: object 99 never looked up

    with pytest.raises(GroundTruthError, match="1 grounding questions have no ground-truth "
                                               "boxes \\(r\\): pass --gt-scene"):
        attach_ground_truth(questions[:1], None)
    with pytest.raises(GroundTruthError, match="'x' refers to object ids \\[42\\]"):
        attach_ground_truth([replace(questions[0], id="x", object_ids=(42,))], gt)
    # The unique split must cover all ScanRefer questions or none.
    partial = [replace(questions[0], gt_boxes=given, unique=True),
               replace(questions[2], id="c")]
    assert all(q.unique is None for q in attach_ground_truth(partial, None))
