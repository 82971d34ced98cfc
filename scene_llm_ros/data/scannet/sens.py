"""ScanNet ``.sens`` RGB-D stream container (version 4, little-endian).

Layout, as written by ScanNet's ``SensorData`` (``sensorData.h``) and read by ``SensorData.py``::

    uint32 version (4)
    uint64 name length, then that many bytes of sensor name
    float32[16] x 4: intrinsic_color, extrinsic_color, intrinsic_depth, extrinsic_depth
                     (each a 4x4 matrix, row-major)
    int32 color compression (-1 unknown, 0 raw, 1 png, 2 jpeg)
    int32 depth compression (-1 unknown, 0 raw_ushort, 1 zlib_ushort, 2 occi_ushort)
    uint32 color_width, color_height, depth_width, depth_height
    float32 depth_shift (units per metre, 1000)
    uint64 num_frames, then per frame:
        float32[16] camera_to_world (row-major; -inf everywhere when tracking was lost)
        uint64 timestamp_color, timestamp_depth (microseconds)
        uint64 color_size_bytes, depth_size_bytes
        color bytes, depth bytes
    uint64 num_imu_frames, then per IMU frame (128 bytes):
        float64[3] rotation_rate, acceleration, magnetic_field, attitude, gravity
        uint64 timestamp

Reading indexes the frame headers once and decodes images lazily, so a 2 GB file costs only a
pass of seeks.
"""
from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from scene_llm_ros.data.depth import DEPTH_SHIFT, depth_from_uint16, depth_to_uint16
from scene_llm_ros.data.scannet.images import (
    decode_color,
    encode_jpeg,
    fit_color_to_depth,
    intrinsics_to_matrix4,
)
from scene_llm_ros.data.types import CameraIntrinsics, RGBDFrame
from scene_llm_ros.errors import DataFormatError, InvalidFrameError

logger = logging.getLogger(__name__)

SENS_VERSION = 4
COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}
#: One IMU record, 128 bytes, in file order.
IMU_DTYPE = np.dtype([("rotation_rate", "<f8", (3,)), ("acceleration", "<f8", (3,)),
                      ("magnetic_field", "<f8", (3,)), ("attitude", "<f8", (3,)),
                      ("gravity", "<f8", (3,)), ("timestamp", "<u8")])

_MATRICES = struct.Struct("<64f")
_CAMERA_INFO = struct.Struct("<iiIIIIf")  # compressions, sizes, depth shift
_FRAME_HEADER = struct.Struct("<16fQQQQ")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
# A sensor name longer than this is a corrupt length field, not a name.
_MAX_NAME_BYTES = 1 << 16


@dataclass
class SensFrameRecord:
    """Where one frame lives in the file, with its pose and stamps (images not loaded)."""

    index: int
    camera_to_world: np.ndarray
    timestamp_color_us: int
    timestamp_depth_us: int
    color_offset: int
    color_size: int
    depth_offset: int
    depth_size: int


