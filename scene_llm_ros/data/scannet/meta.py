"""ScanNet scene meta files (``sceneXXXX_XX.txt``): ``key = value`` lines."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scene_llm_ros.data.scannet.matrix_txt import format_float
from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.errors import DataFormatError, InvalidFrameError

logger = logging.getLogger(__name__)

_INT_KEYS = {"colorWidth": "color_width", "colorHeight": "color_height",
             "depthWidth": "depth_width", "depthHeight": "depth_height",
             "numColorFrames": "num_color_frames", "numDepthFrames": "num_depth_frames"}
_INTRINSIC_KEYS = ("fx", "fy", "mx", "my")


@dataclass
class SceneMeta:
    """Content of a scene meta file; every field is None when its key is absent.

    :ivar axis_alignment: float64 (4, 4) row-major ``T_aligned_scan`` that rotates the scan so
        walls are axis-aligned and the floor is at z=0 (absent in early releases).
    :ivar color_intrinsics: colour camera at ``colorWidth`` x ``colorHeight``.
    :ivar depth_intrinsics: depth camera at ``depthWidth`` x ``depthHeight``.
    :ivar extra: other keys, verbatim (``sceneType``, ``colorToDepthExtrinsics``...).
    """

    axis_alignment: np.ndarray | None = None
    color_width: int | None = None
    color_height: int | None = None
    depth_width: int | None = None
    depth_height: int | None = None
    color_intrinsics: CameraIntrinsics | None = None
    depth_intrinsics: CameraIntrinsics | None = None
    num_color_frames: int | None = None
    num_depth_frames: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def read_meta(path: str | Path) -> SceneMeta:
    """Parse a scene meta file.

    :param path: the ``<scene_id>.txt`` file.
    :return: the meta; keys that are absent leave their field None.
    :raises DataFormatError: naming the file and the key when a value cannot be parsed, or a
        non-empty line has no ``=``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read meta file: {exc}") from exc
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise DataFormatError(f"{path}: line {number} is not 'key = value': {line!r}")
        values[key.strip()] = value.strip()
    meta = SceneMeta()
    if "axisAlignment" in values:
        numbers = _floats(values.pop("axisAlignment"), "axisAlignment", path)
        if len(numbers) != 16:
            raise DataFormatError(f"{path}: key 'axisAlignment' needs 16 numbers, got "
                                  f"{len(numbers)}")
        meta.axis_alignment = np.array(numbers, dtype=np.float64).reshape(4, 4)
    for key, attribute in _INT_KEYS.items():
        if key in values:
            setattr(meta, attribute, _int(values.pop(key), key, path))
    meta.color_intrinsics = _intrinsics(values, "color", meta.color_width, meta.color_height, path)
    meta.depth_intrinsics = _intrinsics(values, "depth", meta.depth_width, meta.depth_height, path)
    meta.extra = values
    return meta


def _floats(text: str, key: str, path: Path) -> list[float]:
    try:
        return [float(word) for word in text.split()]
    except ValueError:
        raise DataFormatError(f"{path}: key {key!r} has non-numeric value {text!r}") from None


def _int(text: str, key: str, path: Path) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataFormatError(f"{path}: key {key!r} has non-integer value {text!r}") from None


def _intrinsics(values: dict[str, str], camera: str, width: int | None, height: int | None,
                path: Path) -> CameraIntrinsics | None:
    """Build one camera from ``fx_<camera>``...; incomplete sets stay in ``values`` (extra)."""
    keys = [f"{name}_{camera}" for name in _INTRINSIC_KEYS]
    if not all(k in values for k in keys) or width is None or height is None:
        return None
    numbers = []
    for key in keys:
        parsed = _floats(values[key], key, path)
        if len(parsed) != 1:
            raise DataFormatError(f"{path}: key {key!r} must be one number, got {values[key]!r}")
        numbers.append(parsed[0])
    try:
        intrinsics = CameraIntrinsics(*numbers, width, height)
    except InvalidFrameError as exc:
        raise DataFormatError(f"{path}: {camera} intrinsics are invalid: {exc}") from exc
    for key in keys:
        del values[key]
    return intrinsics


def write_meta(path: str | Path, meta: SceneMeta, *, newline: str = "\r\n") -> None:
    """Write a scene meta file with keys sorted as ScanNet does.

    Floats are written with six decimals (ScanNet's ``%f``) when that is exact, otherwise with
    full precision, so a file read from ScanNet is written back byte for byte.

    :param path: output ``.txt`` file.
    :param meta: the values; None fields are left out.
    :param newline: line end; ScanNet's files use CRLF.
    """
    values = dict(meta.extra)
    if meta.axis_alignment is not None:
        matrix = np.asarray(meta.axis_alignment, dtype=np.float64).reshape(16)
        values["axisAlignment"] = " ".join(format_float(v) for v in matrix)
    for key, attribute in _INT_KEYS.items():
        if getattr(meta, attribute) is not None:
            values[key] = str(int(getattr(meta, attribute)))
    for camera, intrinsics in (("color", meta.color_intrinsics), ("depth", meta.depth_intrinsics)):
        if intrinsics is None:
            continue
        for name, value in zip(_INTRINSIC_KEYS, (intrinsics.fx, intrinsics.fy, intrinsics.cx,
                                                 intrinsics.cy), strict=True):
            values[f"{name}_{camera}"] = format_float(value)
        # Intrinsics are only valid at their own size, so the size is always written with them.
        values.setdefault(f"{camera}Width", str(intrinsics.width))
        values.setdefault(f"{camera}Height", str(intrinsics.height))
    text = "".join(f"{key} = {values[key]}{newline}" for key in sorted(values))
    Path(path).write_bytes(text.encode("utf-8"))

