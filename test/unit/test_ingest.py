"""Live ingest without ROS: synchronisation, posing, queueing and every bad-input drop."""
from __future__ import annotations

import numpy as np
import pytest

from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from scene_llm_ros.fusion.scene import SceneFusion
from scene_llm_ros.ingest.config import IngestConfig
from scene_llm_ros.ingest.drops import DropReason
from scene_llm_ros.ingest.pipeline import IngestPipeline
from scene_llm_ros.ingest.poses import TFPoseSource, TopicPoseSource
from scene_llm_ros.ingest.sync import ApproximatePairSync, CameraInfoCache

W, H = 160, 120
K = CameraIntrinsics(144.0, 144.0, 79.5, 59.5, W, H)
OPTICAL = "camera_color_optical_frame"
PERIOD_NS = 33_333_333
START_NS = 1_700_000_000 * 10**9


def stamp(i: int) -> int:
    return START_NS + i * PERIOD_NS


def camera_pose(i: int) -> np.ndarray:
    T = np.eye(4)
    T[0, 3] = 0.01 * i
    return T


def wall_depth() -> np.ndarray:
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    return (2.0 + 0.002 * u + 0.001 * v).astype(np.float32)


def color_msg(i: int, *, encoding: str = "rgb8", frame: str = OPTICAL):
    rng = np.random.default_rng(i)
    color = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    if encoding in m.COLOR_ENCODINGS:
        return m.color_to_image(color, encoding, stamp(i), frame)
    msg = m.color_to_image(color, "rgb8", stamp(i), frame)
    msg.encoding = encoding
    return msg


def depth_msg(i: int, depth: np.ndarray | None = None, *, encoding: str = "16UC1"):
    return m.depth_to_image(wall_depth() if depth is None else depth, encoding, stamp(i), OPTICAL)


def info_msg(i: int, intrinsics: CameraIntrinsics = K):
    return m.camera_info(intrinsics, stamp(i), OPTICAL)


@pytest.fixture(scope="module")
def encoder() -> BuiltinPatchEncoder:
    return BuiltinPatchEncoder(BuiltinEncoderConfig(image_height=48, image_width=64))


class Rig:
    """A pipeline with a TF pose source, fed frame by frame."""

    def __init__(self, encoder, *, pose_source=None, **config) -> None:
        config.setdefault("pose_wait_s", 0.05)
        self.fusion = SceneFusion(FusionConfig(voxel_size_m=0.05), encoder=encoder)
        config = IngestConfig(**config)
        self.tf = TFPoseSource("map", time_jump_s=config.time_jump_s)
        self.poses = pose_source or self.tf
        self.pipeline = IngestPipeline(self.fusion, self.poses, config)
        self.pipeline.start()

    def pose(self, i: int) -> None:
        self.tf.add_transform("map", OPTICAL, stamp(i), camera_pose(i), static=False)
        self.pipeline.pose_arrived()

    def send(self, i: int, *, color=None, depth=None, info=True, pose=True) -> None:
        if pose:
            self.pose(i - 1)
            self.pose(i + 1)
        if info:
            self.pipeline.add_camera_info(info_msg(i) if info is True else info)
        self.pipeline.add_color(color_msg(i) if color is None else color)
        self.pipeline.add_depth(depth_msg(i) if depth is None else depth)

    def drops(self) -> dict[str, int]:
        assert self.pipeline.wait_until_idle(20.0)
        return {k: v for k, v in self.pipeline.stats().drops.items() if v}

    def close(self) -> None:
        self.pipeline.stop()


@pytest.fixture
def rig(encoder):
    rigs = []

    def make(**kwargs) -> Rig:
        rigs.append(Rig(encoder, **kwargs))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


# -- synchroniser --------------------------------------------------------------------------


