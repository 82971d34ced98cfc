"""Tests of exported frame folders and ``.sens`` files, written from synthetic frames."""
from __future__ import annotations

import logging
import struct
import zlib

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from scene_llm_ros.data.scannet import (
    IMU_DTYPE,
    count_exported_frames,
    iter_scene_frames,
    read_exported_frames,
    read_sens,
    write_exported_frames,
    write_sens,
)
from scene_llm_ros.data.types import CameraIntrinsics, RGBDFrame
from scene_llm_ros.errors import DataFormatError

WIDTH, HEIGHT = 64, 48
INTRINSICS = CameraIntrinsics(57.1, 57.3, 31.5, 23.25, WIDTH, HEIGHT)


def make_frames(count: int = 5) -> list[RGBDFrame]:
    """Smooth colour (JPEG-friendly), millimetre-quantised depth with holes, random poses."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = []
    for index in range(count):
        color = np.stack([xx * 4, yy * 5, np.full_like(xx, 40 * index)], axis=2).astype(np.uint8)
        depth = (rng.integers(300, 6000, (HEIGHT, WIDTH)) / 1000.0).astype(np.float32)
        depth[rng.random((HEIGHT, WIDTH)) < 0.1] = np.nan
        pose = np.eye(4)
        pose[:3, :3] = Rotation.random(random_state=index).as_matrix()
        pose[:3, 3] = rng.normal(size=3)
        frames.append(RGBDFrame(color, depth, INTRINSICS, pose, stamp_ns=index * 33_334_000))
    return frames


def _mm(depth: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(depth), 0, np.rint(depth * 1000)).astype(np.int64)


def _assert_same_frame(got: RGBDFrame, want: RGBDFrame, pose_atol: float) -> None:
    np.testing.assert_array_equal(_mm(got.depth), _mm(want.depth))
    assert got.depth.dtype == np.float32
    assert np.array_equal(np.isnan(got.depth), np.isnan(want.depth))
    assert np.abs(got.color.astype(int) - want.color.astype(int)).mean() < 2.0
    np.testing.assert_allclose(got.T_world_cam, want.T_world_cam, atol=pose_atol)
    # .sens stores intrinsics as float32
    np.testing.assert_allclose(got.intrinsics.matrix, want.intrinsics.matrix, rtol=1e-6)
    assert (got.intrinsics.width, got.intrinsics.height) == (WIDTH, HEIGHT)


def test_exported_frames_round_trip(tmp_path):
    frames = make_frames()
    frames[2].T_world_cam = None  # lost tracking: written as -inf, skipped on read
    assert write_exported_frames(tmp_path, frames) == 5
    assert sorted(p.name for p in (tmp_path / "intrinsic").iterdir()) == [
        "extrinsic_color.txt", "extrinsic_depth.txt", "intrinsic_color.txt",
        "intrinsic_depth.txt"]
    assert (tmp_path / "pose" / "2.txt").read_text().split() == ["-inf"] * 16
    assert count_exported_frames(tmp_path) == 5
    back = list(read_exported_frames(tmp_path, fps=10.0))
    assert [f.extras["frame_index"] for f in back] == [0, 1, 3, 4]
    assert [f.stamp_ns for f in back] == [0, 100_000_000, 300_000_000, 400_000_000]
    for got, index in zip(back, [0, 1, 3, 4], strict=True):
        _assert_same_frame(got, frames[index], pose_atol=1e-6)
    assert [f.extras["frame_index"] for f in read_exported_frames(tmp_path, every_nth=2)] == [0, 4]


def test_exported_frames_sort_numerically_and_resize_colour(tmp_path):
    import cv2
    frames = make_frames(12)
    write_exported_frames(tmp_path, frames)
    # Real ScanNet colour is larger than depth: upscale one image, the reader must bring it back.
    big = cv2.resize(cv2.imread(str(tmp_path / "color" / "10.jpg")), (WIDTH * 2, HEIGHT * 2))
    cv2.imwrite(str(tmp_path / "color" / "10.jpg"), big)
    back = list(read_exported_frames(tmp_path))
    assert [f.extras["frame_index"] for f in back] == list(range(12))
    assert back[10].color.shape == (HEIGHT, WIDTH, 3)
    _assert_same_frame(back[10], frames[10], pose_atol=1e-6)


def test_exported_frames_errors_name_the_file(tmp_path, caplog):
    write_exported_frames(tmp_path, make_frames(3))
    (tmp_path / "pose" / "1.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 one 0\n0 0 0 1\n")
    with pytest.raises(DataFormatError, match=r"pose/1\.txt.*not numeric"):
        list(read_exported_frames(tmp_path))
    (tmp_path / "pose" / "1.txt").write_text("1 0 0 0\n")
    with pytest.raises(DataFormatError, match=r"pose/1\.txt.*4x4"):
        list(read_exported_frames(tmp_path))
    (tmp_path / "pose" / "1.txt").unlink()
    with pytest.raises(DataFormatError, match=r"pose/1\.txt"):
        list(read_exported_frames(tmp_path))
    with pytest.raises(DataFormatError, match="no depth"):
        read_exported_frames(tmp_path / "nothing")


def test_sens_round_trip(tmp_path, caplog):
    frames = make_frames()
    frames[3].T_world_cam = None
    imu = np.zeros(3, IMU_DTYPE)
    imu["acceleration"] = [[0, 0, 9.81], [0.1, 0, 9.8], [0, 0.2, 9.7]]
    imu["timestamp"] = [10, 20, 30]
    path = tmp_path / "scene0000_00.sens"
    assert write_sens(path, iter(frames), imu=imu) == 5
    sens = read_sens(path)
    assert (sens.version, sens.sensor_name, len(sens)) == (4, "scene_llm_ros synthetic", 5)
    assert (sens.color_compression, sens.depth_compression) == ("jpeg", "zlib_ushort")
    assert (sens.color_width, sens.color_height, sens.depth_width, sens.depth_height) == \
        (WIDTH, HEIGHT, WIDTH, HEIGHT)
    assert sens.depth_shift == 1000.0
    np.testing.assert_allclose(sens.intrinsic_depth[:3, :3], INTRINSICS.matrix, rtol=1e-6)
    np.testing.assert_array_equal(sens.extrinsic_color, np.eye(4))
    assert [r.timestamp_depth_us for r in sens.records] == [i * 33_334 for i in range(5)]
    assert np.all(np.isneginf(sens.records[3].camera_to_world))
    np.testing.assert_array_equal(sens.imu, imu)
    with caplog.at_level(logging.INFO):
        back = list(sens.iter_frames())
    assert "skipped 1 frames" in caplog.text
    assert [f.extras["frame_index"] for f in back] == [0, 1, 2, 4]
    for got, index in zip(back, [0, 1, 2, 4], strict=True):
        assert got.stamp_ns == frames[index].stamp_ns
        # .sens stores poses as float32
        _assert_same_frame(got, frames[index], pose_atol=1e-6)
    assert [f.extras["frame_index"] for f in sens.iter_frames(every_nth=2)] == [0, 2, 4]


def test_sens_layout_matches_scannet_byte_offsets(tmp_path):
    frames = make_frames(2)
    path = tmp_path / "x.sens"
    write_sens(path, frames, sensor_name="StructureSensor")
    data = path.read_bytes()
    assert struct.unpack_from("<IQ", data, 0) == (4, 15)
    assert data[12:27] == b"StructureSensor"
    offset = 27 + 4 * 64
    assert struct.unpack_from("<iiIIIIfQ", data, offset) == (2, 1, WIDTH, HEIGHT, WIDTH, HEIGHT,
                                                             1000.0, 2)
    offset += 36
    pose = np.array(struct.unpack_from("<16f", data, offset)).reshape(4, 4)
    np.testing.assert_allclose(pose, frames[0].T_world_cam, atol=1e-6)  # row-major
    ts_color, ts_depth, color_size, depth_size = struct.unpack_from("<4Q", data, offset + 64)
    assert (ts_color, ts_depth) == (0, 0)
    depth_start = offset + 96 + color_size
    depth = np.frombuffer(zlib.decompress(data[depth_start:depth_start + depth_size]), "<u2")
    np.testing.assert_array_equal(depth.reshape(HEIGHT, WIDTH), _mm(frames[0].depth))
    assert data[offset + 96:offset + 98] == b"\xff\xd8"  # JPEG start-of-image
    assert struct.unpack_from("<Q", data, len(data) - 8) == (0,)  # empty IMU block


@pytest.mark.parametrize("cut, message", [
    (16, r"cut\.sens.*truncated.*sensor name"),
    (300, r"cut\.sens.*truncated.*camera info"),
    (400, r"cut\.sens.*truncated.*frame 0 of 3"),
    (-2000, r"cut\.sens.*truncated in frame 2 of 3"),
])
def test_truncated_sens_names_file_and_frame(tmp_path, cut, message):
    path = tmp_path / "cut.sens"
    write_sens(path, make_frames(3), sensor_name="a" * 8)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(DataFormatError, match=message):
        read_sens(path)


def test_corrupt_sens_depth_names_frame(tmp_path):
    path = tmp_path / "bad.sens"
    write_sens(path, make_frames(2))
    sens = read_sens(path)
    record = sens.records[1]
    data = bytearray(path.read_bytes())
    data[record.depth_offset:record.depth_offset + 4] = b"\x00\x00\x00\x00"
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"bad\.sens: frame 1: corrupt zlib"):
        read_sens(path).read_frame(1)
    data[0] = 3
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"bad\.sens.*version 3"):
        read_sens(path)


def test_iter_scene_frames_prefers_exported_frames(tmp_path):
    scene_dir = tmp_path / "scene0123_00"
    scene_dir.mkdir()
    with pytest.raises(DataFormatError, match=r"scene0123_00\.sens"):
        iter_scene_frames(scene_dir)
    frames = make_frames(4)
    write_sens(scene_dir / "scene0123_00.sens", frames)
    assert [f.stamp_ns for f in iter_scene_frames(scene_dir)] == [f.stamp_ns for f in frames]
    write_exported_frames(scene_dir / "frames", frames[:2])
    exported = list(iter_scene_frames(scene_dir, fps=1.0))
    assert [f.stamp_ns for f in exported] == [0, 1_000_000_000]
