"""Images read from their serialized bytes agree with rclpy's own deserialisation."""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from scene_llm_ros.data.depth import depth_from_uint16
from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.nodes.raw_image import parse_image


def _image(encoding: str, frame_id: str, width: int, height: int, pad: int, sec: int,
           bigendian: int = 0) -> Image:
    itemsize, channels = {"rgb8": (1, 3), "bgra8": (1, 4), "mono8": (1, 1),
                          "16UC1": (2, 1), "32FC1": (4, 1)}[encoding]
    step = width * itemsize * channels + pad
    rng = np.random.default_rng(width * 31 + pad)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=bigendian,
                step=step, data=rng.integers(0, 256, step * height, dtype=np.uint8).tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, 999_999_999
    msg.header.frame_id = frame_id
    return msg


# Frame ids of every length modulo 4 and odd sizes move every later field across alignments.
@pytest.mark.parametrize("encoding,frame_id,width,height,pad", [
    ("rgb8", "", 5, 3, 0), ("rgb8", "c", 7, 2, 3), ("bgra8", "ca", 4, 4, 1),
    ("mono8", "cam", 3, 5, 2), ("16UC1", "camera_optical", 9, 3, 2),
    ("32FC1", "depth_optical", 6, 2, 0), ("16UC1", "abcd", 1, 1, 0)])
def test_fields_and_pixels_match_rclpy(encoding, frame_id, width, height, pad):
    msg = _image(encoding, frame_id, width, height, pad, sec=-3)
    serialized = serialize_message(msg)
    raw, typed = parse_image(serialized), deserialize_message(serialized, Image)
    assert (raw.header.stamp.sec, raw.header.stamp.nanosec) == (-3, 999_999_999)
    assert raw.header.frame_id == typed.header.frame_id
    assert (raw.height, raw.width, raw.encoding, raw.is_bigendian, raw.step) == (
        typed.height, typed.width, typed.encoding, typed.is_bigendian, typed.step)
    assert bytes(raw.data) == bytes(typed.data)
    decode = m.image_to_depth if encoding in ("16UC1", "32FC1") else m.image_to_color
    np.testing.assert_array_equal(decode(raw), decode(typed))


def test_big_endian_pixels_flag_is_kept():
    msg = _image("16UC1", "cam", 4, 2, 0, sec=1, bigendian=1)
    raw = parse_image(serialize_message(msg))
    assert raw.is_bigendian == 1
    np.testing.assert_array_equal(m.image_to_depth(raw), m.image_to_depth(msg))


@pytest.mark.parametrize("bigendian,pad", [(0, 0), (0, 2), (1, 0)])
def test_millimetres_read_in_place_are_the_metres_open3d_can_take(bigendian, pad):
    """keep_millimetres gives the same depth as the float decode, in a native-order dtype
    (Open3D refuses an explicit "<H" format), read in place when nothing forces a copy."""
    import open3d.core as o3c

    raw = parse_image(serialize_message(_image("16UC1", "cam", 6, 3, pad, sec=1,
                                                bigendian=bigendian)))
    millimetres = m.image_to_depth(raw, keep_millimetres=True)
    assert millimetres.dtype == np.uint16 and millimetres.dtype.byteorder in "=|"
    np.testing.assert_array_equal(depth_from_uint16(millimetres), m.image_to_depth(raw))
    assert o3c.Tensor.from_numpy(millimetres).shape == o3c.SizeVector([3, 6])
    assert np.shares_memory(millimetres, np.asarray(raw.data)) == (not bigendian and not pad)
    color = parse_image(serialize_message(_image("rgb8", "cam", 5, 3, 0, sec=1)))
    assert np.shares_memory(m.image_to_color(color, copy=False), np.asarray(color.data))
    assert not np.shares_memory(m.image_to_color(color), np.asarray(color.data))


def test_truncated_or_foreign_bytes_are_refused():
    serialized = serialize_message(_image("rgb8", "cam", 4, 4, 0, sec=1))
    with pytest.raises(ValueError, match="truncated"):
        parse_image(serialized[:-5])
    with pytest.raises(ValueError, match="CDR"):
        parse_image(b"\x07\x01\x00\x00" + serialized[4:])
