"""Why frames were dropped, counted thread-safely."""
from __future__ import annotations

import threading
from enum import Enum


class DropReason(str, Enum):
    """Drop reasons; the values are the ``SceneStatus.DROP_*`` names (a test keeps them equal)."""

    QUEUE_FULL = "queue_full"
    UNSYNCHRONIZED = "unsynchronized"
    BAD_ENCODING = "bad_encoding"
    BAD_DEPTH = "bad_depth"
    SIZE_MISMATCH = "size_mismatch"
    NO_CAMERA_INFO = "no_camera_info"
    BAD_INTRINSICS = "bad_intrinsics"
    NO_POSE = "no_pose"
    STALE_POSE = "stale_pose"
    TIME_JUMP = "time_jump"
    FRAME_CHANGE = "frame_change"
    RATE_LIMIT = "rate_limit"


class DropCounter:
    """Counts of dropped frames by :class:`DropReason`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(DropReason, 0)

    def add(self, reason: DropReason, count: int = 1) -> None:
        with self._lock:
            self._counts[reason] += count

    def counts(self) -> dict[str, int]:
        """Every reason's name with its count (zeros included, in declaration order)."""
        with self._lock:
            return {reason.value: count for reason, count in self._counts.items()}

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())
