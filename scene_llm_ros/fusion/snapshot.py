"""Immutable views of the fused scene handed to the inference side."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scene_llm_ros.data.types import CameraIntrinsics


@dataclass(frozen=True)
class Keyframe:
    """The reference view the inference side projects masks into.

    :ivar color: uint8 (H, W, 3) RGB.
    :ivar depth: float32 (H, W) metres, NaN = invalid.
    :ivar T_world_cam: float64 (4, 4) camera optical frame -> scene frame.
    """

    color: np.ndarray
    depth: np.ndarray
    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray
    stamp_ns: int
    frame_id: str


@dataclass(frozen=True)
class SceneSnapshot:
    """A consistent, immutable view of the scene for the model.

    :ivar positions: float32 (K, 3) token positions in the scene frame, metres.
    :ivar features: float16 (K, C) pooled patch features.
    :ivar counts: int64 (K,) patches pooled into each token.
    :ivar total_tokens: occupied memory voxels before the token budget was applied.
    :ivar scene_version: increments with every change of the scene.
    :ivar stamp_ns: stamp of the newest frame fused.
    :ivar scene_frame: frame id of positions and bounds (e.g. "map").
    :ivar keyframe: the latest keyframe, None before the first one.
    :ivar bounds_min: float32 (3,) minimum corner of observed surface points (NaN if empty).
    :ivar bounds_max: float32 (3,) maximum corner.
    :ivar points: float32 (N, 3) fused surface points in the scene frame (TSDF zero crossing,
        one per surface voxel), the geometry masks and box refinement are cut from.
    :ivar colors: uint8 (N, 3) RGB of ``points``.
    :ivar voxel_size_m: spacing of ``points`` (the TSDF voxel edge), metres.
    :ivar point_classes: int16 (N,) index into ``class_names`` of each point's most probable
        class (-1: unknown), None when the encoder does not classify its patches.
    :ivar point_object_classes: int16 (N,) each point's most probable class that is no room
        structure (wall, floor, ceiling), what a point is when geometry shows it is none of
        those; None with ``point_classes``.
    :ivar class_names: the classes of ``point_classes``.
    """

    positions: np.ndarray
    features: np.ndarray
    counts: np.ndarray
    total_tokens: int
    scene_version: int
    stamp_ns: int
    scene_frame: str
    keyframe: Keyframe | None
    bounds_min: np.ndarray
    bounds_max: np.ndarray
    points: np.ndarray
    colors: np.ndarray
    voxel_size_m: float = 0.04
    point_classes: np.ndarray | None = None
    point_object_classes: np.ndarray | None = None
    class_names: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return len(self.positions) == 0
