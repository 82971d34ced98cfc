"""Synthetic RGB-D: depth on the mesh, instance maps, intrinsics, smooth looping walks."""
from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from scene_llm_ros.data.synth import SynthConfig, generate_scene


def _backproject(frame, depth=None):
    k = frame.intrinsics
    depth = frame.depth if depth is None else depth
    v, u = np.nonzero(np.isfinite(depth))
    z = depth[v, u].astype(np.float64)
    cam = np.stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], 1)
    return cam @ frame.T_world_cam[:3, :3].T + frame.T_world_cam[:3, 3], v, u


def _distance_to_mesh(scene, points):
    rc = o3d.t.geometry.RaycastingScene()
    rc.add_triangles(o3d.core.Tensor(scene.mesh.vertices),
                     o3d.core.Tensor(scene.mesh.faces.astype(np.uint32)))
    return rc.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()


@pytest.fixture(scope="module")
def clean_scene():
    config = SynthConfig(width=96, height=72, num_frames=12, noise=False, instance_maps=True)
    return generate_scene(3, "scene9003_00", config)


def test_noise_free_depth_lies_on_mesh(clean_scene):
    for frame in clean_scene.frames[::4]:
        frame.validate()
        points, _, _ = _backproject(frame)
        assert len(points) > 0.9 * frame.depth.size  # closed room: nearly every ray hits
        assert np.max(_distance_to_mesh(clean_scene, points)) < 2e-3


def test_noisy_depth_close_to_mesh_with_dropout():
    scene = generate_scene(3, "scene9003_00", SynthConfig(width=96, height=72, num_frames=6))
    frame = scene.frames[2]
    points, _, _ = _backproject(frame)
    dist = _distance_to_mesh(scene, points)
    z = frame.depth[np.isfinite(frame.depth)]
    sigma = 0.0012 + 0.0019 * (z - 0.4) ** 2       # the documented axial noise model
    assert np.percentile(dist / sigma, 99) < 4.0
    assert np.median(dist) > 1e-4                   # but there is noise
    invalid = np.isnan(frame.depth).mean()
    assert 0.001 < invalid < 0.3
    assert np.nanmax(frame.depth) <= 7.0


def test_instance_pixels_match_object_boxes(clean_scene):
    objects = clean_scene.objects
    for frame in clean_scene.frames[::3]:
        instance = frame.extras["instance"]
        points, v, u = _backproject(frame)
        ids = instance[v, u]
        assert (ids >= 0).all()
        lo = np.array([objects[i].box_min for i in ids]) - 0.01
        hi = np.array([objects[i].box_max for i in ids]) + 0.01
        assert np.all((points >= lo) & (points <= hi))
        assert len(np.unique(ids)) >= 3


def test_intrinsics_and_stamps(clean_scene):
    k = clean_scene.frames[0].intrinsics
    assert k.width == 96 and k.height == 72
    assert k.fx == pytest.approx(577.87 * 96 / 640)
    stamps = np.array([f.stamp_ns for f in clean_scene.frames])
    steps = np.diff(stamps)
    assert (steps > 0).all() and np.ptp(steps) <= 1
    assert SynthConfig().intrinsics.cx == pytest.approx(319.5)


def test_walk_is_smooth_at_head_height_and_returns():
    scene = generate_scene(7, "scene9007_00", SynthConfig(width=32, height=24, num_frames=120,
                                                          noise=False))
    poses = np.array([f.T_world_cam for f in scene.frames])
    positions = poses[:, :3, 3]
    assert np.all((positions[:, 2] > 1.15) & (positions[:, 2] < 1.65))
    assert scene.room.contains(positions[:, :2], margin=0.3).all()
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert steps.max() < 3 * np.median(steps) + 1e-6
    forward = poses[:, :3, 2]
    turn = np.degrees(np.arccos(np.clip(np.sum(forward[1:] * forward[:-1], 1), -1, 1)))
    assert turn.max() < 20.0
    total_yaw = np.ptp(np.unwrap(np.arctan2(forward[:, 1], forward[:, 0])))
    assert total_yaw > np.deg2rad(90)          # it turns to look around
    assert np.linalg.norm(positions[-1, :2] - positions[0, :2]) < 0.5   # comes back
    # Optical frame: y (down) points mostly against +Z, roll stays small.
    down = poses[:, :3, 1]
    assert np.all(down[:, 2] < -0.7)
    right = poses[:, :3, 0]
    assert np.all(np.abs(right[:, 2]) < np.sin(np.deg2rad(6)))
    for pose in poses:
        assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-9)
        assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)


def test_the_walk_looks_at_nearly_every_object():
    # Like a scan made for a reconstruction, the walk's gaze sweeps the room, so (nearly)
    # every object, doors and pictures included, is seen: with gaze on a few far objects only,
    # 0.89 of these rooms' objects covered 20 pixels in some frame.
    config = SynthConfig(width=80, height=60, num_frames=30, noise=False, instance_maps=True)
    seen, total = 0, 0
    for seed in range(10):
        scene = generate_scene(seed, f"scene9{seed:03d}_00", config)
        ids = np.concatenate([frame.extras["instance"].ravel() for frame in scene.frames])
        pixels = np.bincount(ids[ids >= 0], minlength=max(o.object_id for o in scene.objects) + 1)
        seen += sum(pixels[o.object_id] >= 20 for o in scene.objects)
        total += len(scene.objects)
    assert seen / total > 0.94, (seen, total)
