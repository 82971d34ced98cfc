"""Fusion core: patch lifting, patch memory, token budget, keyframes, TSDF, snapshots, storage."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from scene_llm_ros.data.depth import depth_from_uint16, depth_to_uint16
from scene_llm_ros.data.types import CameraIntrinsics, RGBDFrame
from scene_llm_ros.errors import DataFormatError, InvalidFrameError
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from scene_llm_ros.fusion.keyframes import KeyframePolicy, KeyframeSelector
from scene_llm_ros.fusion.lifting import lift_patch_grid
from scene_llm_ros.fusion.patch_memory import PatchMemory
from scene_llm_ros.fusion.sampling import farthest_point_sampling
from scene_llm_ros.fusion.scene import SceneFusion

K = CameraIntrinsics(577.0, 577.0, 319.5, 239.5, 640, 480)


def pose(x: float = 0.0, yaw_deg: float = 0.0) -> np.ndarray:
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    T = np.eye(4)
    T[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    T[0, 3] = x
    return T


def tilted_plane_depth(offset: float = 2.0) -> np.ndarray:
    u, v = np.meshgrid(np.arange(640), np.arange(480))
    return (offset + 0.001 * u + 0.0005 * v).astype(np.float32)


def frame(i: int, *, x: float = 0.0, depth: np.ndarray | None = None) -> RGBDFrame:
    rng = np.random.default_rng(i)
    color = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    return RGBDFrame(color, tilted_plane_depth() if depth is None else depth, K, pose(x),
                     stamp_ns=i * 33_000_000)


@pytest.fixture(scope="module")
def encoder() -> BuiltinPatchEncoder:
    return BuiltinPatchEncoder(BuiltinEncoderConfig(image_height=96, image_width=128))


def test_lifting_places_patches_on_the_surface_and_survives_holes():
    depth = np.full((480, 640), 3.0, np.float32)
    depth[::2, ::2] = np.nan  # a quarter of each patch missing
    depth[0:40, 0:40] = 0.0  # one patch entirely without depth
    T = pose(1.0)
    positions, valid = lift_patch_grid(depth, K, T, (12, 16))
    assert valid.sum() == 12 * 16 - 1 and not valid[0]
    assert np.allclose(positions[valid][:, 2], 3.0, atol=1e-5)
    # Patch (5, 7): centre pixel (299.5, 219.5) back-projected at 3 m, shifted by the pose.
    p = positions[5 * 16 + 7]
    assert p == pytest.approx([(299.5 - 319.5) / 577 * 3 + 1.0, (219.5 - 239.5) / 577 * 3, 3.0],
                              abs=1e-5)


def test_lifting_uses_a_robust_depth_statistic():
    depth = np.full((480, 640), 2.0, np.float32)
    depth[0:40, 0:10] = 9.0  # a quarter of the first patch sees the far background
    positions, valid = lift_patch_grid(depth, K, np.eye(4), (12, 16))
    assert positions[0, 2] == pytest.approx(2.0)


def test_patch_memory_pools_running_means_per_voxel():
    memory = PatchMemory(voxel_size_m=0.2, feature_dim=4)
    a = np.array([[0.05, 0.05, 0.05], [0.15, 0.05, 0.05], [0.5, 0.5, 0.5]])
    feats = np.array([[1, 0, 0, 0], [3, 0, 0, 0], [0, 2, 0, 0]], np.float32)
    assert memory.add(a, feats) == 2
    assert memory.add(a[:1], np.array([[5, 0, 0, 0]], np.float32)) == 0
    keys, positions, features, counts = memory.arrays()
    by_count = dict(zip(counts.tolist(), range(len(counts)), strict=True))
    first = by_count[3]
    assert features.dtype == np.float16 and features[first, 0] == pytest.approx(3.0)
    assert positions[first] == pytest.approx([(0.05 + 0.15 + 0.05) / 3, 0.05, 0.05])
    restored = PatchMemory.from_state_dict(memory.state_dict())
    for x, y in zip(memory.arrays(), restored.arrays(), strict=True):
        np.testing.assert_array_equal(x, y)


def test_patch_memory_grows_with_volume_not_with_repeats():
    memory = PatchMemory(voxel_size_m=0.2, feature_dim=8)
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 2, (500, 3))
    for _ in range(20):
        memory.add(points + rng.normal(0, 0.01, points.shape), rng.normal(size=(500, 8)))
    assert len(memory) <= 10 * 10 * 10 + 100
    size_after = memory.memory_bytes
    memory.add(points, rng.normal(size=(500, 8)))
    assert memory.memory_bytes == size_after


def test_farthest_point_sampling_is_deterministic_and_spread():
    rng = np.random.default_rng(1)
    dense = rng.normal(0, 0.05, (2000, 3))
    sparse = np.array([[5.0, 0, 0], [-5.0, 0, 0], [0, 5.0, 0]])
    points = np.concatenate([dense, sparse])
    chosen = farthest_point_sampling(points, 10)
    assert len(chosen) == 10 and np.array_equal(chosen, farthest_point_sampling(points, 10))
    assert {2000, 2001, 2002} <= set(chosen.tolist())  # far outliers are always covered
    assert len(farthest_point_sampling(points[:5], 10)) == 5


def test_keyframe_selection_by_motion_rotation_and_time():
    selector = KeyframeSelector(KeyframePolicy(translation_m=0.3, rotation_deg=15,
                                               max_interval_s=1.0))
    assert selector.is_keyframe(pose(0.0), 0)
    assert not selector.is_keyframe(pose(0.1), 100_000_000)
    assert selector.is_keyframe(pose(0.35), 200_000_000)
    assert not selector.is_keyframe(pose(0.35, 10), 300_000_000)
    assert selector.is_keyframe(pose(0.35, 20), 400_000_000)
    assert selector.is_keyframe(pose(0.35, 20), 1_500_000_000)


def test_fusion_reconstructs_the_surface(encoder):
    fusion = SceneFusion(FusionConfig(), encoder=encoder)
    for i in range(6):
        fusion.integrate(frame(i, x=0.02 * i))
    points, colors = fusion.point_cloud()
    assert len(points) > 1000 and colors.dtype == np.uint8
    # Distance of every extracted point to the true tilted plane, expressed in camera 0.
    u = points[:, 0] / points[:, 2] * 577 + 319.5
    v = points[:, 1] / points[:, 2] * 577 + 239.5
    expected_z = 2.0 + 0.001 * u + 0.0005 * v
    assert np.median(np.abs(points[:, 2] - expected_z)) < 0.02


def test_snapshot_is_atomic_immutable_and_budgeted(encoder):
    config = FusionConfig(max_patch_tokens=50,
                          keyframes=KeyframePolicy(translation_m=0.01, max_interval_s=0))
    fusion = SceneFusion(config, encoder=encoder)
    assert fusion.snapshot().empty and fusion.snapshot().keyframe is None
    for i in range(3):
        fusion.integrate(frame(i, x=0.3 * i))
    snap = fusion.snapshot()
    assert snap is fusion.snapshot()  # cached per version
    assert len(snap.positions) == 50 and snap.total_tokens > 50
    assert snap.features.shape == (50, encoder.feature_dim) and snap.features.dtype == np.float16
    assert snap.keyframe is not None and snap.keyframe.stamp_ns == 2 * 33_000_000
    with pytest.raises(ValueError):
        snap.positions[0, 0] = 1.0

    # Snapshots taken while another thread integrates are always self-consistent.
    errors = []

    def reader():
        for _ in range(20):
            s = fusion.snapshot()
            if len(s.positions) != len(s.features) or s.scene_version < snap.scene_version:
                errors.append(s.scene_version)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(3, 8):
        fusion.integrate(frame(i, x=0.3 * i))
    thread.join()
    assert not errors and fusion.snapshot().scene_version == snap.scene_version + 5


def test_sensor_millimetres_fuse_exactly_as_metres(encoder):
    """uint16 millimetre depth (16UC1 as it arrives) builds the same scene as float metres,
    holes and out-of-range pixels included, and the caller's array is left untouched."""
    depths = []
    for i in range(4):
        depth = depth_from_uint16(depth_to_uint16(tilted_plane_depth(2.0 + 0.01 * i)))
        depth[i::9, ::5] = np.nan
        depth[:40] = 7.0  # beyond depth_max_m
        depths.append(depth)
    config = FusionConfig(keyframes=KeyframePolicy(translation_m=0.01, max_interval_s=0))
    metres, millimetres = SceneFusion(config, encoder=encoder), SceneFusion(config,
                                                                             encoder=encoder)
    for i, depth in enumerate(depths):
        metres.integrate(frame(i, x=0.05 * i, depth=depth))
        sensor = depth_to_uint16(depth)
        kept = sensor.copy()
        millimetres.integrate(frame(i, x=0.05 * i, depth=sensor))
        np.testing.assert_array_equal(sensor, kept)
    a, b = metres.snapshot(), millimetres.snapshot()
    assert len(a.points) > 1000
    # Open3D's hash map may emit blocks in another order: compare point by point, sorted.
    order_a, order_b = np.lexsort(a.points.T), np.lexsort(b.points.T)
    np.testing.assert_array_equal(a.points[order_a], b.points[order_b])
    np.testing.assert_array_equal(a.colors[order_a], b.colors[order_b])
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.bounds_min, b.bounds_min)
    np.testing.assert_array_equal(a.bounds_max, b.bounds_max)
    assert b.keyframe.depth.dtype == np.float32
    np.testing.assert_array_equal(a.keyframe.depth, b.keyframe.depth)
    with pytest.raises(InvalidFrameError, match="no valid depth"):
        millimetres.integrate(frame(9, depth=np.full((480, 640), 9000, np.uint16)))
    with pytest.raises(InvalidFrameError, match="float32 or uint16"):
        millimetres.integrate(frame(9, depth=np.ones((480, 640), np.int32)))


