"""Colour and depth image conversions shared by the exported-frame and ``.sens`` formats."""
from __future__ import annotations

import logging

import cv2
import numpy as np

from scene_llm_ros.data.types import CameraIntrinsics

logger = logging.getLogger(__name__)

#: ScanNet stores depth as uint16 with this many units per metre (millimetres).
DEPTH_SHIFT = 1000.0
_UINT16_MAX = np.iinfo(np.uint16).max


def depth_to_uint16(depth_m: np.ndarray, depth_shift: float = DEPTH_SHIFT) -> np.ndarray:
    """Convert float metres (NaN = invalid) to ScanNet's uint16 units (0 = invalid).

    Depths that do not fit in uint16 (beyond 65.535 m at millimetres) become 0 as well, since
    a clipped value would be a wrong measurement rather than a missing one.

    :param depth_m: float (H, W) metres.
    :param depth_shift: units per metre.
    :return: uint16 (H, W).
    """
    scaled = np.rint(np.asarray(depth_m, dtype=np.float64) * depth_shift)
    valid = np.isfinite(scaled) & (scaled > 0) & (scaled <= _UINT16_MAX)
    out = np.zeros(scaled.shape, np.uint16)
    out[valid] = scaled[valid].astype(np.uint16)
    return out


def depth_from_uint16(depth_units: np.ndarray, depth_shift: float = DEPTH_SHIFT) -> np.ndarray:
    """Convert ScanNet's uint16 depth (0 = invalid) to float32 metres with NaN for invalid."""
    depth = depth_units.astype(np.float32) / np.float32(depth_shift)
    depth[depth_units == 0] = np.nan
    return depth


def encode_jpeg(color_rgb: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a uint8 (H, W, 3) RGB image."""
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(color_rgb, cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {color_rgb.shape}")
    return buffer.tobytes()


def decode_color(data: bytes) -> np.ndarray | None:
    """Decode JPEG/PNG bytes to uint8 (H, W, 3) RGB, or None when the bytes are not an image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def fit_color_to_depth(color: np.ndarray, depth_shape: tuple[int, int]) -> np.ndarray:
    """Resize colour to the depth image size when they differ.

    ScanNet's colour camera (1296x968) and depth camera (640x480) differ; resizing colour to the
    depth size and using the depth intrinsics is the usual approximation, since the two cameras
    are only a few centimetres apart and have similar fields of view.
    """
    height, width = depth_shape
    if color.shape[:2] == (height, width):
        return color
    return cv2.resize(color, (width, height), interpolation=cv2.INTER_AREA)


def intrinsics_to_matrix4(intrinsics: CameraIntrinsics) -> np.ndarray:
    """float64 (4, 4) with K in the top-left, as ScanNet stores intrinsics."""
    matrix = np.eye(4)
    matrix[:3, :3] = intrinsics.matrix
    return matrix
