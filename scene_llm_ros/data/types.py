"""Plain data types for posed RGB-D frames and camera models.

Conventions used everywhere in scene_llm_ros:

- Camera frames are optical frames (REP-103 ``*_optical_frame``): x right, y down, z forward.
- World / scene frames are +Z up (REP-103/105, ScanNet meshes), units are metres.
- A transform ``T_a_b`` is a float64 (4, 4) matrix mapping points in frame ``b`` to frame ``a``
  (``p_a = T_a_b @ p_b``); ``T_world_cam`` is therefore the camera-to-world pose.
- Depth is float32 metres with NaN marking invalid pixels.
- Stamps are integer nanoseconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scene_llm_ros.data.depth import depth_from_uint16
from scene_llm_ros.errors import InvalidFrameError


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels (no distortion)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(np.isfinite(values)) or self.fx <= 0 or self.fy <= 0:
            raise InvalidFrameError(
                f"intrinsics need finite positive focal lengths, got fx={self.fx} fy={self.fy} "
                f"cx={self.cx} cy={self.cy}")
        if self.width <= 0 or self.height <= 0:
            raise InvalidFrameError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def matrix(self) -> np.ndarray:
        """float64 (3, 3) camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_matrix(cls, K: np.ndarray, width: int, height: int) -> CameraIntrinsics:
        """Build from a (3, 3) or (4, 4) camera matrix such as ScanNet's ``intrinsic_*.txt``."""
        K = np.asarray(K, dtype=np.float64)
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]),
                   int(width), int(height))

    def resized(self, width: int, height: int) -> CameraIntrinsics:
        """Intrinsics of the same camera after resizing the image to ``width`` x ``height``.

        Pixel centres are kept consistent (the half-pixel offset is scaled, not the corner).
        """
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                                (self.cy + 0.5) * sy - 0.5, int(width), int(height))

    def cropped(self, x0: int, y0: int, width: int, height: int) -> CameraIntrinsics:
        """Intrinsics of the ``width`` x ``height`` crop whose top-left pixel is (x0, y0)."""
        return CameraIntrinsics(self.fx, self.fy, self.cx - x0, self.cy - y0,
                                int(width), int(height))


@dataclass
class RGBDFrame:
    """One posed RGB-D frame.

    :ivar color: uint8 (H, W, 3) RGB.
    :ivar depth: float32 (H, W) metres along the optical axis, NaN = invalid; or uint16
        (H, W) millimetres, 0 = invalid, as 16UC1 sensors deliver it (integration reads it
        without a conversion). Registered to ``color`` (same size and intrinsics).
    :ivar intrinsics: pinhole model of both images.
    :ivar T_world_cam: float64 (4, 4) camera optical frame -> world, or None if unknown.
    :ivar stamp_ns: acquisition time in nanoseconds.
    :ivar frame_id: camera optical frame name.
    """

    color: np.ndarray
    depth: np.ndarray
    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray | None = None
    stamp_ns: int = 0
    frame_id: str = "camera_color_optical_frame"
    extras: dict = field(default_factory=dict)

    def depth_metres(self) -> np.ndarray:
        """float32 (H, W) metres, NaN = invalid (``depth`` itself when it is float)."""
        if self.depth.dtype == np.uint16:
            return depth_from_uint16(self.depth)
        return self.depth

    def validate(self) -> None:
        """Raise :class:`InvalidFrameError` when the arrays or the pose are unusable."""
        if self.color.ndim != 3 or self.color.shape[2] != 3 or self.color.dtype != np.uint8:
            raise InvalidFrameError(
                f"color must be uint8 (H, W, 3), got {self.color.dtype} {self.color.shape}")
        if self.depth.ndim != 2 or self.depth.dtype not in (np.float32, np.uint16):
            raise InvalidFrameError(f"depth must be float32 or uint16 (H, W), got "
                                    f"{self.depth.dtype} {self.depth.shape}")
        if self.color.shape[:2] != self.depth.shape:
            raise InvalidFrameError(
                f"color {self.color.shape[1]}x{self.color.shape[0]} and depth "
                f"{self.depth.shape[1]}x{self.depth.shape[0]} differ in size")
        if (self.intrinsics.width, self.intrinsics.height) != (self.depth.shape[1],
                                                               self.depth.shape[0]):
            raise InvalidFrameError(
                f"intrinsics are for {self.intrinsics.width}x{self.intrinsics.height} but the "
                f"images are {self.depth.shape[1]}x{self.depth.shape[0]}")
        if self.T_world_cam is not None:
            T = np.asarray(self.T_world_cam)
            if T.shape != (4, 4) or not np.all(np.isfinite(T)):
                raise InvalidFrameError(f"pose must be a finite (4, 4) matrix, got {T.shape}")