def test_bad_frames_raise_and_leave_the_scene_unchanged(encoder):
    fusion = SceneFusion(encoder=encoder)
    fusion.integrate(frame(0))
    version = fusion.stats["scene_version"]
    nan_depth = np.full((480, 640), np.nan, np.float32)
    with pytest.raises(InvalidFrameError, match="no valid depth"):
        fusion.integrate(frame(1, depth=nan_depth))
    with pytest.raises(InvalidFrameError, match="differ in size"):
        fusion.integrate(RGBDFrame(np.zeros((240, 320, 3), np.uint8), tilted_plane_depth(), K,
                                   np.eye(4)))
    bad_pose = frame(2)
    bad_pose.T_world_cam = np.full((4, 4), np.inf)
    with pytest.raises(InvalidFrameError, match="pose"):
        fusion.integrate(bad_pose)
    with pytest.raises(InvalidFrameError):
        CameraIntrinsics(0.0, 577.0, 319.5, 239.5, 640, 480)
    assert fusion.stats["scene_version"] == version


def test_save_load_round_trip_and_failed_load_keeps_state(encoder, tmp_path):
    fusion = SceneFusion(encoder=encoder)
    for i in range(4):
        fusion.integrate(frame(i, x=0.4 * i))
    before = fusion.snapshot()
    points_before, _ = fusion.point_cloud()
    saved_version = fusion.save(tmp_path / "scene")
    fusion.save(tmp_path / "scene")  # overwriting an existing save is atomic too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]

    other = SceneFusion(encoder=encoder)
    version = other.load(tmp_path / "scene")
    after = other.snapshot()
    assert version > saved_version
    np.testing.assert_array_equal(before.positions, after.positions)
    np.testing.assert_array_equal(before.features, after.features)
    np.testing.assert_array_equal(before.keyframe.color, after.keyframe.color)
    assert len(other.point_cloud()[0]) == len(points_before)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scene.json").write_text("{not json")
    for bad in (tmp_path / "missing", broken):
        with pytest.raises(DataFormatError, match=bad.name):
            other.load(bad)
    np.testing.assert_array_equal(other.snapshot().positions, after.positions)


def test_builtin_encoder_checkpoint_round_trip_and_mismatch(encoder, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (2, 480, 640, 3), dtype=np.uint8)
    features = encoder.encode(images)
    assert features.shape == (2, 6, 8, encoder.feature_dim)
    encoder.save_pretrained(tmp_path / "enc")
    loaded = BuiltinPatchEncoder.from_pretrained(tmp_path / "enc")
    np.testing.assert_allclose(loaded.encode(images), features, atol=1e-5)
    assert loaded.identity != encoder.identity  # weights are part of the cache identity
    (tmp_path / "enc" / "patch_encoder.json").write_text(
        '{"image_height": 96, "image_width": 128, "feature_dim": 64}')
    with pytest.raises(DataFormatError, match="mismatched tensors"):
        BuiltinPatchEncoder.from_pretrained(tmp_path / "enc")


def test_hf_clip_vision_tower_from_a_local_directory(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from scene_llm_ros.fusion.encoders import HFVisionPatchEncoder

    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=4, image_size=56, patch_size=14)
    CLIPVisionModel(config).save_pretrained(tmp_path / "clip")
    tower = HFVisionPatchEncoder(tmp_path / "clip", layer=-2)
    images = np.random.default_rng(0).integers(0, 256, (1, 480, 640, 3), dtype=np.uint8)
    features = tower.encode(images)
    assert tower.grid_size == (4, 4) and features.shape == (1, 4, 4, 32)
    assert np.isfinite(features).all()
    with pytest.raises(DataFormatError, match="no config.json"):
        HFVisionPatchEncoder(tmp_path)


def test_even_tiling_fast_path_gives_the_general_medians():
    from scene_llm_ros.fusion.lifting import _block_medians, _cell_medians

    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 5.0, (480, 640)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.3] = np.nan
    depth[rng.random(depth.shape) < 0.05] = -1.0
    depth[:40, :40] = np.nan  # an empty patch
    fast, fast_counts = _block_medians(depth, 12, 16)
    general, counts, sizes = _cell_medians(depth, 12, 16)
    np.testing.assert_array_equal(fast_counts, counts)
    np.testing.assert_allclose(fast, general, equal_nan=True)
    assert np.isnan(fast[0]) and (sizes == 1600).all()
