"""3D position embedding of scene tokens, independent of where the map origin happens to be."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from scene_llm_ros.model.errors import EmptySceneError


def scene_origin(bounds_min: np.ndarray, bounds_max: np.ndarray) -> np.ndarray:
    """The point positions are embedded relative to: bounds centre in x, y and the floor in z.

    A map's origin is wherever SLAM started, so absolute coordinates carry no meaning; the
    centre of the observed bounds (x, y) and the lowest observed surface (z, +Z up) do.

    :param bounds_min: float (3,) minimum corner of the observed surface, scene frame, metres.
    :param bounds_max: float (3,) maximum corner.
    :return: float64 (3,) origin in the scene frame.
    :raises EmptySceneError: when the bounds are NaN (nothing observed yet).
    """
    low = np.asarray(bounds_min, np.float64).reshape(3)
    high = np.asarray(bounds_max, np.float64).reshape(3)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise EmptySceneError(f"the scene bounds are not finite ({low}, {high}): nothing "
                              f"has been observed yet")
    return np.array([(low[0] + high[0]) / 2.0, (low[1] + high[1]) / 2.0, low[2]])


def relative_positions(positions: np.ndarray, origin: np.ndarray) -> torch.Tensor:
    """float32 (N, 3) positions minus ``origin``, subtracted in float64 to keep precision."""
    return torch.from_numpy((np.asarray(positions, np.float64) - origin).astype(np.float32))


class FourierPositionEmbedding(nn.Module):
    """MLP over xyz and sin/cos of xyz at geometrically spaced wavelengths.

    :param out_dim: embedding width.
    :param num_frequencies: frequencies per axis.
    :param min_wavelength_m: shortest wavelength, metres.
    :param max_wavelength_m: longest wavelength, metres.
    """

    def __init__(self, out_dim: int, *, num_frequencies: int, min_wavelength_m: float,
                 max_wavelength_m: float) -> None:
        super().__init__()
        wavelengths = torch.logspace(math.log10(min_wavelength_m), math.log10(max_wavelength_m),
                                     num_frequencies, dtype=torch.float64)
        # Derived from the config, so not part of the saved weights.
        self.register_buffer("angular_frequency", (2 * math.pi / wavelengths).float(),
                             persistent=False)
        in_dim = 3 + 6 * num_frequencies
        self.mlp = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(),
                                 nn.Linear(out_dim, out_dim))

    def forward(self, relative_xyz: torch.Tensor) -> torch.Tensor:
        """(..., 3) metres relative to :func:`scene_origin` -> (..., out_dim)."""
        angles = relative_xyz[..., :, None] * self.angular_frequency  # (..., 3, F)
        features = torch.cat([relative_xyz, torch.sin(angles).flatten(-2),
                              torch.cos(angles).flatten(-2)], dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))
