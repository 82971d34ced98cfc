"""Lift a grid of 2D patches into 3D with the depth under each patch."""
from __future__ import annotations

import numpy as np

from scene_llm_ros.data.depth import depth_from_uint16
from scene_llm_ros.data.types import CameraIntrinsics


def lift_patch_grid(depth: np.ndarray, intrinsics: CameraIntrinsics, T_world_cam: np.ndarray,
                    grid_size: tuple[int, int], *, min_valid_fraction: float = 0.1
                    ) -> tuple[np.ndarray, np.ndarray]:
    """3D position of every patch of a ``grid_size`` grid laid over the depth image.

    Each patch takes the median of its valid depths (robust to holes and to the background
    showing through at object edges) and is placed on the ray through its centre pixel.

    :param depth: float32 (H, W) metres, NaN/0/negative = invalid, same camera as
        ``intrinsics``.
    :param T_world_cam: float64 (4, 4) camera optical frame -> world.
    :param grid_size: (grid_height, grid_width) of the encoder's patch grid.
    :param min_valid_fraction: patches with fewer valid pixels than this fraction are dropped.
    :return: ``(positions float32 (gh * gw, 3) world metres, valid bool (gh * gw,))``, in
        row-major patch order; positions of invalid patches are NaN.
    """
    height, width = depth.shape
    gh, gw = grid_size
    n_cells = gh * gw
    if height % gh == 0 and width % gw == 0:
        median, counts = _block_medians(depth, gh, gw)
        pixels_per_cell = np.full(n_cells, (height // gh) * (width // gw))
    else:
        median, counts, pixels_per_cell = _cell_medians(depth, gh, gw)
    ok = (counts > 0) & (counts >= min_valid_fraction * pixels_per_cell)

    # Centre pixel of each cell, in the same pixel-centre convention as the intrinsics.
    cell_rows = np.repeat(np.arange(gh), gw)
    cell_cols = np.tile(np.arange(gw), gh)
    v = (cell_rows + 0.5) * height / gh - 0.5
    u = (cell_cols + 0.5) * width / gw - 0.5
    z = median
    points_cam = np.stack([(u - intrinsics.cx) / intrinsics.fx * z,
                           (v - intrinsics.cy) / intrinsics.fy * z, z], axis=1)
    points_world = points_cam @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]
    points_world[~ok] = np.nan
    return points_world.astype(np.float32), ok


def backproject(depth: np.ndarray, intrinsics: CameraIntrinsics, T_world_cam: np.ndarray, *,
                stride: int = 4, depth_max_m: float = np.inf) -> np.ndarray:
    """World points of every ``stride``-th valid depth pixel.

    :param depth: float32 (H, W) metres, NaN/0 = invalid; or uint16 millimetres, 0 = invalid.
    :param depth_max_m: farther pixels are invalid too.
    :return: float32 (N, 3) metres in the frame ``T_world_cam`` maps into.
    """
    return backproject_grid(depth, intrinsics, T_world_cam, stride=stride,
                            depth_max_m=depth_max_m)[0]


def backproject_grid(depth: np.ndarray, intrinsics: CameraIntrinsics, T_world_cam: np.ndarray,
                     *, stride: int = 4, depth_max_m: float = np.inf
                     ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`backproject`, and which pixels of the ``depth[::stride, ::stride]`` grid the
    points are.

    :return: ``(float32 (N, 3) world points, bool (rows, cols) valid sampled pixels)``, the
        points in the row-major order of the valid pixels.
    """
    sub = depth[::stride, ::stride]
    if sub.dtype == np.uint16:
        sub = depth_from_uint16(sub)  # only the sampled pixels are converted
    valid = np.isfinite(sub) & (sub > 0) & (sub <= depth_max_m)
    v, u = np.nonzero(valid)
    z = sub[v, u].astype(np.float64)
    cam = np.stack([(u * stride - intrinsics.cx) / intrinsics.fx * z,
                    (v * stride - intrinsics.cy) / intrinsics.fy * z, z], axis=1)
    return (cam @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]).astype(np.float32), valid


def _block_medians(depth: np.ndarray, gh: int, gw: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch median of valid depths and valid counts when patches tile the image evenly.

    Invalid pixels become +inf, so after a row sort the valid values come first and the
    median is the middle one of them (the upper middle for even counts, as in the general
    path).
    """
    height, width = depth.shape
    blocks = depth.reshape(gh, height // gh, gw, width // gw).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(gh * gw, -1).astype(np.float32)
    valid = np.isfinite(blocks) & (blocks > 0)
    counts = valid.sum(axis=1)
    ordered = np.sort(np.where(valid, blocks, np.inf), axis=1)
    median = ordered[np.arange(gh * gw), counts // 2].astype(np.float64)
    median[counts == 0] = np.nan
    return median, counts


def _cell_medians(depth: np.ndarray, gh: int, gw: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell medians, valid counts and cell sizes for any image size."""
    height, width = depth.shape
    rows = (np.arange(height) * gh) // height
    cols = (np.arange(width) * gw) // width
    all_cells = (rows[:, None] * gw + cols[None, :]).ravel()
    values = depth.ravel()
    valid = np.isfinite(values) & (values > 0)
    cell, values = all_cells[valid], values[valid]
    n_cells = gh * gw
    counts = np.bincount(cell, minlength=n_cells)
    pixels_per_cell = np.bincount(all_cells, minlength=n_cells)
    # Median per cell without a Python loop: sort by (cell, depth), pick the middle entry.
    order = np.lexsort((values, cell))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has_depth = counts > 0
    median = np.full(n_cells, np.nan, np.float64)
    median[has_depth] = values[order][starts[has_depth] + counts[has_depth] // 2]
    return median, counts, pixels_per_cell
