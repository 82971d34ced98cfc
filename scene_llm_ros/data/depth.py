"""Metric depth (float metres, NaN = invalid) to and from uint16 sensor units (0 = invalid).

ScanNet files, 16UC1 ROS images and Open3D's integration fast path all store depth this way.
"""
from __future__ import annotations

import numpy as np

#: Units per metre of uint16 depth (millimetres), as ScanNet and 16UC1 images use.
DEPTH_SHIFT = 1000.0
_UINT16_MAX = np.iinfo(np.uint16).max


def depth_to_uint16(depth_m: np.ndarray, depth_shift: float = DEPTH_SHIFT) -> np.ndarray:
    """Convert float metres (NaN = invalid) to uint16 units (0 = invalid).

    Depths that do not fit in uint16 (beyond 65.535 m at millimetres) become 0 as well, since
    a clipped value would be a wrong measurement rather than a missing one.

    :param depth_m: float (H, W) metres.
    :param depth_shift: units per metre.
    :return: uint16 (H, W).
    """
    # float32 holds every uint16 value exactly, so rounding is exact; working in place with
    # comparisons that are False for NaN keeps this a few cheap passes over the image.
    scaled = np.multiply(depth_m, np.float32(depth_shift), dtype=np.float32)
    np.rint(scaled, out=scaled)
    with np.errstate(invalid="ignore"):
        scaled[~((scaled > 0) & (scaled <= _UINT16_MAX))] = 0
    return scaled.astype(np.uint16)


def depth_from_uint16(depth_units: np.ndarray, depth_shift: float = DEPTH_SHIFT) -> np.ndarray:
    """Convert uint16 depth (0 = invalid) to float32 metres with NaN for invalid."""
    depth = depth_units.astype(np.float32) / np.float32(depth_shift)
    depth[depth_units == 0] = np.nan
    return depth