@dataclass
class SensFile:
    """An opened ``.sens`` file: header fields, the frame index and the IMU records.

    Matrices are float64 (4, 4) converted from the file's float32.
    """

    path: Path
    version: int
    sensor_name: str
    intrinsic_color: np.ndarray
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: str
    depth_compression: str
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float
    records: list[SensFrameRecord] = field(default_factory=list)
    imu: np.ndarray = field(default_factory=lambda: np.zeros(0, IMU_DTYPE))

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[RGBDFrame]:
        return self.iter_frames()

    @property
    def depth_intrinsics(self) -> CameraIntrinsics:
        """Pinhole model of the depth camera, which every decoded frame uses."""
        try:
            return CameraIntrinsics.from_matrix(self.intrinsic_depth, self.depth_width,
                                                self.depth_height)
        except InvalidFrameError as exc:
            raise DataFormatError(f"{self.path}: depth intrinsics are invalid: {exc}") from exc

    def read_raw(self, index: int) -> tuple[bytes, bytes]:
        """The compressed colour and depth bytes of frame ``index``."""
        record = self.records[index]
        with open(self.path, "rb") as stream:
            stream.seek(record.color_offset)
            color = stream.read(record.color_size)
            stream.seek(record.depth_offset)
            depth = stream.read(record.depth_size)
        if len(color) != record.color_size or len(depth) != record.depth_size:
            raise DataFormatError(f"{self.path}: frame {index}: file shrank while reading")
        return color, depth

    def read_frame(self, index: int) -> RGBDFrame:
        """Decode frame ``index``; a non-finite pose gives ``T_world_cam=None``.

        Depth becomes float32 metres (``value / depth_shift``, NaN where 0); colour is resized to
        the depth resolution and the frame carries the depth intrinsics.

        :raises DataFormatError: naming the file and the frame when an image cannot be decoded.
        """
        record = self.records[index]
        color_bytes, depth_bytes = self.read_raw(index)
        depth = depth_from_uint16(self._decode_depth(depth_bytes, index), self.depth_shift)
        color = self._decode_color(color_bytes, index)
        pose = record.camera_to_world
        return RGBDFrame(color=fit_color_to_depth(color, depth.shape), depth=depth,
                         intrinsics=self.depth_intrinsics,
                         T_world_cam=pose.copy() if np.all(np.isfinite(pose)) else None,
                         stamp_ns=record.timestamp_depth_us * 1000,
                         extras={"frame_index": index,
                                 "timestamp_color_ns": record.timestamp_color_us * 1000})

    def iter_frames(self, every_nth: int = 1) -> Iterator[RGBDFrame]:
        """Decode every n-th frame, skipping frames whose pose is not finite (lost tracking).

        :param every_nth: stride over the frames of the file.
        :return: iterator of frames; the number skipped is logged when iteration ends.
        :raises ValueError: when ``every_nth`` < 1.
        """
        if every_nth < 1:
            raise ValueError(f"every_nth must be >= 1, got {every_nth}")
        return self._iter_frames(every_nth)

    def _iter_frames(self, every_nth: int) -> Iterator[RGBDFrame]:
        skipped = 0
        try:
            for index in range(0, len(self.records), every_nth):
                if not np.all(np.isfinite(self.records[index].camera_to_world)):
                    skipped += 1
                    continue
                yield self.read_frame(index)
        finally:
            if skipped:
                logger.info("%s: skipped %d frames with non-finite poses (lost tracking)",
                            self.path, skipped)

    def _decode_depth(self, data: bytes, index: int) -> np.ndarray:
        expected = self.depth_width * self.depth_height * 2
        if self.depth_compression == "zlib_ushort":
            try:
                data = zlib.decompress(data)
            except zlib.error as exc:
                raise DataFormatError(f"{self.path}: frame {index}: corrupt zlib depth: {exc}") \
                    from exc
        elif self.depth_compression != "raw_ushort":
            raise DataFormatError(f"{self.path}: depth compression {self.depth_compression!r} "
                                  f"is not supported")
        if len(data) != expected:
            raise DataFormatError(f"{self.path}: frame {index}: depth has {len(data)} bytes, "
                                  f"expected {expected} for {self.depth_width}x"
                                  f"{self.depth_height} uint16")
        return np.frombuffer(data, "<u2").reshape(self.depth_height, self.depth_width).copy()

    def _decode_color(self, data: bytes, index: int) -> np.ndarray:
        if self.color_compression == "raw":
            expected = self.color_width * self.color_height * 3
            if len(data) != expected:
                raise DataFormatError(f"{self.path}: frame {index}: raw colour has {len(data)} "
                                      f"bytes, expected {expected}")
            return np.frombuffer(data, np.uint8).reshape(self.color_height, self.color_width, 3)
        if self.color_compression not in ("jpeg", "png"):
            raise DataFormatError(f"{self.path}: colour compression "
                                  f"{self.color_compression!r} is not supported")
        color = decode_color(data)
        if color is None:
            raise DataFormatError(f"{self.path}: frame {index}: colour image cannot be decoded")
        return color


