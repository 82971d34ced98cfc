"""Keyframe selection by camera motion and elapsed time."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class KeyframePolicy:
    """A frame becomes a keyframe when the camera moved or turned enough, or time passed.

    :ivar translation_m: minimum camera translation since the last keyframe, metres.
    :ivar rotation_deg: minimum camera rotation since the last keyframe, degrees.
    :ivar max_interval_s: a keyframe at least this often while frames arrive (0 = never by time).
    """

    translation_m: float = 0.3
    rotation_deg: float = 15.0
    max_interval_s: float = 2.0


class KeyframeSelector:
    """Decides, frame by frame, which frames feed the 3D patch memory."""

    def __init__(self, policy: KeyframePolicy | None = None) -> None:
        self.policy = policy or KeyframePolicy()
        self._last_pose: np.ndarray | None = None
        self._last_stamp_ns = 0

    def reset(self) -> None:
        self._last_pose = None
        self._last_stamp_ns = 0

    def is_keyframe(self, T_world_cam: np.ndarray, stamp_ns: int) -> bool:
        """True (and remembered as the last keyframe) when the frame should be a keyframe."""
        if self._last_pose is None or self._moved_enough(T_world_cam) or self._timed_out(
                stamp_ns):
            self._last_pose = np.array(T_world_cam, np.float64)
            self._last_stamp_ns = int(stamp_ns)
            return True
        return False

    def _moved_enough(self, T_world_cam: np.ndarray) -> bool:
        translation = np.linalg.norm(T_world_cam[:3, 3] - self._last_pose[:3, 3])
        relative = self._last_pose[:3, :3].T @ T_world_cam[:3, :3]
        angle = np.degrees(np.arccos(np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0)))
        return translation >= self.policy.translation_m or angle >= self.policy.rotation_deg

    def _timed_out(self, stamp_ns: int) -> bool:
        interval = self.policy.max_interval_s
        return interval > 0 and (stamp_ns - self._last_stamp_ns) >= interval * 1e9
