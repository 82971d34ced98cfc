"""Conversions between numpy RGB-D data and ROS 2 messages of the rosbags typestore."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from rosbags.typesys import Stores, get_typestore

from scene_llm_ros.data.depth import depth_from_uint16, depth_to_uint16
from scene_llm_ros.data.transforms import make_transform, matrix_to_quaternion
from scene_llm_ros.data.types import CameraIntrinsics

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
ODOMETRY = "nav_msgs/msg/Odometry"

#: Encodings accepted as colour, and as depth (16UC1 in millimetres, 32FC1 in metres).
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
DEPTH_ENCODINGS = ("16UC1", "32FC1")

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


@lru_cache(maxsize=1)
def typestore() -> Any:
    """The rosbags typestore of ROS 2 Jazzy (message classes and CDR (de)serialisers)."""
    return get_typestore(Stores.ROS2_JAZZY)


def _msg(msgtype: str, **fields: Any) -> Any:
    return typestore().types[msgtype](**fields)


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time``."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def header(stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/Header`` at ``stamp_ns`` (split into sec and nanosec like rclpy does)."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return _msg("std_msgs/msg/Header",
                stamp=_msg("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec),
                frame_id=frame_id)


def color_to_image(color: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Any:
    """``sensor_msgs/Image`` of an RGB image.

    :param color: uint8 (H, W, 3) RGB.
    :param encoding: one of :data:`COLOR_ENCODINGS`; mono8 is the BT.601 luma (lossy).
    :raises ValueError: on an unknown encoding.
    """
    if encoding == "rgb8":
        pixels = color
    elif encoding == "bgr8":
        pixels = color[..., ::-1]
    elif encoding == "rgba8":
        pixels = cv2.cvtColor(color, cv2.COLOR_RGB2RGBA)
    elif encoding == "bgra8":
        pixels = cv2.cvtColor(color, cv2.COLOR_RGB2BGRA)
    elif encoding == "mono8":
        pixels = cv2.cvtColor(color, cv2.COLOR_RGB2GRAY)
    else:
        raise ValueError(f"colour encoding must be one of {COLOR_ENCODINGS}, got {encoding!r}")
    return _image(np.ascontiguousarray(pixels), encoding, stamp_ns, frame_id)


def depth_to_image(depth: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Any:
    """``sensor_msgs/Image`` of a depth map.

    :param depth: float32 (H, W) metres, NaN = invalid.
    :param encoding: ``16UC1`` (millimetres, rounded; 0 = invalid, also for depth beyond
        65.535 m, which does not fit) or ``32FC1`` (metres, NaN = invalid, bit-exact).
    :raises ValueError: on an unknown encoding.
    """
    if encoding == "16UC1":
        pixels = depth_to_uint16(depth)
    elif encoding == "32FC1":
        pixels = np.ascontiguousarray(depth, dtype=np.float32)
    else:
        raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got {encoding!r}")
    return _image(pixels, encoding, stamp_ns, frame_id)


def _image(pixels: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Any:
    height, width = pixels.shape[:2]
    step = pixels.strides[0]
    return _msg(IMAGE, header=header(stamp_ns, frame_id), height=height, width=width,
                encoding=encoding, is_bigendian=int(not np.little_endian), step=step,
                data=pixels.reshape(-1).view(np.uint8))


def _pixels(msg: Any, dtype: np.dtype, channels: int) -> np.ndarray:
    """View the image data as (H, W[, C]), honouring row padding and byte order."""
    dtype = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    row_items = msg.width * channels
    needed = msg.step * (msg.height - 1) + row_items * dtype.itemsize if msg.height else 0
    if msg.step < row_items * dtype.itemsize or len(msg.data) < needed:
        raise ValueError(
            f"{msg.encoding} image of {msg.width}x{msg.height} has step {msg.step} and "
            f"{len(msg.data)} bytes, too few for its size")
    data = np.asarray(msg.data, dtype=np.uint8)
    rows = np.lib.stride_tricks.as_strided(
        data, shape=(msg.height, row_items * dtype.itemsize), strides=(msg.step, 1))
    native = dtype.newbyteorder("=")
    # The last view gives the native descriptor even when no swap was needed ("<H" is not
    # a format Open3D accepts).
    pixels = np.ascontiguousarray(rows).view(dtype).astype(native, copy=False).view(native)
    return pixels.reshape(msg.height, msg.width, channels) if channels > 1 else pixels


def image_to_color(msg: Any, *, copy: bool = True) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a colour ``sensor_msgs/Image`` (mono8 is replicated to 3 channels).

    :param copy: False returns a view of the message's data where the encoding allows (rgb8,
        unpadded), for callers done with the pixels before the message goes.
    :raises ValueError: if the encoding is not one of :data:`COLOR_ENCODINGS` or the data is short.
    """
    channels = _CHANNELS.get(msg.encoding)
    if channels is None:
        raise ValueError(f"colour encoding must be one of {COLOR_ENCODINGS}, got {msg.encoding!r}")
    pixels = _pixels(msg, np.uint8, channels)
    if msg.encoding == "rgb8":
        # By default own the pixels rather than pin the whole message buffer.
        return pixels.copy() if copy else pixels
    if msg.encoding == "bgr8":
        return np.ascontiguousarray(pixels[..., ::-1])
    if msg.encoding == "rgba8":
        return np.ascontiguousarray(pixels[..., :3])
    if msg.encoding == "bgra8":
        return np.ascontiguousarray(pixels[..., 2::-1])
    return np.repeat(pixels[..., None], 3, axis=2)


