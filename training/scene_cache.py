"""Scene tokens fused once per scene by the node's own fusion code, cached on disk.

A cache entry is one safetensors file ``<scene_id>-<key>.safetensors`` holding the snapshot's
token positions, features, counts and bounds, its surface points with their colours, and their
classes when the encoder classifies. The key hashes everything the tokens depend on:
the patch encoder's ``identity`` (which includes its weights digest once trained), every
:class:`~scene_llm_ros.fusion.config.FusionConfig` field, the frame selection, the scene's
frame source (count and size of the exported frames or ``.sens``), the source code of the
fusion and ScanNet-reading packages (so a change in preprocessing, lifting or pooling that
keeps the encoder's identity still invalidates) and :data:`CACHE_FORMAT_VERSION`. Changing any
of them gives a new key, so stale tokens are never read; old entries are simply left behind.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm

import scene_llm_ros.data.scannet as scannet_package
import scene_llm_ros.fusion as fusion_package
from scene_llm_ros.allocator import reuse_freed_memory
from scene_llm_ros.data.scannet import find_scene_files, iter_scene_frames
from scene_llm_ros.errors import DataFormatError, InvalidFrameError
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import PatchEncoder
from scene_llm_ros.fusion.scene import SceneFusion
from scene_llm_ros.fusion.snapshot import SceneSnapshot

logger = logging.getLogger(__name__)

#: Bump when the cached arrays or their meaning change.
CACHE_FORMAT_VERSION = 3
_TENSORS = ("positions", "features", "counts", "bounds_min", "bounds_max", "points", "colors",
            "voxel_size_m")
# Present when the encoder classifies its patches (the classes are the encoder's).
_POINT_CLASSES = ("point_classes", "point_object_classes")


@dataclass(frozen=True)
class FrameSelection:
    """Which of a scene's frames are fused.

    :ivar every_nth: keep every n-th frame.
    :ivar max_frames: at most this many of those (None: all).
    """

    every_nth: int = 1
    max_frames: int | None = None


def _frame_source_signature(scene_dir: Path) -> dict:
    """What identifies the scene's RGB-D input cheaply: file counts and total size."""
    files = find_scene_files(scene_dir)
    if files["frames"] is not None:
        entries = [p for p in files["frames"].rglob("*") if p.is_file()]
        return {"source": "frames", "files": len(entries),
                "bytes": sum(p.stat().st_size for p in entries)}
    if files["sens"] is not None:
        return {"source": "sens", "bytes": files["sens"].stat().st_size}
    raise DataFormatError(f"{scene_dir}: no exported frames/ folder and no "
                          f"{scene_dir.name}.sens file to fuse")


