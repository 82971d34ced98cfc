"""Named colours and procedural vertex textures (wood grain, stripes, noise)."""
from __future__ import annotations

import numpy as np

# sRGB base colours; the names are the words annotations use ("the red chair").
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (178, 34, 34),
    "blue": (40, 80, 170),
    "green": (46, 125, 50),
    "white": (232, 232, 228),
    "black": (28, 28, 30),
    "brown": (120, 78, 44),
    "gray": (128, 128, 132),
    "yellow": (220, 190, 40),
    "orange": (225, 120, 30),
    "beige": (215, 195, 160),
    "purple": (110, 60, 140),
    "pink": (230, 150, 170),
    "light blue": (150, 190, 225),
    "dark brown": (74, 46, 26),
    "silver": (185, 188, 192),
}

# Synonyms a question may use for a colour, and answers a QA record lists as correct.
COLOR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "gray": ("grey",),
    "dark brown": ("brown",),
    "light blue": ("blue",),
    "beige": ("tan", "cream"),
    "silver": ("gray", "metal"),
}

TEXTURES = ("plain", "noise", "wood", "stripes", "checker")


def texture_intensity(points: np.ndarray, texture: str, rng: np.random.Generator) -> np.ndarray:
    """Return a multiplicative brightness pattern for vertices of one part.

    :param points: float64 (N, 3) vertex positions in the part's local frame, metres.
    :param texture: one of :data:`TEXTURES`.
    :param rng: generator for the pattern's phase, scale and per-vertex jitter.
    :return: float64 (N,) factors around 1.
    """
    n = len(points)
    jitter = 1.0 + rng.normal(0.0, 0.035, n)
    if texture == "plain":
        return jitter
    if texture == "noise":
        return jitter + rng.normal(0.0, 0.07, n)
    axis = int(rng.integers(0, 2))
    coord = points[:, axis]
    other = points[:, 1 - axis] + points[:, 2]
    phase = rng.uniform(0.0, 2.0 * np.pi)
    if texture == "wood":
        # Grain: rings bent by a slow sine of the cross coordinate, plus fine streaks.
        frequency = rng.uniform(18.0, 30.0)
        rings = np.sin(frequency * (coord + 0.04 * np.sin(6.0 * other + phase)) + phase)
        return jitter + 0.12 * rings + rng.normal(0.0, 0.03, n)
    if texture == "stripes":
        period = rng.uniform(0.08, 0.25)
        return jitter + 0.18 * np.sign(np.sin(2.0 * np.pi * coord / period + phase))
    if texture == "checker":
        size = rng.uniform(0.2, 0.5)
        cells = np.floor(points[:, 0] / size) + np.floor(points[:, 1] / size)
        return jitter + 0.12 * (np.mod(cells, 2.0) * 2.0 - 1.0)
    raise ValueError(f"unknown texture {texture!r}; expected one of {TEXTURES}")


def shade_vertices(points: np.ndarray, color_name: str, texture: str,
                   rng: np.random.Generator) -> np.ndarray:
    """Return uint8 (N, 3) RGB vertex colours of ``color_name`` modulated by ``texture``."""
    base = np.asarray(COLORS[color_name], dtype=np.float64)
    tint = 1.0 + rng.normal(0.0, 0.04, 3)  # each object a slightly different shade
    factor = texture_intensity(points, texture, rng)[:, None]
    return np.clip(base * tint * factor, 0, 255).round().astype(np.uint8)
