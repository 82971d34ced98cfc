"""Synthetic posed RGB-D frames and hand-made bags shared by the test_rosbag_* tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.data.transforms import make_transform
from scene_llm_ros.data.types import CameraIntrinsics, RGBDFrame

WIDTH, HEIGHT = 32, 24
INTRINSICS = CameraIntrinsics(40.0, 41.0, 15.25, 11.75, WIDTH, HEIGHT)
START_NS = 1_700_000_000_123_456_789


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """A random rigid transform with a rotation of any angle."""
    return make_transform(rng.normal(size=4), rng.uniform(-3.0, 3.0, size=3))


def make_frames(n: int, *, seed: int = 0, period_ns: int = 33_333_333) -> list[RGBDFrame]:
    """Frames with random colour, millimetre-exact depth (some NaN) and random poses."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        depth = (rng.integers(0, 6000, size=(HEIGHT, WIDTH)) / 1000.0).astype(np.float32)
        depth[depth == 0] = np.nan
        depth[0, :3] = np.nan
        frames.append(RGBDFrame(
            color=rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8),
            depth=depth, intrinsics=INTRINSICS, T_world_cam=random_pose(rng),
            stamp_ns=START_NS + i * period_ns))
    return frames


def write_custom_bag(path: Path, messages: list[tuple[str, object]], *,
                     storage: str = "mcap", latched: tuple[str, ...] = ("/tf_static",)) -> None:
    """Write ``(topic, msg)`` pairs, each logged at its header stamp (or the first transform's)."""
    from scene_llm_ros.data.rosbag.layout import recorded_qos

    store = m.typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(
                    topic, msg.__msgtype__, typestore=store,
                    offered_qos_profiles=[recorded_qos(latched=topic in latched)])
        logged = []
        for topic, msg in messages:
            header = msg.transforms[0].header if hasattr(msg, "transforms") else msg.header
            logged.append((m.stamp_to_ns(header.stamp), topic, msg))
        for stamp, topic, msg in sorted(logged, key=lambda x: x[0]):
            writer.write(connections[topic], stamp, store.serialize_cdr(msg, msg.__msgtype__))