def test_pair_sync_pairs_equal_stamps_at_once_and_nearest_otherwise():
    unpaired = []
    sync = ApproximatePairSync(10, 8, lambda s, item: unpaired.append((s, item.stamp_ns)))
    assert sync.add(0, 100, "c100") == []
    assert sync.add(1, 100, "d100") == [("c100", "d100")]
    # Depth 5 ns after colour: the pair waits until no nearer colour can come.
    assert sync.add(0, 200, "c200") == []
    assert sync.add(1, 205, "d205") == []
    assert sync.add(0, 207, "c207") == [("c207", "d205")]
    assert unpaired == [(0, 200)]
    # A depth far older than every colour can never pair.
    assert sync.add(1, 150, "d150") == []
    assert (1, 150) in unpaired


def test_pair_sync_bounds_its_buffers():
    unpaired = []
    sync = ApproximatePairSync(10, 3, lambda s, item: unpaired.append(item.message))
    for i in range(5):
        sync.add(0, i * 1000, f"c{i}")
    assert sync.buffered(0) == 3 and unpaired == ["c0", "c1"]


def test_camera_info_cache_uses_a_constant_calibration_at_any_stamp():
    cache = CameraInfoCache(slop_ns=10)
    assert cache.match(stamp(0)) is None
    cache.add(stamp(0), info_msg(0))
    cache.add(stamp(30), info_msg(30))
    assert cache.match(stamp(15)) is not None  # constant calibration: latest used
    cache.add(stamp(31), info_msg(31, CameraIntrinsics(100.0, 100.0, 79.5, 59.5, W, H)))
    assert cache.match(stamp(15)) is None  # calibration changed: only near stamps match
    assert cache.match(stamp(31) + 5).k[0] == 100.0


# -- pipeline --------------------------------------------------------------------------------


def test_clean_stream_is_integrated_with_poses_interpolated_at_the_image_stamp(rig):
    r = rig(queue_size=16)
    for i in range(0, 20, 2):  # TF at odd ticks only: every image pose is interpolated
        r.tf.add_transform("map", OPTICAL, stamp(i + 1), camera_pose(i + 1), static=False)
    for i in range(0, 20, 2):
        r.send(i, pose=False)
    r.tf.add_transform("map", OPTICAL, stamp(21), camera_pose(21), static=False)
    r.pipeline.pose_arrived()
    assert r.drops() == {}
    stats = r.pipeline.stats()
    assert stats.frames_received == stats.frames_integrated == 10
    assert stats.queued == 0 and stats.integrate_ms > 0
    assert r.fusion.stats["frames_integrated"] == 10
    # The wall is at 2 m plus the slope; its fused points sit there.
    points, _ = r.fusion.point_cloud()
    assert len(points) > 100
    assert np.median(points[:, 2]) == pytest.approx(2.0 + 0.002 * 80 + 0.001 * 60, abs=0.05)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, 0.0, -1.0])
def test_depth_without_any_valid_pixel_is_dropped_and_partial_holes_are_fused(rig, bad_value):
    r = rig()
    r.send(0, depth=depth_msg(0, np.full((H, W), bad_value, np.float32), encoding="32FC1"))
    holey = wall_depth()
    holey[::2] = bad_value
    r.send(2, depth=depth_msg(2, holey, encoding="32FC1"))
    assert r.drops() == {"bad_depth": 1}
    assert r.pipeline.stats().frames_integrated == 1


def test_header_level_bad_inputs_are_counted_by_reason(rig):
    r = rig()
    r.send(0, color=color_msg(0, encoding="yuv422"))
    r.send(2, depth=m.depth_to_image(np.ones((100, 100), np.float32), "32FC1", stamp(2),
                                     OPTICAL))
    r.send(4, info=_zero_info(4))
    r.send(6)  # a good one in between: the pipeline keeps going
    half = m.depth_to_image(wall_depth()[::2, ::2].copy(), "16UC1", stamp(8), OPTICAL)
    r.send(8, depth=half)  # registered depth at half resolution is fine
    assert r.drops() == {"bad_encoding": 1, "size_mismatch": 1, "bad_intrinsics": 1}
    assert r.pipeline.stats().frames_integrated == 2


def _zero_info(i: int):
    msg = info_msg(i)
    msg.k = np.zeros(9)
    return msg