class _Reader:
    """Reads fixed-size fields and names the file, position and field when the file ends early."""

    def __init__(self, stream: BinaryIO, path: Path, size: int) -> None:
        self.stream, self.path, self.size = stream, path, size

    def read(self, count: int, what: str) -> bytes:
        position = self.stream.tell()
        data = self.stream.read(count)
        if len(data) != count:
            raise DataFormatError(f"{self.path}: truncated: {what} needs {count} bytes at offset "
                                  f"{position} but the file is {self.size} bytes")
        return data


def read_sens(path: str | Path) -> SensFile:
    """Open a ``.sens`` file and index its frames and IMU records.

    :param path: the ``.sens`` file.
    :return: the opened file; frames are decoded on demand.
    :raises DataFormatError: naming the file (and the frame index) when the version is not 4,
        a compression code is unknown, or the file is truncated or its sizes are inconsistent.
    """
    path = Path(path)
    try:
        size = os.path.getsize(path)
        stream = open(path, "rb")
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot open .sens file: {exc}") from exc
    with stream:
        reader = _Reader(stream, path, size)
        sens = _read_header(reader)
        num_frames = _U64.unpack(reader.read(8, "frame count"))[0]
        for index in range(num_frames):
            sens.records.append(_read_frame_record(reader, index, num_frames))
        sens.imu = _read_imu(reader)
    logger.debug("%s: %d frames, %d IMU records", path, len(sens.records), len(sens.imu))
    return sens


def _read_header(reader: _Reader) -> SensFile:
    path = reader.path
    version = _U32.unpack(reader.read(4, "version"))[0]
    if version != SENS_VERSION:
        raise DataFormatError(f"{path}: .sens version {version}, only {SENS_VERSION} is supported")
    name_length = _U64.unpack(reader.read(8, "sensor name length"))[0]
    if name_length > _MAX_NAME_BYTES:
        raise DataFormatError(f"{path}: sensor name length {name_length} is implausible (corrupt)")
    sensor_name = reader.read(name_length, "sensor name").decode("utf-8", errors="replace")
    matrices = np.array(_MATRICES.unpack(reader.read(_MATRICES.size, "calibration matrices")),
                        dtype=np.float64).reshape(4, 4, 4)
    color_code, depth_code, color_w, color_h, depth_w, depth_h, depth_shift = \
        _CAMERA_INFO.unpack(reader.read(_CAMERA_INFO.size, "camera info"))
    if color_code not in COLOR_COMPRESSION or depth_code not in DEPTH_COMPRESSION:
        raise DataFormatError(f"{path}: unknown compression codes colour={color_code} "
                              f"depth={depth_code}")
    if depth_shift <= 0 or not np.isfinite(depth_shift):
        raise DataFormatError(f"{path}: depth_shift must be positive, got {depth_shift}")
    return SensFile(path=path, version=version, sensor_name=sensor_name,
                    intrinsic_color=matrices[0], extrinsic_color=matrices[1],
                    intrinsic_depth=matrices[2], extrinsic_depth=matrices[3],
                    color_compression=COLOR_COMPRESSION[color_code],
                    depth_compression=DEPTH_COMPRESSION[depth_code],
                    color_width=color_w, color_height=color_h, depth_width=depth_w,
                    depth_height=depth_h, depth_shift=float(depth_shift))


def _read_frame_record(reader: _Reader, index: int, num_frames: int) -> SensFrameRecord:
    where = f"frame {index} of {num_frames}"
    values = _FRAME_HEADER.unpack(reader.read(_FRAME_HEADER.size, f"{where} header"))
    pose = np.array(values[:16], dtype=np.float64).reshape(4, 4)
    ts_color, ts_depth, color_size, depth_size = values[16:]
    color_offset = reader.stream.tell()
    end = color_offset + color_size + depth_size
    if end > reader.size:
        raise DataFormatError(f"{reader.path}: truncated in {where}: its images need "
                              f"{color_size} + {depth_size} bytes at offset {color_offset} but "
                              f"the file is {reader.size} bytes")
    reader.stream.seek(end)
    return SensFrameRecord(index, pose, ts_color, ts_depth, color_offset, color_size,
                           color_offset + color_size, depth_size)


