"""Grounding on a fused synthetic room: refined boxes, 3D masks and 2D masks against truth."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import open3d as o3d
import pytest

from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from scene_llm_ros.fusion.scene import SceneFusion
from scene_llm_ros.geometry.boxes import box_iou, box_of_points, pairwise_box_iou
from scene_llm_ros.grounding import (
    estimate_floor_height,
    ground_object,
    mask_in_view,
    propose_objects,
)

VOXEL = 0.04
# Predictions in the tests are ground truth boxes moved by 10-15 cm and scaled by +-20 % per
# axis, about the error of a box regressed from 0.2 m patch tokens.
SHIFT_M = (0.10, 0.15)
SCALE = (0.8, 1.2)
TRIALS = 3
# A fused point belongs to the object whose mesh surface lies within this distance.
LABEL_DISTANCE_M = 0.03


@pytest.fixture(scope="module")
def room():
    """An office (seed 0) seen by 80 frames at 320x240, fused; truth per point and per pixel.

    :return: ``(scene, snapshot, point_labels, keyframe_instances)``: the object id of every
        fused point (-1 when farther than ``LABEL_DISTANCE_M`` from the mesh) and the rendered
        object id of every keyframe pixel.
    """
    scene = generate_scene(0, "scene9000_00", SynthConfig(width=320, height=240, num_frames=80,
                                                          instance_maps=True, write_sens=False))
    fusion = SceneFusion(FusionConfig(voxel_size_m=VOXEL), encoder=BuiltinPatchEncoder(
        BuiltinEncoderConfig(image_height=96, image_width=128)))
    for frame in scene.frames:
        fusion.integrate(frame)
    snapshot = fusion.snapshot()
    keyframe_frame = next(f for f in scene.frames if f.stamp_ns == snapshot.keyframe.stamp_ns)
    return scene, snapshot, point_labels(scene, snapshot.points), keyframe_frame.extras["instance"]


def point_labels(scene, points: np.ndarray) -> np.ndarray:
    """Object id of the mesh triangle nearest to each point, -1 when none is close."""
    raycaster = o3d.t.geometry.RaycastingScene()
    raycaster.add_triangles(o3d.core.Tensor(scene.mesh.vertices),
                            o3d.core.Tensor(scene.mesh.faces.astype(np.uint32)))
    closest = raycaster.compute_closest_points(o3d.core.Tensor(points.astype(np.float32)))
    triangles = closest["primitive_ids"].numpy()
    distance = np.linalg.norm(closest["points"].numpy() - points, axis=1)
    labels = scene.mesh.instances[scene.mesh.faces[triangles, 0]]
    return np.where(distance <= LABEL_DISTANCE_M, labels, -1)


def observed_objects(scene, points: np.ndarray, labels: np.ndarray):
    """Furniture the fusion saw well enough that its true box is recoverable from geometry:
    the box of its fused points overlaps its true box by IoU >= 0.7.

    Flat things on walls (pictures, windows: under 12 cm deep) are left out: they lie within
    the wall's support band, so no geometric segment exists for them (the grounding falls
    back to the predicted box, as the picture test in test_grounding_inputs.py shows).
    """
    chosen = []
    for obj in scene.furniture:
        size = obj.box_max - obj.box_min
        own = points[labels == obj.object_id]
        if min(size[:2]) < 0.12 or len(own) < 20:
            continue
        if box_iou(*box_of_points(own), obj.center, size) >= 0.7:
            chosen.append(obj)
    return chosen


def perturbed_predictions(objects, seed: int = 0, shift_m: tuple[float, float] = SHIFT_M):
    rng = np.random.default_rng(seed)
    for obj in objects:
        size = obj.box_max - obj.box_min
        for _ in range(TRIALS):
            shift = rng.normal(size=3)
            shift *= rng.uniform(*shift_m) / np.linalg.norm(shift)
            yield obj, obj.center + shift, size * rng.uniform(*SCALE, size=3)


def test_refined_boxes_beat_the_perturbed_predictions(room):
    scene, snapshot, labels, _ = room
    objects = observed_objects(scene, snapshot.points, labels)
    assert len(objects) >= 10
    floor_z = estimate_floor_height(snapshot.points, voxel_size=VOXEL)
    predicted_iou, refined_iou, times_ms = [], [], []
    for obj, center, size in perturbed_predictions(objects):
        start = time.perf_counter()
        grounded = ground_object(snapshot.points, center, size, voxel_size=VOXEL,
                                 floor_z=floor_z)
        times_ms.append((time.perf_counter() - start) * 1e3)
        true_size = obj.box_max - obj.box_min
        predicted_iou.append(float(box_iou(center, size, obj.center, true_size)))
        refined_iou.append(float(box_iou(grounded.center, grounded.size, obj.center, true_size)))
    predicted_iou, refined_iou = np.array(predicted_iou), np.array(refined_iou)
    # Measured on 12 objects x 3 predictions: predicted 0.52, refined 0.65 (mean IoU with the
    # true boxes), refined >= 0.5 in 78 % of the cases.
    assert refined_iou.mean() >= predicted_iou.mean() + 0.1
    assert refined_iou.mean() >= 0.62
    assert np.mean(refined_iou >= 0.5) >= 0.65
    # Per object on the fused room (~50k points): median ~15 ms on one shared core.
    assert np.median(times_ms) < 200


def test_a_second_pass_recovers_objects_the_first_cut_short(room):
    """Centres regressed from 0.25 m tokens are often 20-30 cm off: the first neighbourhood
    then misses part of the object, and cutting again around what it found recovers it."""
    scene, snapshot, labels, _ = room
    objects = observed_objects(scene, snapshot.points, labels)
    floor_z = estimate_floor_height(snapshot.points, voxel_size=VOXEL)
    ious = {1: [], 2: []}
    for obj, center, size in perturbed_predictions(objects, seed=1, shift_m=(0.2, 0.3)):
        true_size = obj.box_max - obj.box_min
        for passes in ious:
            grounded = ground_object(snapshot.points, center, size, voxel_size=VOXEL,
                                     floor_z=floor_z, passes=passes)
            ious[passes].append(float(box_iou(grounded.center, grounded.size, obj.center,
                                              true_size)))
    one, two = np.array(ious[1]), np.array(ious[2])
    # Measured: mean IoU 0.54 after one pass, 0.65 after two; IoU >= 0.5 in 61 % / 72 %.
    assert two.mean() >= one.mean() + 0.06
    assert np.mean(two >= 0.5) >= np.mean(one >= 0.5) + 0.1


def test_3d_masks_lie_on_and_cover_the_objects(room):
    scene, snapshot, labels, _ = room
    points = snapshot.points
    floor_z = estimate_floor_height(points, voxel_size=VOXEL)
    precision, recall = [], []
    for obj, center, size in perturbed_predictions(observed_objects(scene, points, labels)):
        grounded = ground_object(points, center, size, voxel_size=VOXEL, floor_z=floor_z)
        # Precision among the selected points that lie on some mesh surface: the others are
        # fusion artefacts (TSDF blobs around thin legs) that belong to no object.
        on_mesh = labels[grounded.indices]
        on_mesh = on_mesh[on_mesh >= 0]
        precision.append(np.mean(on_mesh == obj.object_id) if len(on_mesh) else 0.0)
        # Recall of the object's points outside the support band on the floor.
        truth = np.flatnonzero((labels == obj.object_id) & (points[:, 2] > floor_z + 1.5 * VOXEL))
        recall.append(np.isin(truth, grounded.indices).mean())
    # Measured: precision 0.94, recall 0.92 (means over the 36 predictions).
    assert np.mean(precision) >= 0.93
    assert np.mean(recall) >= 0.85


def test_2d_masks_match_the_rendered_instances(room):
    scene, snapshot, labels, instances = room
    keyframe = snapshot.keyframe
    ious = []
    for obj, center, size in perturbed_predictions(observed_objects(scene, snapshot.points,
                                                                    labels)):
        truth = instances == obj.object_id
        if truth.sum() < 300:
            continue
        grounded = ground_object(snapshot.points, center, size, voxel_size=VOXEL)
        view = mask_in_view(snapshot.points[grounded.indices], keyframe, voxel_size=VOXEL)
        assert view.mask.shape == keyframe.depth.shape and view.mask.dtype == np.uint8
        mask = view.mask > 0
        ious.append((mask & truth).sum() / (mask | truth).sum())
        if view.visible:
            x, y, width, height = view.roi
            rows, cols = np.nonzero(mask)
            assert (x, y, x + width - 1, y + height - 1) == (
                cols.min(), rows.min(), cols.max(), rows.max())
    # Measured: mean IoU 0.895 (lowest 0.69) over 15 (object, prediction) pairs seen by the
    # keyframe; the losses come from 3D segments that miss a part or take a neighbour's.
    assert len(ious) >= 12
    assert np.mean(ious) >= 0.86


def test_an_occluded_object_has_no_mask(room):
    scene, snapshot, labels, instances = room
    keyframe = snapshot.keyframe
    visible = max(observed_objects(scene, snapshot.points, labels),
                  key=lambda obj: (instances == obj.object_id).sum())
    own_points = snapshot.points[labels == visible.object_id]
    seen = mask_in_view(own_points, keyframe, voxel_size=VOXEL)
    truth = instances == visible.object_id
    assert seen.visible and (seen.mask > 0).sum() >= 0.9 * truth.sum()
    # The same view with a screen 30 cm in front of the lens hides it completely.
    screen = replace(keyframe, depth=np.full_like(keyframe.depth, 0.3))
    hidden = mask_in_view(own_points, screen, voxel_size=VOXEL)
    assert not hidden.visible and hidden.roi == (0, 0, 0, 0) and not hidden.mask.any()


def test_the_floor_height_is_found(room):
    _, snapshot, _, _ = room
    # The synthetic floor lies at z = 0; fused surface points scatter by millimetres.
    assert estimate_floor_height(snapshot.points, voxel_size=VOXEL) == pytest.approx(0.0,
                                                                                    abs=0.01)


def test_proposals_find_most_observed_objects(room):
    scene, snapshot, labels, _ = room
    start = time.perf_counter()
    proposals = propose_objects(snapshot.points, voxel_size=VOXEL)
    elapsed_ms = (time.perf_counter() - start) * 1e3
    objects = observed_objects(scene, snapshot.points, labels)
    iou = pairwise_box_iou([o.center for o in objects], [o.box_max - o.box_min for o in objects],
                           [p.center for p in proposals], [p.size for p in proposals])
    # Measured: 24 proposals; 7 of the 12 observed objects have one with IoU >= 0.5, 9 with
    # IoU >= 0.25 (a monitor and its desk make one proposal). About 0.2 s on a shared core.
    assert np.mean(iou.max(axis=1) >= 0.5) >= 0.5
    assert np.mean(iou.max(axis=1) >= 0.25) >= 0.7
    members = np.concatenate([p.indices for p in proposals])
    assert len(np.unique(members)) == len(members)  # disjoint
    assert np.all(snapshot.points[members, 2] > 1.5 * VOXEL - 0.01)  # the floor is no object
    assert elapsed_ms < 3000
