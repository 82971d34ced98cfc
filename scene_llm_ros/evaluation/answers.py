"""What the evaluation keeps of each AskScene response (plain data, no ROS types)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scene_llm_ros.data.types import CameraIntrinsics


@dataclass(frozen=True)
class PredictedObject:
    """One ``GroundedObject`` of a response.

    :ivar center: float64 (3,) box centre, metres, scene frame.
    :ivar size: float64 (3,) full box size, metres.
    :ivar roi: (x_offset, y_offset, width, height) of the mask in the reference image.
    :ivar mask: uint8 (H, W) 0/255 in the reference image, None when the response had none.
    """

    id: str
    label: str
    score: float
    center: np.ndarray
    size: np.ndarray
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)
    mask: np.ndarray | None = None

    @property
    def box(self) -> np.ndarray:
        """float64 (6,) centre + size, the metrics' box layout."""
        return np.concatenate([self.center, self.size]).astype(np.float64)


@dataclass(frozen=True)
class ReferenceCamera:
    """The reference image of a response: its camera, pose and stamp.

    :ivar T_world_cam: float64 (4, 4) optical frame -> scene frame.
    """

    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray
    stamp_ns: int
    frame_id: str


@dataclass(frozen=True)
class AskResult:
    """One question's response as the planner saw it.

    :ivar latency_ms: wall time of the service call at the client (request sent -> response).
    :ivar stage_ms: the node's own timing: ``encode``, ``prefill``, ``decode``, ``total``.
    """

    success: bool
    error_code: str
    message: str
    answer: str
    objects: list[PredictedObject] = field(default_factory=list)
    reference: ReferenceCamera | None = None
    scene_frame: str = ""
    scene_version: int = 0
    tokens_generated: int = 0
    latency_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def failed(cls, error_code: str, message: str, latency_ms: float = 0.0) -> AskResult:
        """A question that got no response (e.g. the service call timed out)."""
        return cls(success=False, error_code=error_code, message=message, answer="",
                   latency_ms=latency_ms)

    def boxes(self) -> np.ndarray:
        """float64 (N, 6) predicted boxes in answer order."""
        return np.array([o.box for o in self.objects], dtype=np.float64).reshape(-1, 6)