def _read_imu(reader: _Reader) -> np.ndarray:
    remaining = reader.size - reader.stream.tell()
    if remaining == 0:
        # Some writers stop after the frames; an absent IMU block means no IMU data.
        logger.debug("%s: no IMU block", reader.path)
        return np.zeros(0, IMU_DTYPE)
    count = _U64.unpack(reader.read(8, "IMU frame count"))[0]
    needed = count * IMU_DTYPE.itemsize
    if needed != remaining - 8:
        raise DataFormatError(f"{reader.path}: IMU block says {count} records ({needed} bytes) "
                              f"but {remaining - 8} bytes follow (truncated or corrupt)")
    return np.frombuffer(reader.read(needed, "IMU records"), IMU_DTYPE).copy()


def write_sens(path: str | Path, frames: Iterable[RGBDFrame], *,
               sensor_name: str = "scene_llm_ros synthetic", imu: np.ndarray | None = None,
               jpeg_quality: int = 95) -> int:
    """Write frames as a version-4 ``.sens`` file (JPEG colour, zlib uint16 depth, shift 1000).

    Colour and depth share the frames' intrinsics (both calibrations hold them, extrinsics are
    identity). Stamps are stored in microseconds; a frame without a pose is stored with an all
    ``-inf`` pose as ScanNet marks lost tracking.

    :param path: output file.
    :param frames: at least one frame; all must share intrinsics.
    :param sensor_name: written into the header.
    :param imu: records of :data:`IMU_DTYPE`, or None for an empty IMU block.
    :param jpeg_quality: JPEG quality of the colour images, 1..100.
    :return: the number of frames written.
    :raises InvalidFrameError: when a frame is malformed or its intrinsics differ from frame 0.
    :raises ValueError: when there are no frames or ``imu`` has the wrong dtype.
    """
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    imu = np.zeros(0, IMU_DTYPE) if imu is None else np.asarray(imu)
    if imu.dtype != IMU_DTYPE:
        raise ValueError(f"imu must have dtype IMU_DTYPE, got {imu.dtype}")
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise ValueError(f"write_sens needs at least one frame for {path}")
    first.validate()
    intrinsics = first.intrinsics
    matrix = intrinsics_to_matrix4(intrinsics)
    name = sensor_name.encode("utf-8")
    with open(path, "wb") as stream:
        stream.write(_U32.pack(SENS_VERSION) + _U64.pack(len(name)) + name)
        stream.write(_MATRICES.pack(*matrix.ravel(), *np.eye(4).ravel(),
                                    *matrix.ravel(), *np.eye(4).ravel()))
        stream.write(_CAMERA_INFO.pack(2, 1, intrinsics.width, intrinsics.height,
                                       intrinsics.width, intrinsics.height, DEPTH_SHIFT))
        count_offset = stream.tell()
        stream.write(_U64.pack(0))  # patched below, so frames can come from a generator
        count = 0
        for index, frame in enumerate(_chain(first, iterator)):
            frame.validate()
            if frame.intrinsics != intrinsics:
                raise InvalidFrameError(f"frame {index} has intrinsics {frame.intrinsics}, but "
                                        f"frame 0 has {intrinsics}; a .sens holds one camera")
            color = encode_jpeg(frame.color, jpeg_quality)
            depth = zlib.compress(depth_to_uint16(frame.depth_metres()).astype("<u2").tobytes())
            pose = np.full(16, -np.inf) if frame.T_world_cam is None else \
                np.asarray(frame.T_world_cam, dtype=np.float64).ravel()
            stamp_us = int(frame.stamp_ns) // 1000
            stream.write(_FRAME_HEADER.pack(*pose, stamp_us, stamp_us, len(color), len(depth)))
            stream.write(color)
            stream.write(depth)
            count += 1
        stream.write(_U64.pack(len(imu)) + imu.astype(IMU_DTYPE).tobytes())
        stream.seek(count_offset)
        stream.write(_U64.pack(count))
    logger.info("wrote %s: %d frames, %d IMU records", path, count, len(imu))
    return count


def _chain(first: RGBDFrame, rest: Iterator[RGBDFrame]) -> Iterator[RGBDFrame]:
    yield first
    yield from rest
