"""SceneFusion: posed RGB-D frames in, a TSDF map and a 3D patch memory out, thread-safe."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scene_llm_ros.data.depth import DEPTH_SHIFT, depth_from_uint16
from scene_llm_ros.data.types import RGBDFrame
from scene_llm_ros.errors import DataFormatError, InvalidFrameError
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import PatchEncoder
from scene_llm_ros.fusion.keyframes import KeyframeSelector
from scene_llm_ros.fusion.lifting import backproject, lift_patch_grid
from scene_llm_ros.fusion.patch_memory import PatchMemory
from scene_llm_ros.fusion.sampling import farthest_point_sampling
from scene_llm_ros.fusion.semantic_map import SemanticMap
from scene_llm_ros.fusion.snapshot import Keyframe, SceneSnapshot
from scene_llm_ros.fusion.store import read_scene_dir, write_scene_dir
from scene_llm_ros.fusion.tsdf import TsdfVolume

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntegrationResult:
    """What one :meth:`SceneFusion.integrate` call did, with wall times in milliseconds."""

    keyframe: bool
    new_tokens: int
    integrate_ms: float
    patch_ms: float


class SceneFusion:
    """Fuses posed RGB-D frames into a TSDF and a 3D patch memory.

    Every frame updates the geometry; keyframes also run the patch encoder and pool the
    lifted patches into the memory. All public methods are thread-safe: snapshots are taken
    atomically while integration continues in another thread.

    :param config: fusion settings.
    :param encoder: the 2D patch encoder whose features fill the memory.
    :param scene_frame: frame id of the world frame the poses are expressed in.
    """

    def __init__(self, config: FusionConfig | None = None, *, encoder: PatchEncoder,
                 scene_frame: str = "map") -> None:
        self.config = config or FusionConfig()
        self.encoder = encoder
        self.scene_frame = scene_frame
        self._lock = threading.RLock()
        self._reset_state()

    def _reset_state(self) -> None:
        c = self.config
        self._tsdf = TsdfVolume(voxel_size_m=c.voxel_size_m, block_resolution=c.block_resolution,
                                depth_max_m=c.depth_max_m,
                                trunc_voxel_multiplier=c.trunc_voxel_multiplier, device=c.device)
        self._memory = PatchMemory(c.patch_voxel_size_m, self.encoder.feature_dim)
        self._semantic = self._new_semantic_map()
        self._keyframes = KeyframeSelector(c.keyframes)
        self._keyframe: Keyframe | None = None
        self._version = 0
        self._stamp_ns = 0
        self._frames_integrated = 0
        self._keyframe_count = 0
        self._bounds_min = np.full(3, np.inf, np.float32)
        self._bounds_max = np.full(3, -np.inf, np.float32)
        self._snapshot_cache: SceneSnapshot | None = None

    def _new_semantic_map(self) -> SemanticMap | None:
        if not self.encoder.class_names:
            return None
        return SemanticMap(self.config.voxel_size_m, self.encoder.class_names,
                           pixel_stride=self.config.semantic_pixel_stride)

    def reset(self) -> None:
        """Forget everything fused so far (the version keeps counting up)."""
        with self._lock:
            version = self._version
            self._reset_state()
            self._version = version + 1

    def integrate(self, frame: RGBDFrame) -> IntegrationResult:
        """Fuse one posed frame into the geometry, and into the patch memory if a keyframe.

        :raises InvalidFrameError: when the frame, its intrinsics or its pose are unusable;
            the scene is unchanged then.
        """
        frame.validate()
        if frame.T_world_cam is None:
            raise InvalidFrameError("frame has no pose")
        start = time.perf_counter()
        max_m = self.config.depth_max_m
        if frame.depth.dtype == np.uint16:
            # Sensor millimetres go to the TSDF as they are; metres are made for keyframes only.
            depth = frame.depth
            in_range = (depth > 0) & (depth <= max_m * DEPTH_SHIFT)
        else:
            # Comparisons are False for NaN and exclude +-inf, so one mask covers every hole.
            in_range = (frame.depth > 0) & (frame.depth <= max_m)
            depth = np.where(in_range, frame.depth, np.float32(np.nan))
        if not in_range.any():
            raise InvalidFrameError("frame has no valid depth within range")

        with self._lock:
            is_keyframe = self._keyframes.is_keyframe(frame.T_world_cam, frame.stamp_ns)
        positions = features = depth_m = probabilities = None
        patch_ms = 0.0
        if is_keyframe:
            patch_start = time.perf_counter()
            depth_m = depth
            if depth.dtype == np.uint16:
                depth_m = depth_from_uint16(depth)
                depth_m[~in_range] = np.nan
            positions, features, probabilities = self._lift_patches(frame, depth_m)
            patch_ms = (time.perf_counter() - patch_start) * 1e3

        with self._lock:
            self._tsdf.integrate(RGBDFrame(frame.color, depth, frame.intrinsics,
                                           frame.T_world_cam, frame.stamp_ns, frame.frame_id))
            new_tokens = 0
            if is_keyframe:
                new_tokens = self._memory.add(positions, features)
                if self._semantic is not None and probabilities is not None:
                    self._semantic.add(probabilities, depth_m, frame.intrinsics,
                                       frame.T_world_cam)
                self._keyframe = Keyframe(frame.color.copy(), depth_m, frame.intrinsics,
                                          np.array(frame.T_world_cam, np.float64),
                                          frame.stamp_ns, frame.frame_id)
                self._keyframe_count += 1
            self._update_bounds(depth, frame)
            self._frames_integrated += 1
            self._stamp_ns = max(self._stamp_ns, frame.stamp_ns)
            self._version += 1
        total_ms = (time.perf_counter() - start) * 1e3
        return IntegrationResult(is_keyframe, new_tokens, total_ms - patch_ms, patch_ms)

    def _lift_patches(self, frame: RGBDFrame, depth: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Lifted patch positions and features, and the patch grid's class probabilities
        (None when the encoder does not classify)."""
        grid = self.encoder.encode(frame.color[None])[0]
        positions, valid = lift_patch_grid(depth, frame.intrinsics, frame.T_world_cam,
                                           grid.shape[:2],
                                           min_valid_fraction=self.config.min_patch_valid_fraction)
        return (positions[valid], grid.reshape(-1, grid.shape[-1])[valid],
                self.encoder.classify(grid))

    def _update_bounds(self, depth: np.ndarray, frame: RGBDFrame) -> None:
        # Every 16th pixel is plenty for an axis-aligned bound (and cheap on every frame).
        world = backproject(depth, frame.intrinsics, frame.T_world_cam, stride=16,
                            depth_max_m=self.config.depth_max_m)
        if len(world) == 0:
            return
        np.minimum(self._bounds_min, world.min(axis=0), out=self._bounds_min)
        np.maximum(self._bounds_max, world.max(axis=0), out=self._bounds_max)

    def snapshot(self) -> SceneSnapshot:
        """The current scene as an immutable snapshot (the same object until the next change).

        At most ``config.max_patch_tokens`` tokens, chosen by farthest-point sampling.
        """
        with self._lock:
            cached = self._snapshot_cache
            if cached is not None and cached.scene_version == self._version:
                return cached
            _, positions, features, counts = self._memory.arrays()
            total = len(positions)
            keep = farthest_point_sampling(positions, self.config.max_patch_tokens)
            empty = not np.isfinite(self._bounds_min).all()
            points, colors = self._tsdf.extract_point_cloud(
                weight_threshold=self.config.surface_weight_threshold)
            point_classes = point_object_classes = None
            if self._semantic is not None:
                point_classes, point_object_classes = self._semantic.classes_at(points)
            snap = SceneSnapshot(
                positions=positions[keep], features=features[keep], counts=counts[keep],
                total_tokens=total, scene_version=self._version, stamp_ns=self._stamp_ns,
                scene_frame=self.scene_frame, keyframe=self._keyframe,
                bounds_min=np.full(3, np.nan, np.float32) if empty else self._bounds_min.copy(),
                bounds_max=np.full(3, np.nan, np.float32) if empty else self._bounds_max.copy(),
                points=points, colors=colors, voxel_size_m=self.config.voxel_size_m,
                point_classes=point_classes, point_object_classes=point_object_classes,
                class_names=() if self._semantic is None else self._semantic.class_names)
            for array in (snap.positions, snap.features, snap.counts, snap.bounds_min,
                          snap.bounds_max, snap.points, snap.colors, snap.point_classes,
                          snap.point_object_classes):
                if array is not None:
                    array.flags.writeable = False
            self._snapshot_cache = snap
            return snap

    def point_cloud(self) -> tuple[np.ndarray, np.ndarray]:
        """Coloured surface points of the TSDF: (float32 (N, 3) metres, uint8 (N, 3) RGB)."""
        with self._lock:
            return self._tsdf.extract_point_cloud(
                weight_threshold=self.config.surface_weight_threshold)

    def mesh(self):
        """Marching-cubes mesh of the TSDF (Open3D tensor TriangleMesh with colours)."""
        with self._lock:
            return self._tsdf.extract_mesh(weight_threshold=self.config.surface_weight_threshold)

    def save(self, directory: Path) -> int:
        """Save geometry, patch memory and metadata atomically into ``directory``.

        :return: the scene version that was saved.
        """
        with self._lock:
            meta = {"scene_version": self._version, "scene_frame": self.scene_frame,
                    "stamp_ns": self._stamp_ns, "config": self.config.to_dict(),
                    "encoder": self.encoder.identity,
                    "feature_dim": self.encoder.feature_dim,
                    "frames_integrated": self._frames_integrated,
                    "keyframes": self._keyframe_count,
                    "bounds_min": self._bounds_min.tolist(),
                    "bounds_max": self._bounds_max.tolist()}
            write_scene_dir(directory, meta=meta, save_tsdf=self._tsdf.save,
                            memory=self._memory, keyframe=self._keyframe,
                            semantic=self._semantic)
            return self._version

    def load(self, directory: Path) -> int:
        """Replace the scene by one saved with :meth:`save`.

        Everything is read and checked before anything changes, so a failed load leaves the
        running scene intact.

        :return: the new scene version (greater than any version seen before).
        :raises DataFormatError: when the directory is not a compatible saved scene.
        """
        meta, tsdf_path, memory, keyframe, semantic = read_scene_dir(directory)
        if meta.get("feature_dim") != self.encoder.feature_dim:
            raise DataFormatError(
                f"{directory} holds {meta.get('feature_dim')}-d patch features but the running "
                f"encoder produces {self.encoder.feature_dim}-d ones")
        if meta.get("encoder") != self.encoder.identity:
            logger.warning("%s was saved with encoder %s, running %s: features may not match",
                           directory, meta.get("encoder"), self.encoder.identity)
        try:
            config = FusionConfig(**meta["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{directory}: bad fusion config in metadata: {exc}") from exc
        tsdf = TsdfVolume(voxel_size_m=config.voxel_size_m,
                          block_resolution=config.block_resolution,
                          depth_max_m=config.depth_max_m,
                          trunc_voxel_multiplier=config.trunc_voxel_multiplier,
                          device=self.config.device)
        tsdf.load(tsdf_path)
        if semantic is not None and semantic.class_names != self.encoder.class_names:
            logger.warning("%s holds a semantic map over other classes than the running "
                           "encoder's: starting a new one", directory)
            semantic = None
        with self._lock:
            version = self._version
            self.config = FusionConfig(**{**config.to_dict(), "device": self.config.device})
            self._reset_state()
            self._tsdf, self._memory = tsdf, memory
            self._semantic = semantic or self._new_semantic_map()
            self._keyframe = keyframe
            self.scene_frame = str(meta.get("scene_frame", self.scene_frame))
            self._stamp_ns = int(meta.get("stamp_ns", 0))
            self._frames_integrated = int(meta.get("frames_integrated", 0))
            self._keyframe_count = int(meta.get("keyframes", 0))
            self._bounds_min = np.array(meta.get("bounds_min", [np.inf] * 3), np.float32)
            self._bounds_max = np.array(meta.get("bounds_max", [-np.inf] * 3), np.float32)
            self._version = max(version, int(meta.get("scene_version", 0))) + 1
            return self._version

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(min, max) corners of the observed surface, None while nothing is fused."""
        with self._lock:
            if not np.isfinite(self._bounds_min).all():
                return None
            return self._bounds_min.copy(), self._bounds_max.copy()

    @property
    def stats(self) -> dict[str, int]:
        """Counters for status reporting."""
        with self._lock:
            return {"scene_version": self._version, "frames_integrated": self._frames_integrated,
                    "keyframes": self._keyframe_count, "patch_tokens": len(self._memory),
                    "tsdf_voxels": self._tsdf.voxel_count,
                    "memory_bytes": self._tsdf.memory_bytes + self._memory.memory_bytes + (
                        0 if self._semantic is None else self._semantic.memory_bytes)}
