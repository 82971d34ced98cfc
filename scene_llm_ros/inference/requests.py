"""What a caller asks, what it gets back, and the error codes of srv/AskScene."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from scene_llm_ros.data.types import CameraIntrinsics


class ErrorCode(str, Enum):
    """The ``AskScene`` ``ERROR_*`` codes (a test keeps them equal to the interface)."""

    NONE = ""
    NO_SCENE = "NO_SCENE"
    BAD_REQUEST = "BAD_REQUEST"
    BUSY = "BUSY"
    TIMEOUT = "TIMEOUT"
    CANCELED = "CANCELED"
    MODEL_ERROR = "MODEL_ERROR"
    NOT_READY = "NOT_READY"


@dataclass(frozen=True)
class AskRequest:
    """One question.

    :ivar question: UTF-8 text.
    :ivar task: "" (the model decides), "qa", "ground", "caption" or "situated".
    :ivar prompt_points: float64 (M, 3) clicked points in the scene frame.
    :ivar max_new_tokens: 0 uses the engine's default.
    :ivar return_masks: compute each object's 2D mask in the reference image.
    :ivar return_points: return each object's fused 3D points.
    """

    question: str
    task: str = ""
    prompt_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    max_new_tokens: int = 0
    return_masks: bool = True
    return_points: bool = True


@dataclass(frozen=True)
class ObjectResult:
    """One grounded object.

    :ivar center: float64 (3,) box centre in the scene frame (refined by the geometry when a
        segment was found).
    :ivar size: float64 (3,) full extents.
    :ivar mask: uint8 (H, W) 0/255 in the reference image, None when not requested.
    :ivar roi: (x_offset, y_offset, width, height) of the mask, zeros when not visible.
    :ivar points: float32 (N, 3) fused points of the object, None when not requested.
    :ivar colors: uint8 (N, 3) their RGB.
    """

    id: str
    label: str
    score: float
    center: np.ndarray
    size: np.ndarray
    mask: np.ndarray | None = None
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)
    points: np.ndarray | None = None
    colors: np.ndarray | None = None


@dataclass(frozen=True)
class ReferenceView:
    """The keyframe masks refer to."""

    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray
    stamp_ns: int
    frame_id: str


@dataclass
class AskOutcome:
    """The answer, or why there is none (``error_code`` not NONE)."""

    error_code: ErrorCode = ErrorCode.NONE
    message: str = ""
    answer: str = ""
    objects: list[ObjectResult] = field(default_factory=list)
    scene_frame: str = ""
    scene_stamp_ns: int = 0
    scene_version: int = 0
    reference: ReferenceView | None = None
    encode_ms: float = 0.0
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0
    tokens_generated: int = 0
    prefix_cache_hit: bool = False

    @property
    def success(self) -> bool:
        return self.error_code is ErrorCode.NONE

    @classmethod
    def failure(cls, code: ErrorCode, message: str) -> AskOutcome:
        return cls(error_code=code, message=message)
