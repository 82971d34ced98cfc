"""Colour and depth image conversions shared by the exported-frame and ``.sens`` formats."""
from __future__ import annotations

import logging

import cv2
import numpy as np

from scene_llm_ros.data.types import CameraIntrinsics

logger = logging.getLogger(__name__)

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
