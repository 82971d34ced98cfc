"""TSDF geometry: Open3D's tensor VoxelBlockGrid with colour, integrated frame by frame."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import open3d as o3d
import open3d.core as o3c

from scene_llm_ros.data.depth import DEPTH_SHIFT, depth_to_uint16
from scene_llm_ros.data.types import RGBDFrame
from scene_llm_ros.errors import DataFormatError, InvalidFrameError
from scene_llm_ros.fusion.lifting import backproject

logger = logging.getLogger(__name__)

# Bytes per voxel: tsdf, weight (float32 each) and colour (3 x float32).
_VOXEL_BYTES = 4 + 4 + 12


class TsdfVolume:
    """A coloured TSDF in the world frame.

    :param voxel_size_m: edge of one voxel, metres.
    :param block_resolution: voxels per block edge (blocks are allocated where surfaces are seen,
        so memory grows with the explored volume, not with the number of frames).
    :param depth_max_m: depths beyond this are ignored.
    :param trunc_voxel_multiplier: truncation distance in voxels.
    :param device: Open3D device string, ``"CPU:0"`` or ``"CUDA:0"``.
    """

    def __init__(self, *, voxel_size_m: float = 0.04, block_resolution: int = 16,
                 depth_max_m: float = 5.0, trunc_voxel_multiplier: float = 4.0,
                 initial_block_count: int = 256, device: str = "CPU:0") -> None:
        if voxel_size_m <= 0:
            raise ValueError(f"voxel_size_m must be positive, got {voxel_size_m}")
        self.voxel_size_m = float(voxel_size_m)
        self.block_resolution = int(block_resolution)
        self.depth_max_m = float(depth_max_m)
        self.trunc_voxel_multiplier = float(trunc_voxel_multiplier)
        self.device = o3c.Device(device)
        self._grid = self._new_grid(initial_block_count)

    def _new_grid(self, block_count: int) -> o3d.t.geometry.VoxelBlockGrid:
        return o3d.t.geometry.VoxelBlockGrid(
            attr_names=("tsdf", "weight", "color"),
            attr_dtypes=(o3c.float32, o3c.float32, o3c.float32),
            attr_channels=((1), (1), (3)),
            voxel_size=self.voxel_size_m, block_resolution=self.block_resolution,
            block_count=block_count, device=self.device)

    def integrate(self, frame: RGBDFrame) -> None:
        """Fuse one posed frame (float depth is quantised to millimetres, as sensors deliver
        it; uint16 millimetre depth is read as it is).

        :raises InvalidFrameError: when the frame has no pose or no valid depth.
        """
        if frame.T_world_cam is None:
            raise InvalidFrameError("cannot integrate a frame without a pose")
        # Open3D's fast path takes uint16 millimetres with uint8 colour (the sensor's own
        # formats); the float path needs a float copy of the colour image per frame.
        too_far = self.depth_max_m * DEPTH_SHIFT
        if frame.depth.dtype == np.uint16:
            depth_mm = np.ascontiguousarray(frame.depth)
            beyond = depth_mm > too_far
            if beyond.any():  # never written to: the caller's array stays as it was
                depth_mm = np.where(beyond, np.uint16(0), depth_mm)
        else:
            depth_mm = depth_to_uint16(frame.depth)
            depth_mm[depth_mm > too_far] = 0
        if not depth_mm.any():
            # Open3D raises "No block is touched" on such frames.
            raise InvalidFrameError("frame has no valid depth within range")
        # from_numpy shares the arrays' memory: Open3D only reads them during this call.
        depth_image = o3d.t.geometry.Image(o3c.Tensor.from_numpy(depth_mm)).to(self.device)
        color_image = o3d.t.geometry.Image(
            o3c.Tensor.from_numpy(np.ascontiguousarray(frame.color))).to(self.device)
        intrinsic = o3c.Tensor(frame.intrinsics.matrix, o3c.float64)
        extrinsic = o3c.Tensor(np.linalg.inv(frame.T_world_cam), o3c.float64)
        try:
            blocks = self._grid.compute_unique_block_coordinates(
                depth_image, intrinsic, extrinsic, DEPTH_SHIFT, self.depth_max_m,
                self.trunc_voxel_multiplier)
        except RuntimeError as exc:
            if "No block is touched" not in str(exc):
                raise
            # Open3D samples the depth image on a coarse pixel grid to find blocks, which
            # misses sparse depth (every other row invalid, say); use every valid pixel.
            world = backproject(depth_mm / DEPTH_SHIFT, frame.intrinsics, frame.T_world_cam,
                                stride=1)
            cloud = o3d.t.geometry.PointCloud(o3c.Tensor(world)).to(self.device)
            blocks = self._grid.compute_unique_block_coordinates(cloud,
                                                                 self.trunc_voxel_multiplier)
        self._grid.integrate(blocks, depth_image, color_image, intrinsic, extrinsic, DEPTH_SHIFT,
                             self.depth_max_m, self.trunc_voxel_multiplier)

    def extract_point_cloud(self, *, weight_threshold: float = 3.0) -> tuple[np.ndarray,
                                                                           np.ndarray]:
        """Surface points of the TSDF zero crossing.

        :param weight_threshold: minimum integration weight of a voxel to count as observed.
        :return: ``(points float32 (N, 3) metres world frame, colors uint8 (N, 3) RGB)``.
        """
        if self.block_count == 0:
            return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
        pcd = self._grid.extract_point_cloud(weight_threshold=weight_threshold)
        if "positions" not in pcd.point or pcd.point.positions.shape[0] == 0:
            return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
        points = pcd.point.positions.cpu().numpy().astype(np.float32)
        colors = pcd.point.colors.cpu().numpy() if "colors" in pcd.point else np.zeros_like(points)
        return points, np.clip(colors * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def extract_mesh(self, *, weight_threshold: float = 3.0) -> o3d.t.geometry.TriangleMesh:
        """Marching-cubes mesh of the TSDF (an Open3D tensor mesh with vertex colours)."""
        return self._grid.extract_triangle_mesh(weight_threshold=weight_threshold)

    @property
    def block_count(self) -> int:
        """Allocated voxel blocks."""
        return int(self._grid.hashmap().size())

    @property
    def voxel_count(self) -> int:
        """Allocated voxels (blocks x voxels per block)."""
        return self.block_count * self.block_resolution ** 3

    @property
    def memory_bytes(self) -> int:
        """Bytes of voxel attributes allocated (the hash map's capacity, which grows with the
        explored volume, not only the blocks in use)."""
        capacity = int(self._grid.hashmap().capacity())
        return capacity * self.block_resolution ** 3 * _VOXEL_BYTES

    def save(self, path: Path) -> None:
        """Write the grid to ``path`` (an ``.npz`` file)."""
        self._grid.save(str(path))

    def load(self, path: Path) -> None:
        """Replace the grid by the one saved at ``path``; on failure this volume is unchanged.

        :raises DataFormatError: when the file is not a readable grid.
        """
        try:
            grid = o3d.t.geometry.VoxelBlockGrid.load(str(path)).to(self.device)
        except (RuntimeError, OSError, ValueError) as exc:
            raise DataFormatError(f"cannot load TSDF grid from {path}: {exc}") from exc
        self._grid = grid
