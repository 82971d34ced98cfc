"""Where frame poses come from when tf2 is not doing the work: /tf messages or a pose topic.

Both keep a bounded history and answer "the pose of the camera optical frame in the scene
frame at this stamp", interpolating between samples. A lookup that fails now may succeed
once newer samples arrive, so the pipeline retries until its pose timeout.
"""
from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from scene_llm_ros.geometry.tf_buffer import TFBuffer, TransformLookupError, TransformTrack

#: How much pose history is kept (stamp time); it must cover frames still queued, so it is
#: longer than tf2's 10 s default.
HISTORY_NS = 60_000_000_000


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1e9)


class PoseFrameError(TransformLookupError):
    """The pose source speaks of another scene frame than the configured one."""


class PoseLookup(Protocol):
    """``T_scene_camera`` at an image stamp."""

    def lookup(self, camera_frame: str, stamp_ns: int, tolerance_ns: int) -> np.ndarray:
        """:raises TransformLookupError: when no pose is available (yet) at ``stamp_ns``;
            :class:`PoseFrameError` when poses arrive in a frame other than the scene frame.
        """

    def clear(self) -> None:
        """Forget time-varying history (the scene was reset)."""


class TFPoseSource:
    """Poses from /tf and /tf_static messages, chained from the scene frame to the camera."""

    def __init__(self, scene_frame: str, *, camera_frame: str = "",
                 time_jump_s: float | None = None) -> None:
        """:param camera_frame: frame to look up instead of the image's frame_id ("" = that).
        :param time_jump_s: a transform stamped this much before the newest one of its edge
            means the source started over (a bag loop): that edge's history is forgotten.
        """
        self.scene_frame = scene_frame
        self.camera_frame = camera_frame
        self._lock = threading.Lock()
        self._buffer = TFBuffer(tolerance_ns=0, history_ns=HISTORY_NS,
                                jump_back_ns=_ns(time_jump_s))

    def add_transform(self, parent: str, child: str, stamp_ns: int, T_parent_child: np.ndarray,
                      *, static: bool) -> None:
        with self._lock:
            if static:
                self._buffer.add_static(parent, child, T_parent_child)
            else:
                self._buffer.add_dynamic(parent, child, stamp_ns, T_parent_child)

    def transform(self, target: str, source: str, stamp_ns: int,
                  tolerance_ns: int) -> np.ndarray:
        """``T_target_source`` at ``stamp_ns`` through the TF tree."""
        with self._lock:
            return self._buffer.lookup(target, source, stamp_ns, tolerance_ns=tolerance_ns)

    def lookup(self, camera_frame: str, stamp_ns: int, tolerance_ns: int) -> np.ndarray:
        return self.transform(self.scene_frame, self.camera_frame or camera_frame, stamp_ns,
                              tolerance_ns)

    def clear(self) -> None:
        with self._lock:
            self._buffer.clear_dynamic()


class TopicPoseSource:
    """Poses from a PoseStamped or Odometry topic: ``T_scene_body`` samples.

    The body is the Odometry child frame, or ``body_frame`` for a PoseStamped ("" = the camera
    optical frame itself). When the body is not the camera frame, the static or dynamic
    transform body -> camera comes from ``tf`` (/tf_static of the robot description).
    """

    def __init__(self, scene_frame: str, *, body_frame: str = "",
                 tf: TFPoseSource | None = None, time_jump_s: float | None = None) -> None:
        """:param time_jump_s: as for :class:`TFPoseSource`, for the pose topic's samples."""
        self.scene_frame = scene_frame
        self.body_frame = body_frame
        self._tf = tf
        self._lock = threading.Lock()
        self._track = TransformTrack("pose topic", tolerance_ns=0, history_ns=HISTORY_NS,
                                     jump_back_ns=_ns(time_jump_s))
        self._foreign_frame: str | None = None

    def add_pose(self, frame_id: str, stamp_ns: int, T_scene_body: np.ndarray,
                 child_frame_id: str = "") -> None:
        """Add a sample; one in another frame than the scene frame is refused and remembered."""
        frame_id = frame_id.lstrip("/")
        with self._lock:
            if frame_id != self.scene_frame:
                self._foreign_frame = frame_id
                return
            self._foreign_frame = None
            if child_frame_id and not self.body_frame:
                self.body_frame = child_frame_id.lstrip("/")
            self._track.add(stamp_ns, T_scene_body)

    def lookup(self, camera_frame: str, stamp_ns: int, tolerance_ns: int) -> np.ndarray:
        with self._lock:
            if self._foreign_frame is not None:
                raise PoseFrameError(f"poses arrive in frame {self._foreign_frame!r}, not in the "
                                     f"scene frame {self.scene_frame!r}")
            T_scene_body = self._track.at(stamp_ns, tolerance_ns=tolerance_ns)
            body = self.body_frame
        if not body or body == camera_frame:
            return T_scene_body
        if self._tf is None:
            raise TransformLookupError(f"pose topic gives frame {body!r} but images are in "
                                       f"{camera_frame!r} and no TF is available to chain them")
        return T_scene_body @ self._tf.transform(body, camera_frame, stamp_ns, tolerance_ns)

    def clear(self) -> None:
        with self._lock:
            self._track.clear()
        if self._tf is not None:
            self._tf.clear()