def image_to_depth(msg: Any, *, keep_millimetres: bool = False) -> np.ndarray:
    """float32 (H, W) metres, NaN = invalid (0, negative or non-finite), of a depth image.

    :param keep_millimetres: return a 16UC1 image as its uint16 millimetres (0 = invalid; a
        view of the message's data when unpadded and in native byte order), which
        :class:`~scene_llm_ros.data.types.RGBDFrame` and the fusion take without a conversion.
    :raises ValueError: if the encoding is not one of :data:`DEPTH_ENCODINGS` or the data is short.
    """
    if msg.encoding == "16UC1":
        millimetres = _pixels(msg, np.uint16, 1)
        return millimetres if keep_millimetres else depth_from_uint16(millimetres)
    if msg.encoding == "32FC1":
        depth = _pixels(msg, np.float32, 1).copy()
        depth[~(depth > 0) | ~np.isfinite(depth)] = np.nan
        return depth
    raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got {msg.encoding!r}")


def camera_info(intrinsics: CameraIntrinsics, stamp_ns: int, frame_id: str) -> Any:
    """``sensor_msgs/CameraInfo`` of an undistorted pinhole camera (plumb_bob, D = 0, R = I)."""
    K = intrinsics.matrix
    P = np.zeros((3, 4))
    P[:, :3] = K
    return _msg(CAMERA_INFO, header=header(stamp_ns, frame_id), height=intrinsics.height,
                width=intrinsics.width, distortion_model="plumb_bob", d=np.zeros(5),
                k=K.reshape(-1), r=np.eye(3).reshape(-1), p=P.reshape(-1), binning_x=0,
                binning_y=0,
                roi=_msg("sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0,
                         width=0, do_rectify=False))


def info_to_intrinsics(msg: Any) -> CameraIntrinsics:
    """Pinhole intrinsics of a ``sensor_msgs/CameraInfo`` (from K; distortion is ignored).

    :raises scene_llm_ros.errors.InvalidFrameError: if K is zero or not finite.
    """
    return CameraIntrinsics.from_matrix(np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
                                        msg.width, msg.height)


def transform_stamped(T_parent_child: np.ndarray, stamp_ns: int, parent: str, child: str) -> Any:
    """``geometry_msgs/TransformStamped`` of ``T_parent_child`` (float64 (4, 4))."""
    q = matrix_to_quaternion(T_parent_child)
    t = T_parent_child[:3, 3]
    transform = _msg("geometry_msgs/msg/Transform",
                     translation=_msg("geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]),
                     rotation=_msg("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2],
                                   w=q[3]))
    return _msg("geometry_msgs/msg/TransformStamped", header=header(stamp_ns, parent),
                child_frame_id=child, transform=transform)


def tf_message(transforms: list[Any]) -> Any:
    """``tf2_msgs/TFMessage`` holding ``transforms``."""
    return _msg(TF_MESSAGE, transforms=transforms)


def pose_stamped(T_frame_body: np.ndarray, stamp_ns: int, frame_id: str) -> Any:
    """``geometry_msgs/PoseStamped`` of a body whose pose in ``frame_id`` is ``T_frame_body``."""
    q = matrix_to_quaternion(T_frame_body)
    t = T_frame_body[:3, 3]
    pose = _msg("geometry_msgs/msg/Pose",
                position=_msg("geometry_msgs/msg/Point", x=t[0], y=t[1], z=t[2]),
                orientation=_msg("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2],
                                 w=q[3]))
    return _msg(POSE_STAMPED, header=header(stamp_ns, frame_id), pose=pose)


def transform_to_matrix(transform: Any) -> np.ndarray:
    """float64 (4, 4) of a ``geometry_msgs/Transform``."""
    r, t = transform.rotation, transform.translation
    return make_transform(np.array([r.x, r.y, r.z, r.w]), np.array([t.x, t.y, t.z]))


def pose_to_matrix(pose: Any) -> np.ndarray:
    """float64 (4, 4) of a ``geometry_msgs/Pose``."""
    o, p = pose.orientation, pose.position
    return make_transform(np.array([o.x, o.y, o.z, o.w]), np.array([p.x, p.y, p.z]))
