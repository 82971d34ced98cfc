"""Atomic save and load of a fused scene directory (no pickle anywhere)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.fusion.patch_memory import PatchMemory
from scene_llm_ros.fusion.semantic_map import SemanticMap
from scene_llm_ros.fusion.snapshot import Keyframe

FORMAT_NAME = "scene_llm_ros.scene"
FORMAT_VERSION = 1
META_FILE, TSDF_FILE, PATCHES_FILE, KEYFRAME_FILE, SEMANTIC_FILE = (
    "scene.json", "tsdf.npz", "patches.npz", "keyframe.npz", "semantic.npz")


def write_scene_dir(directory: Path, *, meta: dict, save_tsdf, memory: PatchMemory,
                    keyframe: Keyframe | None, semantic: SemanticMap | None = None) -> None:
    """Write a scene directory atomically: into a temporary sibling, then renamed into place.

    :param meta: JSON-serialisable metadata (versions, config, encoder identity, counters).
    :param save_tsdf: callable writing the TSDF to the path it is given.
    """
    directory = Path(directory).absolute()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        save_tsdf(tmp / TSDF_FILE)
        np.savez(tmp / PATCHES_FILE, **memory.state_dict())
        if semantic is not None:
            np.savez(tmp / SEMANTIC_FILE, **semantic.state_dict())
        if keyframe is not None:
            k = keyframe.intrinsics
            np.savez(tmp / KEYFRAME_FILE, color=keyframe.color, depth=keyframe.depth,
                     intrinsics=np.array([k.fx, k.fy, k.cx, k.cy, k.width, k.height]),
                     T_world_cam=keyframe.T_world_cam, stamp_ns=np.array(keyframe.stamp_ns),
                     frame_id=np.array(keyframe.frame_id))
        full_meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **meta}
        (tmp / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True))
        for path in tmp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        _replace_directory(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_directory(new: Path, target: Path) -> None:
    # rename() cannot replace a non-empty directory: move the old one aside first, so the
    # target is always either the complete old scene or the complete new one.
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / "scene")
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def read_scene_dir(directory: Path
                   ) -> tuple[dict, Path, PatchMemory, Keyframe | None, SemanticMap | None]:
    """Read and validate a scene directory without touching any running state.

    :return: ``(meta, tsdf_path, memory, keyframe, semantic)``; no semantic map when the
        scene was fused without patch classes.
    :raises DataFormatError: naming the directory and what is wrong with it.
    """
    directory = Path(directory)
    meta_path = directory / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise DataFormatError(f"{directory} is not a saved scene (no {META_FILE})") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{meta_path} is unreadable: {exc}") from exc
    if meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
        raise DataFormatError(f"{meta_path} is not a {FORMAT_NAME} v{FORMAT_VERSION} file "
                              f"(format={meta.get('format')!r} "
                              f"version={meta.get('format_version')!r})")
    tsdf_path = directory / TSDF_FILE
    if not tsdf_path.is_file():
        raise DataFormatError(f"{directory} has no {TSDF_FILE}")
    memory = _read_arrays(directory / PATCHES_FILE, PatchMemory.from_state_dict)
    semantic = None
    if (directory / SEMANTIC_FILE).is_file():
        semantic = _read_arrays(directory / SEMANTIC_FILE, SemanticMap.from_state_dict)
    keyframe = None
    if (directory / KEYFRAME_FILE).is_file():
        try:
            with np.load(directory / KEYFRAME_FILE, allow_pickle=False) as data:
                fx, fy, cx, cy, width, height = data["intrinsics"].tolist()
                keyframe = Keyframe(
                    data["color"], data["depth"],
                    CameraIntrinsics(fx, fy, cx, cy, int(width), int(height)),
                    data["T_world_cam"], int(data["stamp_ns"]), str(data["frame_id"]))
        except (OSError, ValueError, KeyError) as exc:
            raise DataFormatError(f"{directory / KEYFRAME_FILE} is unreadable: {exc}") from exc
    return meta, tsdf_path, memory, keyframe, semantic


def _read_arrays(path: Path, build):
    """``build(arrays)`` of an ``.npz`` file, every failure as a DataFormatError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return build(dict(data))
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path} is unreadable: {exc}") from exc
    except DataFormatError as exc:
        raise DataFormatError(f"{path}: {exc}") from exc