@functools.lru_cache(maxsize=1)
def fusion_code_digest() -> str:
    """Digest of the code that turns a scene folder into tokens (fusion and ScanNet readers).

    Conservative: any edit there, even a comment, re-fuses once rather than risk stale tokens.
    """
    digest = hashlib.blake2b(digest_size=10)
    for package in (fusion_package, scannet_package):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def scene_cache_key(scene_dir: str | Path, *, encoder_identity: str, fusion: FusionConfig,
                    frames: FrameSelection) -> str:
    """A 20-hex-digit key that changes whenever the cached tokens would.

    The fusion device is left out: CPU and CUDA TSDFs give the same tokens.

    :raises DataFormatError: when the scene has no frames to fuse.
    """
    scene_dir = Path(scene_dir)
    settings = {key: value for key, value in fusion.to_dict().items() if key != "device"}
    description = {"format": CACHE_FORMAT_VERSION, "scene_id": scene_dir.name,
                   "encoder": encoder_identity, "fusion": settings,
                   "code": fusion_code_digest(),
                   "every_nth": frames.every_nth, "max_frames": frames.max_frames,
                   "input": _frame_source_signature(scene_dir)}
    text = json.dumps(description, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def fuse_scene(scene_dir: str | Path, *, encoder: PatchEncoder, fusion: FusionConfig,
               frames: FrameSelection) -> SceneSnapshot:
    """Fuse a ScanNet-format scene's posed frames exactly as the fusion node would.

    Poses are axis-aligned (``align=True``) so tokens share the frame of
    ``load_scene(align=True)`` boxes.

    :raises DataFormatError: when the scene has no frames or no usable frame.
    """
    scene_dir = Path(scene_dir)
    fusion_core = SceneFusion(fusion, encoder=encoder)
    stream = iter_scene_frames(scene_dir, every_nth=frames.every_nth, align=True)
    rejected = 0
    for frame in itertools.islice(stream, frames.max_frames):
        try:
            fusion_core.integrate(frame)
        except InvalidFrameError as exc:
            rejected += 1
            logger.debug("%s: frame at %d ns rejected: %s", scene_dir.name, frame.stamp_ns, exc)
    snapshot = fusion_core.snapshot()
    if snapshot.empty:
        raise DataFormatError(f"{scene_dir}: fusion produced no scene tokens ({rejected} "
                              f"frames rejected)")
    if rejected:
        logger.warning("%s: %d frames rejected by fusion", scene_dir.name, rejected)
    return snapshot


def _snapshot_from_arrays(arrays: dict[str, np.ndarray], class_names: tuple[str, ...]
                          ) -> SceneSnapshot:
    # Everything the model, the listener and grounding read, as the inference node has it:
    # tokens, bounds, surface points with colours and classes; only the keyframe (2D masks)
    # is not cached.
    points = arrays["points"]
    point_classes, point_object_classes = (arrays.get(name) for name in _POINT_CLASSES)
    return SceneSnapshot(positions=arrays["positions"], features=arrays["features"],
                         counts=arrays["counts"], total_tokens=len(arrays["positions"]),
                         scene_version=1, stamp_ns=0, scene_frame="map", keyframe=None,
                         bounds_min=arrays["bounds_min"], bounds_max=arrays["bounds_max"],
                         points=points, colors=arrays["colors"],
                         voxel_size_m=float(arrays["voxel_size_m"]),
                         point_classes=point_classes, point_object_classes=point_object_classes,
                         class_names=class_names if point_classes is not None else ())


def _arrays(snapshot: SceneSnapshot) -> dict[str, np.ndarray]:
    arrays = {name: np.array(getattr(snapshot, name),
                             dtype=np.float64 if name == "voxel_size_m" else None)
              for name in _TENSORS}
    if snapshot.point_classes is not None:
        arrays.update({name: np.array(getattr(snapshot, name)) for name in _POINT_CLASSES})
    return arrays


class SceneTokenCache:
    """Scene snapshots by scene directory, fused on first use and cached on disk.

    :param cache_dir: folder of the cache files (created on first write).
    :param encoder: the model's patch encoder (the same one the fusion node runs).
    :param fusion: fusion settings.
    :param frames: frame selection.
    """

    def __init__(self, cache_dir: str | Path, *, encoder: PatchEncoder, fusion: FusionConfig,
                 frames: FrameSelection) -> None:
        self.cache_dir = Path(cache_dir)
        self.encoder = encoder
        self.fusion = fusion
        self.frames = frames
        self.hits = 0
        self.misses = 0

    def path(self, scene_dir: str | Path) -> Path:
        """The cache file of a scene under the current settings."""
        scene_dir = Path(scene_dir)
        key = scene_cache_key(scene_dir, encoder_identity=self.encoder.identity,
                              fusion=self.fusion, frames=self.frames)
        return self.cache_dir / f"{scene_dir.name}-{key}.safetensors"

    def get(self, scene_dir: str | Path) -> SceneSnapshot:
        """The scene's snapshot, read from the cache or fused and written to it.

        :raises DataFormatError: when the scene cannot be fused.
        """
        path = self.path(scene_dir)
        if path.is_file():
            try:
                arrays = {k: v.numpy() for k, v in load_file(str(path)).items()}
                expected = set(_TENSORS) | (set(_POINT_CLASSES) if self.encoder.class_names
                                            else set())
                if set(arrays) == expected:
                    self.hits += 1
                    return _snapshot_from_arrays(arrays, self.encoder.class_names)
                logger.warning("%s lacks tensors %s; fusing again", path,
                               sorted(expected - set(arrays)))
            except (OSError, SafetensorError) as exc:
                logger.warning("unreadable scene cache %s (%s); fusing again", path, exc)
        self.misses += 1
        snapshot = fuse_scene(scene_dir, encoder=self.encoder, fusion=self.fusion,
                              frames=self.frames)
        self._write(path, snapshot)
        logger.info("fused %s: %d tokens -> %s", Path(scene_dir).name, len(snapshot.positions),
                    path.name)
        return _snapshot_from_arrays(_arrays(snapshot), self.encoder.class_names)

    def fill(self, scene_dirs: list[Path], *, workers: int = 1, desc: str = "fuse") -> int:
        """Fuse the scenes that are not cached yet, ``workers`` processes at a time (one
        torch thread each: on 2 cores two processes fused 600 rooms in 9.5 min where one took
        about 12, and in 6.5 min once the patch memory summed with ``reduceat``); return how
        many were fused.

        :raises DataFormatError: when a scene cannot be fused.
        """
        missing = [Path(d) for d in scene_dirs if not self.path(d).is_file()]
        if workers <= 1 or len(missing) <= 1:
            for scene_dir in tqdm(missing, desc=desc, unit="scene"):
                self.get(scene_dir)
            return len(missing)
        with ProcessPoolExecutor(min(workers, len(missing)),
                                 mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_fusion_worker, initargs=(self,)) as pool:
            for _ in tqdm(pool.map(_fuse_in_worker, missing), total=len(missing), desc=desc,
                          unit="scene"):
                pass
        return len(missing)

    def _write(self, path: Path, snapshot: SceneSnapshot) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tensors = {name: torch.from_numpy(array) for name, array in _arrays(snapshot).items()}
        # Write then rename, so a concurrent reader (another rank) never sees half a file.
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        save_file(tensors, str(temporary), metadata={"encoder": self.encoder.identity,
                                                     "scene_id": path.name.split("-")[0]})
        os.replace(temporary, path)


_worker_cache: SceneTokenCache | None = None


def _start_fusion_worker(cache: SceneTokenCache) -> None:
    global _worker_cache
    reuse_freed_memory()
    torch.set_num_threads(1)
    _worker_cache = cache


def _fuse_in_worker(scene_dir: Path) -> None:
    _worker_cache.get(scene_dir)  # the snapshot stays on disk, not sent back
