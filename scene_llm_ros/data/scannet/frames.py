"""Frame folders as exported by ScanNet's SensReader: ``color/ depth/ pose/ intrinsic/``.

Layout (indices unpadded, sorted numerically)::

    color/{i}.jpg        RGB JPEG
    depth/{i}.png        uint16 millimetres, 0 = invalid
    pose/{i}.txt         4x4 camera-to-world (-inf everywhere when tracking was lost)
    intrinsic/intrinsic_color.txt  intrinsic/intrinsic_depth.txt   4x4, K top-left
    intrinsic/extrinsic_color.txt  intrinsic/extrinsic_depth.txt   4x4
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from scene_llm_ros.data.depth import depth_from_uint16, depth_to_uint16
from scene_llm_ros.data.scannet.images import (
    fit_color_to_depth,
    intrinsics_to_matrix4,
)
from scene_llm_ros.data.scannet.matrix_txt import read_matrix_txt, write_matrix_txt
from scene_llm_ros.data.types import CameraIntrinsics, RGBDFrame
from scene_llm_ros.errors import DataFormatError, InvalidFrameError

logger = logging.getLogger(__name__)

_SUBDIRS = ("color", "depth", "pose", "intrinsic")
#: What SensReader writes for a frame whose tracking was lost.
LOST_POSE = np.full((4, 4), -np.inf)


def frame_indices(frames_dir: str | Path) -> list[int]:
    """Numerically sorted indices of the ``depth/{i}.png`` files (the frames that exist)."""
    depth_dir = Path(frames_dir) / "depth"
    if not depth_dir.is_dir():
        return []
    return sorted(int(p.stem) for p in depth_dir.glob("*.png") if p.stem.isdigit())


def count_exported_frames(frames_dir: str | Path) -> int:
    """Number of exported frames (depth images), including those with lost tracking.

    :param frames_dir: folder holding ``depth/`` and the other sub-folders.
    :return: the count; 0 when there is no ``depth/`` folder.
    """
    return len(frame_indices(frames_dir))


def write_exported_frames(out_dir: str | Path, frames: Iterable[RGBDFrame], *,
                          jpeg_quality: int = 95) -> int:
    """Write frames in SensReader's export layout, numbered 0, 1, 2...

    Colour and depth are registered in an :class:`RGBDFrame`, so both intrinsic files hold the
    frame intrinsics and both extrinsics are the identity. A frame without a pose is written
    with an all ``-inf`` pose, as ScanNet marks lost tracking.

    :param out_dir: output folder; sub-folders are created.
    :param frames: frames sharing one set of intrinsics.
    :param jpeg_quality: JPEG quality of the colour images, 1..100.
    :return: the number of frames written.
    :raises InvalidFrameError: when a frame is malformed or its intrinsics differ from the
        first frame's.
    :raises ValueError: when ``jpeg_quality`` is out of range.
    """
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    out_dir = Path(out_dir)
    for sub in _SUBDIRS:
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    intrinsics = None
    count = 0
    for index, frame in enumerate(frames):
        frame.validate()
        if intrinsics is None:
            intrinsics = frame.intrinsics
            _write_intrinsics(out_dir / "intrinsic", intrinsics)
        elif frame.intrinsics != intrinsics:
            raise InvalidFrameError(f"frame {index} has intrinsics {frame.intrinsics}, but "
                                    f"frame 0 has {intrinsics}; an export holds one camera")
        bgr = cv2.cvtColor(frame.color, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(out_dir / "color" / f"{index}.jpg"), bgr,
                           [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]):
            raise DataFormatError(f"{out_dir / 'color' / f'{index}.jpg'}: cannot write image")
        depth = depth_to_uint16(frame.depth_metres())
        if not cv2.imwrite(str(out_dir / "depth" / f"{index}.png"), depth):
            raise DataFormatError(f"{out_dir / 'depth' / f'{index}.png'}: cannot write image")
        pose = LOST_POSE if frame.T_world_cam is None else frame.T_world_cam
        write_matrix_txt(out_dir / "pose" / f"{index}.txt", pose)
        count += 1
    logger.info("wrote %d frames to %s", count, out_dir)
    return count


def _write_intrinsics(intrinsic_dir: Path, intrinsics: CameraIntrinsics) -> None:
    matrix = intrinsics_to_matrix4(intrinsics)
    for camera in ("color", "depth"):
        write_matrix_txt(intrinsic_dir / f"intrinsic_{camera}.txt", matrix)
        write_matrix_txt(intrinsic_dir / f"extrinsic_{camera}.txt", np.eye(4))


def read_exported_frames(frames_dir: str | Path, *, fps: float = 30.0,
                         every_nth: int = 1) -> Iterator[RGBDFrame]:
    """Iterate over an exported frame folder as :class:`RGBDFrame` objects.

    Depth becomes float32 metres (NaN where 0); colour is resized to the depth resolution when
    the sizes differ and the frames carry the depth camera's intrinsics. Frames whose pose is not
    finite (lost tracking) are skipped; the count is logged when iteration ends.

    :param frames_dir: folder holding ``color/ depth/ pose/ intrinsic/``.
    :param fps: frame rate used to derive stamps (``stamp = index / fps``).
    :param every_nth: keep every n-th exported frame (in sorted order).
    :return: an iterator of frames with ``extras["frame_index"]`` set.
    :raises DataFormatError: naming the file when an image, pose or intrinsic file is missing or
        unreadable.
    :raises ValueError: when ``fps`` or ``every_nth`` is not positive.
    """
    if fps <= 0 or every_nth < 1:
        raise ValueError(f"fps must be > 0 and every_nth >= 1, got fps={fps} "
                         f"every_nth={every_nth}")
    frames_dir = Path(frames_dir)
    indices = frame_indices(frames_dir)
    if not indices:
        raise DataFormatError(f"{frames_dir}: no depth/<i>.png frames found")
    return _iter_exported(frames_dir, indices[::every_nth], fps)


def _iter_exported(frames_dir: Path, indices: list[int], fps: float) -> Iterator[RGBDFrame]:
    K = read_matrix_txt(frames_dir / "intrinsic" / "intrinsic_depth.txt")
    intrinsics = None
    skipped = 0
    try:
        for index in indices:
            pose_path = frames_dir / "pose" / f"{index}.txt"
            pose = read_matrix_txt(pose_path)
            if not np.all(np.isfinite(pose)):
                skipped += 1
                continue
            depth = depth_from_uint16(_read_depth_png(frames_dir / "depth" / f"{index}.png"))
            color = _read_color(frames_dir / "color" / f"{index}.jpg")
            if intrinsics is None:
                intrinsics = _intrinsics(K, depth.shape, frames_dir)
            yield RGBDFrame(color=fit_color_to_depth(color, depth.shape), depth=depth,
                            intrinsics=intrinsics, T_world_cam=pose,
                            stamp_ns=round(index * 1e9 / fps), extras={"frame_index": index})
    finally:
        if skipped:
            logger.info("%s: skipped %d of %d frames with non-finite poses (lost tracking)",
                        frames_dir, skipped, len(indices))


def _intrinsics(K: np.ndarray, shape: tuple[int, int], frames_dir: Path) -> CameraIntrinsics:
    try:
        return CameraIntrinsics.from_matrix(K, width=shape[1], height=shape[0])
    except InvalidFrameError as exc:
        raise DataFormatError(f"{frames_dir / 'intrinsic' / 'intrinsic_depth.txt'}: {exc}") \
            from exc


def _read_depth_png(path: Path) -> np.ndarray:
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise DataFormatError(f"{path}: missing or unreadable depth image")
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise DataFormatError(f"{path}: depth must be a 1-channel uint16 PNG, got {depth.dtype} "
                              f"{depth.shape}")
    return depth


def _read_color(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataFormatError(f"{path}: missing or unreadable colour image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
