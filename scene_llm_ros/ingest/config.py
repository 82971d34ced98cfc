"""Settings of the live ingest pipeline."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class IngestConfig:
    """How frames are synchronised, queued, posed and rate-limited.

    :ivar slop_s: largest stamp difference between paired colour, depth and camera info.
    :ivar sync_buffer_size: messages kept per stream while waiting for a partner.
    :ivar queue_size: synchronised frames waiting for their pose or for the integrator; when
        full the oldest is dropped (``queue_full``), so latency stays bounded.
    :ivar pose_wait_s: how long (wall time) a frame may wait for its camera info and for a
        pose at its stamp.
    :ivar pose_tolerance_s: after that wait, the nearest pose within this of the stamp is used;
        beyond it the frame is dropped as ``stale_pose``.
    :ivar time_jump_s: a colour stamp this much older than the newest one means time jumped
        back (a bag loop): buffers and pose history are cleared and the frame dropped.
    :ivar max_rate_hz: integrate at most this many frames per second of stamp time (the rest
        are dropped as ``rate_limit``); 0 = every frame.
    :ivar camera_frame: expected optical frame of the images ("" accepts any); images of
        another frame are dropped as ``frame_change``.
    """

    slop_s: float = 0.02
    sync_buffer_size: int = 10
    queue_size: int = 5
    pose_wait_s: float = 0.5
    pose_tolerance_s: float = 0.05
    time_jump_s: float = 1.0
    max_rate_hz: float = 0.0
    camera_frame: str = ""

    def __post_init__(self) -> None:
        for name in ("slop_s", "pose_wait_s", "pose_tolerance_s", "max_rate_hz"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.time_jump_s > 0:
            raise ValueError(f"time_jump_s must be positive, got {self.time_jump_s}")
        for name in ("sync_buffer_size", "queue_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)
