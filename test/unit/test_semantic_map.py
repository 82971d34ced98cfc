"""The semantic map: patch classes lifted onto the surface, saved with the scene, segmented."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from scene_llm_ros.fusion.scene import SceneFusion
from scene_llm_ros.fusion.semantic_map import UNKNOWN_CLASS, SemanticMap
from scene_llm_ros.geometry.boxes import box_iou
from scene_llm_ros.grounding import (
    GroundingInputError,
    SnapshotGrounder,
    ground_object,
    object_classes,
    propose_objects,
    segment_by_class,
)

VOXEL = 0.04
NAMES = ("floor", "chair", "table", "wall")
FLOOR, CHAIR, TABLE, WALL = range(4)


def test_pixels_carry_their_patch_class_onto_the_surface():
    """A camera 2 m in front of a plane: the left half of the image is a chair, the right
    half a table, and one corner is mostly floor but second-most chair."""
    intrinsics = CameraIntrinsics(100.0, 100.0, 63.5, 47.5, 128, 96)
    depth = np.full((96, 128), 2.0, np.float32)
    depth[:8, :8] = np.nan
    probabilities = np.zeros((6, 8, 4), np.float32)
    probabilities[:, :4] = [0.05, 0.85, 0.05, 0.05]
    probabilities[:, 4:] = [0.05, 0.05, 0.85, 0.05]
    probabilities[4:, :2] = [0.6, 0.3, 0.05, 0.05]
    semantic = SemanticMap(VOXEL, NAMES, pixel_stride=2)
    assert semantic.add(probabilities, depth, intrinsics, np.eye(4)) > 0

    # World = camera frame here: x right, y down, z forward.
    points = np.array([[-0.4, -0.2, 2.0],   # left: chair
                       [0.4, -0.2, 2.0],    # right: table
                       [-1.1, 0.8, 2.0],    # bottom-left corner: floor, else chair
                       [0.4, -0.2, 2.0 + VOXEL],  # one voxel off the plane: its neighbours
                       [0.0, 0.0, 3.0]])    # nothing was seen here
    classes, object_classes = semantic.classes_at(points)
    np.testing.assert_array_equal(classes, [CHAIR, TABLE, FLOOR, TABLE, UNKNOWN_CLASS])
    np.testing.assert_array_equal(object_classes, [CHAIR, TABLE, CHAIR, TABLE, UNKNOWN_CLASS])

    restored = SemanticMap.from_state_dict(semantic.state_dict())
    for mine, theirs in zip(restored.classes_at(points), (classes, object_classes),
                            strict=True):
        np.testing.assert_array_equal(mine, theirs)
    state = semantic.state_dict()
    state["class_names"] = np.array(NAMES[:3])
    with pytest.raises(DataFormatError, match="3 classes"):
        SemanticMap.from_state_dict(state)
    with pytest.raises(DataFormatError, match="missing"):
        SemanticMap.from_state_dict({k: v for k, v in state.items() if k != "pixel_stride"})


def classifying_encoder(names=NAMES, seed: int = 0) -> BuiltinPatchEncoder:
    encoder = BuiltinPatchEncoder(BuiltinEncoderConfig(image_height=96, image_width=128))
    torch.manual_seed(seed)
    encoder.set_classes(list(names), nn.Linear(encoder.feature_dim, len(names)))
    return encoder


def test_encoder_class_head_round_trips_and_changes_the_identity(tmp_path):
    encoder = classifying_encoder()
    encoder.save_pretrained(tmp_path / "enc")
    loaded = BuiltinPatchEncoder.from_pretrained(tmp_path / "enc")
    assert loaded.class_names == NAMES
    image = np.random.default_rng(0).integers(0, 255, (1, 96, 128, 3), dtype=np.uint8)
    probabilities = loaded.classify(loaded.encode(image))
    assert probabilities.shape == (1, 6, 8, 4)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities, encoder.classify(encoder.encode(image)),
                               rtol=1e-5)
    other = classifying_encoder(seed=1)
    other.save_pretrained(tmp_path / "other")
    assert BuiltinPatchEncoder.from_pretrained(tmp_path / "other").identity != loaded.identity
    plain = BuiltinPatchEncoder(BuiltinEncoderConfig(image_height=96, image_width=128))
    assert plain.classify(plain.encode(image)) is None and plain.class_names == ()
    (tmp_path / "enc" / BuiltinPatchEncoder.CLASSES_NAME).write_text('["floor"]')
    with pytest.raises(DataFormatError, match="class head"):
        BuiltinPatchEncoder.from_pretrained(tmp_path / "enc")


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    """A small room fused with a classifying encoder: its snapshot and its saved scene."""
    scene = generate_scene(0, "scene9001_00", SynthConfig(width=160, height=120, num_frames=8,
                                                          write_sens=False))
    fusion = SceneFusion(FusionConfig(voxel_size_m=VOXEL), encoder=classifying_encoder())
    for frame in scene.frames:
        fusion.integrate(frame)
    saved = tmp_path_factory.mktemp("semantic") / "scene"
    fusion.save(saved)
    return fusion.snapshot(), saved


def test_snapshots_classify_every_surface_point_and_saves_keep_the_map(fused):
    snapshot, saved = fused
    assert snapshot.class_names == NAMES
    assert snapshot.point_classes.shape == snapshot.point_object_classes.shape == (
        len(snapshot.points),)
    assert (snapshot.point_classes != UNKNOWN_CLASS).mean() > 0.95
    assert not np.isin(snapshot.point_object_classes, [FLOOR, WALL]).any()

    restored = SceneFusion(FusionConfig(voxel_size_m=VOXEL), encoder=classifying_encoder())
    restored.load(saved)
    again = restored.snapshot()
    # A reloaded TSDF lists its surface points in another order.
    order, again_order = np.lexsort(snapshot.points.T), np.lexsort(again.points.T)
    np.testing.assert_array_equal(again.points[again_order], snapshot.points[order])
    for name in ("point_classes", "point_object_classes"):
        np.testing.assert_array_equal(getattr(again, name)[again_order],
                                      getattr(snapshot, name)[order])

    # An encoder over other classes cannot extend the saved map: it starts a new one.
    renamed = SceneFusion(FusionConfig(voxel_size_m=VOXEL),
                          encoder=classifying_encoder(("floor", "sofa", "bed", "wall")))
    renamed.load(saved)
    assert (renamed.snapshot().point_classes == UNKNOWN_CLASS).all()
    plain = SceneFusion(FusionConfig(voxel_size_m=VOXEL), encoder=BuiltinPatchEncoder(
        BuiltinEncoderConfig(image_height=96, image_width=128)))
    plain.load(saved)
    assert plain.snapshot().point_classes is None


def box_surface(box_min, box_max, step: float = VOXEL) -> np.ndarray:
    """Points on the faces of an axis-aligned box, ``step`` apart."""
    box_min, box_max = np.asarray(box_min, float), np.asarray(box_max, float)
    axes = [np.arange(lo, hi + step / 2, step) for lo, hi in zip(box_min, box_max, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    on_face = np.isclose(grid, box_min, atol=step / 2) | np.isclose(grid, box_max,
                                                                    atol=step / 2)
    return grid[on_face.any(axis=1)]


@pytest.fixture()
def touching():
    """A floor, a wall, a table and a chair pushed against it: points with classes.

    The chair's lowest 10 cm (thin legs against the floor) are classified floor by the map,
    with chair as their best object class.
    """
    floor = np.stack(np.meshgrid(np.arange(-1.0, 3.0, VOXEL), np.arange(-1.0, 3.0, VOXEL),
                                 [0.0], indexing="ij"), axis=-1).reshape(-1, 3)
    wall = np.stack(np.meshgrid([-1.0], np.arange(-1.0, 3.0, VOXEL),
                                np.arange(0.0, 2.5, VOXEL), indexing="ij"), axis=-1).reshape(-1, 3)
    table = box_surface([0.4, 0.4, 0.0], [1.4, 1.0, 0.76])
    chair = box_surface([1.44, 0.5, 0.0], [1.92, 0.96, 0.88])
    points = np.concatenate([floor, wall, table, chair]).astype(np.float32)
    classes = np.concatenate([np.full(len(floor), FLOOR), np.full(len(wall), WALL),
                              np.full(len(table), TABLE), np.full(len(chair), CHAIR)])
    fallback = np.where(classes == FLOOR, TABLE, classes)
    fallback[classes == WALL] = CHAIR
    legs = (classes == CHAIR) & (points[:, 2] <= 0.1)
    classes[legs] = FLOOR
    fallback[legs] = CHAIR
    truth = {"table": ([0.9, 0.7, 0.38], [1.0, 0.6, 0.76]),
             "chair": ([1.68, 0.73, 0.44], [0.48, 0.46, 0.88])}
    return points, classes.astype(np.int16), fallback.astype(np.int16), truth


def test_touching_objects_of_different_classes_are_separate_segments(touching):
    points, classes, fallback, truth = touching
    assert len(propose_objects(points, voxel_size=VOXEL, floor_z=0.0)) == 1  # geometry merges
    resolved = object_classes(points, classes, fallback, NAMES, voxel_size=VOXEL, floor_z=0.0)
    assert (resolved[points[:, 2] <= 0.06] == UNKNOWN_CLASS).all()  # the floor band
    segments = segment_by_class(points, resolved, NAMES, voxel_size=VOXEL, floor_z=0.0)
    assert sorted(s.label for s in segments) == ["chair", "table"]
    for segment in segments:
        # The chair keeps its legs (said floor, above the floor band) and stands on the floor.
        assert box_iou(segment.center, segment.size, *truth[segment.label]) > 0.85
    with pytest.raises(GroundingInputError, match="one integer class per point"):
        object_classes(points, classes[:-1], fallback, NAMES)
    with pytest.raises(GroundingInputError, match=r"\[-1, 4\)"):
        segment_by_class(points, np.full(len(points), 4), NAMES, floor_z=0.0)


def test_the_grounder_snaps_to_the_segment_of_the_predicted_class(touching, fused):
    points, classes, fallback, truth = touching
    snapshot = dataclasses.replace(fused[0], points=points,
                                   point_classes=classes, point_object_classes=fallback)
    grounder = SnapshotGrounder(snapshot)
    # A chair predicted 25 cm towards the table and too large overlaps both objects.
    center, size = np.array(truth["chair"][0]) - [0.25, 0, 0], np.array([0.7, 0.6, 0.9])
    grounded = grounder.ground("chair", center, size)
    assert box_iou(grounded.center, grounded.size, *truth["chair"]) > 0.8
    geometric = ground_object(points, center, size, voxel_size=VOXEL, floor_z=grounder.floor_z)
    assert box_iou(geometric.center, geometric.size, *truth["chair"]) < 0.5
    # No segment of the class, or no semantic map: the geometric refinement alone.
    for label, scene in (("sofa", snapshot),
                         ("chair", dataclasses.replace(snapshot, point_classes=None,
                                                       point_object_classes=None))):
        alone = SnapshotGrounder(scene).ground(label, center, size)
        np.testing.assert_array_equal(alone.indices, geometric.indices)


def test_a_flat_segment_still_has_a_box_the_grounder_can_refine():
    # A picture on the wall at x = 0: all its points share one x, a box of no depth.
    ys, zs = np.meshgrid(np.arange(1.0, 1.6, VOXEL), np.arange(1.2, 1.7, VOXEL), indexing="ij")
    picture = np.stack([np.zeros(ys.size), ys.ravel(), zs.ravel()], axis=1)
    names = ("floor", "picture")
    segments = segment_by_class(picture, np.ones(len(picture), np.int64), names,
                                voxel_size=VOXEL, floor_z=-1.0)
    assert len(segments) == 1 and segments[0].size[0] == pytest.approx(VOXEL)
    refined = ground_object(picture, segments[0].center, segments[0].size, voxel_size=VOXEL,
                            floor_z=-1.0)
    assert len(refined.indices) > 0
