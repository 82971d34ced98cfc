"""Helpers of the DDS tests: a fake camera publishing posed RGB-D, service calls, waiting."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from scene_llm_ros.msg import ScenePatches, SceneStatus
from scene_llm_ros.nodes import conversions as conv

OPTICAL = "camera_color_optical_frame"
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Camera:
    """Publishes posed RGB-D frames the way a camera driver and an odometry source do."""

    def __init__(self, ros) -> None:
        self.node = ros.node("fake_camera")
        self.color = self.node.create_publisher(Image, "color/image", RELIABLE)
        self.depth = self.node.create_publisher(Image, "depth/image", RELIABLE)
        self.info = self.node.create_publisher(CameraInfo, "color/camera_info", RELIABLE)
        self.pose = self.node.create_publisher(PoseStamped, "pose", RELIABLE)
        self.frames_sent = 0

    def subscribed(self, count: int = 1) -> bool:
        """Whether ``count`` readers match every publisher (else early samples are lost)."""
        return all(p.get_subscription_count() >= count
                   for p in (self.color, self.depth, self.info, self.pose))

    def wait_for_node(self, count: int = 1) -> None:
        wait_for(lambda: self.subscribed(count), what="fusion subscriptions")

    def send_pose(self, T: np.ndarray, stamp_ns: int, frame: str = "map") -> None:
        self.pose.publish(PoseStamped(header=conv.header(stamp_ns, frame), pose=conv.pose_msg(T)))

    def send(self, frame, stamp_ns: int | None = None, *, color_encoding: str = "rgb8",
             depth: np.ndarray | None = None, info: CameraInfo | None = None,
             pose: bool = True, camera_frame: str = OPTICAL) -> None:
        stamp_ns = frame.stamp_ns if stamp_ns is None else stamp_ns
        self.frames_sent += 1
        if pose:
            self.send_pose(frame.T_world_cam, stamp_ns - 1_000_000)
            self.send_pose(frame.T_world_cam, stamp_ns + 1_000_000)
        self.info.publish(info or conv.camera_info_msg(frame.intrinsics, stamp_ns, camera_frame))
        pixels = frame.color if color_encoding != "bgr8" else frame.color[..., ::-1]
        color = conv.image_msg(pixels, "rgb8" if color_encoding == "bgr8" else "rgb8",
                               stamp_ns, camera_frame)
        color.encoding = color_encoding
        self.color.publish(color)
        self.depth.publish(conv.image_msg(frame.depth if depth is None else depth, "32FC1",
                                          stamp_ns, camera_frame))


def call(node, srv_type, name: str, request, timeout: float = 60.0):
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=10.0), f"{name} not available"
    future = client.call_async(request)
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    assert done.wait(timeout), f"{name} did not answer"
    return future.result()


class StatusWatcher:
    def __init__(self, ros) -> None:
        self.node = ros.node("status_watcher")
        self.latest: SceneStatus | None = None
        self.cloud: PointCloud2 | None = None
        self.patches: ScenePatches | None = None
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(SceneStatus, "scene/status", self._status, 10)
        self.node.create_subscription(PointCloud2, "scene/points", self._cloud, latched)
        self.node.create_subscription(ScenePatches, "scene/patches", self._patches, latched)

    def _status(self, msg):
        self.latest = msg

    def _cloud(self, msg):
        self.cloud = msg

    def _patches(self, msg):
        self.patches = msg

    def drops(self) -> dict[str, int]:
        msg = self.latest
        return {r: c for r, c in zip(msg.drop_reasons, msg.drop_counts, strict=True) if c}


def node_command(name: str) -> list[str]:
    """The command line that runs an installed node executable (as ``ros2 run`` would)."""
    executable = Path(__file__).resolve().parents[2] / "install" / "lib" / "scene_llm_ros" / name
    return [sys.executable, str(executable)]


def interrupt(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Ctrl-C a node process as a terminal would; abort it if it does not stop in time.

    Python node processes run with ``PYTHONFAULTHANDLER`` (conftest), so the abort writes
    every thread's stack to the process output: a test that reports the hang shows where.
    """
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        try:
            process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