def test_missing_camera_info_and_missing_depth(rig):
    r = rig()
    r.send(0, info=False)
    assert r.drops() == {"no_camera_info": 1}
    r.send(2)
    r.pipeline.add_color(color_msg(4))  # never gets a depth partner
    r.send(40)
    assert r.drops() == {"no_camera_info": 1, "unsynchronized": 1}


def test_pose_missing_or_stale_is_dropped_after_the_wait(rig):
    r = rig(pose_wait_s=0.05, pose_tolerance_s=0.05)
    r.send(0, pose=False)  # TF never mentions the camera
    assert r.drops() == {"no_pose": 1}
    r.pose(1)
    r.send(30, pose=False)  # the newest pose is a second older than the image
    assert r.drops() == {"no_pose": 1, "stale_pose": 1}
    r.pose(31)
    r.send(32, pose=False)  # 33 ms newer than the last pose: within the tolerance
    assert r.drops() == {"no_pose": 1, "stale_pose": 1}
    assert r.pipeline.stats().frames_integrated == 1


def test_time_jump_back_clears_history_and_the_new_loop_is_fused(rig):
    r = rig(queue_size=32)
    for i in range(0, 90, 6):
        r.send(i)
    assert r.drops() == {}
    for i in range(0, 30, 6):  # the bag starts over
        r.send(i)
    assert r.drops() == {"time_jump": 1}
    assert r.pipeline.stats().frames_integrated == 15 + 4


def test_poses_of_the_new_loop_that_arrive_before_its_images_are_kept(rig):
    # Pose and image topics are delivered independently: after a bag loop the poses of the
    # new loop can arrive before the first image that shows the jump.
    r = rig(queue_size=32)
    for i in range(0, 90, 6):
        r.send(i)
    assert r.drops() == {}
    for i in (-1, 1, 5, 7):
        r.pose(i)
    r.send(0, pose=False)
    r.send(6, pose=False)
    assert r.drops() == {"time_jump": 1}
    assert r.pipeline.stats().frames_integrated == 15 + 1


def test_burst_is_bounded_and_every_frame_accounted_for(rig):
    # Poses arrive only after the burst, so the worker is held and the queue policy alone
    # decides: the newest 3 frames wait, the 997 before them are dropped as they are pushed out.
    r = rig(queue_size=3, pose_wait_s=60.0)
    for i in range(1000):
        r.send(i, pose=False)
        assert r.pipeline.stats().queued <= 3
    for i in range(1001):
        r.pose(i)
    assert r.drops() == {"queue_full": 997}
    stats = r.pipeline.stats()
    assert stats.frames_received == 1000 and stats.frames_integrated == 3


def test_scene_frame_and_camera_frame_changes_are_dropped(rig, encoder):
    topic = TopicPoseSource("map")
    r = rig(pose_source=topic, camera_frame=OPTICAL)
    for i in (0, 2):
        topic.add_pose("map", stamp(i), camera_pose(i))
    r.send(1, pose=False)
    assert r.drops() == {}
    topic.add_pose("odom", stamp(3), camera_pose(3))  # poses switch to another frame
    r.send(3, pose=False)
    r.send(4, pose=False, color=color_msg(4, frame="other_camera"))
    assert r.drops() == {"frame_change": 2}
    assert r.pipeline.stats().frames_integrated == 1


def test_rate_limit_keeps_every_nth_frame(rig):
    r = rig(max_rate_hz=10.0, queue_size=16)
    for i in range(12):
        r.send(i)
    drops = r.drops()
    assert r.pipeline.stats().frames_integrated == 4  # ticks 0, 3, 6, 9 at 30 Hz
    assert drops == {"rate_limit": 8}


def test_drop_reason_names_are_the_scene_status_names():
    status = pytest.importorskip("scene_llm_ros.msg").SceneStatus
    declared = {getattr(status, n) for n in dir(status) if n.startswith("DROP_")}
    assert declared == {reason.value for reason in DropReason}
