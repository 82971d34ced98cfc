"""numpy <-> rclpy message conversions used by the nodes (the only place they live)."""
from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from scene_llm_ros.data.rosbag import messages as bag_messages
from scene_llm_ros.data.transforms import matrix_to_quaternion
from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.fusion.snapshot import Keyframe, SceneSnapshot
from scene_llm_ros.msg import ScenePatches

# The reading side is duck-typed and shared with the bag tools.
image_to_color = bag_messages.image_to_color
image_to_depth = bag_messages.image_to_depth
info_to_intrinsics = bag_messages.info_to_intrinsics
stamp_to_ns = bag_messages.stamp_to_ns
pose_to_matrix = bag_messages.pose_to_matrix
transform_to_matrix = bag_messages.transform_to_matrix

# x, y, z and PCL's packed rgb (0x00RRGGBB read as float32), which RViz colours by.
_CLOUD_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
_CLOUD_FIELDS = [PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1)
                 for name, offset in (("x", 0), ("y", 4), ("z", 8), ("rgb", 12))]


def _bytes(values: np.ndarray) -> array.array:
    """A uint8[] field value; rclpy copies an array.array without per-element checks."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(values).tobytes())
    return out


def time_msg(stamp_ns: int) -> Time:
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=time_msg(stamp_ns), frame_id=frame_id)


def image_msg(pixels: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Image:
    """An Image of uint8 (H, W, C) or (H, W) pixels, or float32 (H, W) for 32FC1."""
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return Image(header=header(stamp_ns, frame_id), height=height, width=width,
                 encoding=encoding, is_bigendian=int(not np.little_endian),
                 step=pixels.strides[0], data=_bytes(pixels))


def camera_info_msg(intrinsics: CameraIntrinsics, stamp_ns: int, frame_id: str) -> CameraInfo:
    """An undistorted pinhole CameraInfo (plumb_bob, D = 0)."""
    K = intrinsics.matrix
    P = np.zeros((3, 4))
    P[:, :3] = K
    return CameraInfo(header=header(stamp_ns, frame_id), width=intrinsics.width,
                      height=intrinsics.height, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=K.reshape(-1).tolist(), r=np.eye(3).reshape(-1).tolist(),
                      p=P.reshape(-1).tolist())


def pose_msg(T: np.ndarray) -> Pose:
    q = matrix_to_quaternion(T)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in T[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(v) for v in q)
    return pose


def point_msg(xyz: np.ndarray) -> Point:
    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def point_cloud_msg(points: np.ndarray, colors: np.ndarray, stamp_ns: int,
                    frame_id: str) -> PointCloud2:
    """An unorganised XYZRGB PointCloud2 of float32 (N, 3) points and uint8 (N, 3) colours."""
    cloud = np.empty(len(points), _CLOUD_DTYPE)
    cloud["x"], cloud["y"], cloud["z"] = (points[:, i] for i in range(3))
    rgb = np.asarray(colors, np.uint32)
    cloud["rgb"] = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    return PointCloud2(header=header(stamp_ns, frame_id), height=1, width=len(points),
                       fields=_CLOUD_FIELDS, is_bigendian=False,
                       point_step=_CLOUD_DTYPE.itemsize,
                       row_step=_CLOUD_DTYPE.itemsize * len(points), data=_bytes(cloud),
                       is_dense=True)


def point_cloud_arrays(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray]:
    """(float32 (N, 3), uint8 (N, 3)) of a cloud written by :func:`point_cloud_msg`.

    :raises ValueError: when the cloud does not have that layout.
    """
    names = [f.name for f in msg.fields]
    if names != ["x", "y", "z", "rgb"] or msg.point_step != _CLOUD_DTYPE.itemsize:
        raise ValueError(f"expected an x, y, z, rgb cloud of 16-byte points, got fields {names} "
                         f"and point_step {msg.point_step}")
    cloud = np.frombuffer(bytes(msg.data), _CLOUD_DTYPE, count=msg.width * msg.height)
    points = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1)
    rgb = cloud["rgb"]
    colors = np.stack([(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255], axis=1).astype(np.uint8)
    return points, colors


def scene_patches_msg(snapshot: SceneSnapshot, encoder: str) -> ScenePatches:
    """The transport message of a snapshot (the inference node rebuilds it exactly)."""
    msg = ScenePatches()
    msg.header = header(snapshot.stamp_ns, snapshot.scene_frame)
    msg.scene_version = snapshot.scene_version
    msg.encoder = encoder
    msg.feature_dim = snapshot.features.shape[1]
    msg.total_tokens = snapshot.total_tokens
    msg.positions = array.array("f", np.ascontiguousarray(snapshot.positions, "<f4").tobytes())
    msg.features = _bytes(np.ascontiguousarray(snapshot.features, "<f2"))
    msg.counts = array.array("I", np.ascontiguousarray(snapshot.counts, "<u4").tobytes())
    msg.bounds_min = point_msg(snapshot.bounds_min)
    msg.bounds_max = point_msg(snapshot.bounds_max)
    msg.surface = point_cloud_msg(snapshot.points, snapshot.colors, snapshot.stamp_ns,
                                  snapshot.scene_frame)
    msg.voxel_size = snapshot.voxel_size_m
    if snapshot.point_classes is not None and snapshot.point_object_classes is not None:
        msg.point_classes = array.array(
            "h", np.ascontiguousarray(snapshot.point_classes, "<i2").tobytes())
        msg.point_object_classes = array.array(
            "h", np.ascontiguousarray(snapshot.point_object_classes, "<i2").tobytes())
        msg.class_names = list(snapshot.class_names)
    keyframe = snapshot.keyframe
    msg.has_keyframe = keyframe is not None
    if keyframe is not None:
        msg.keyframe_color = image_msg(keyframe.color, "rgb8", keyframe.stamp_ns,
                                       keyframe.frame_id)
        msg.keyframe_depth = image_msg(keyframe.depth.astype(np.float32), "32FC1",
                                       keyframe.stamp_ns, keyframe.frame_id)
        msg.keyframe_camera_info = camera_info_msg(keyframe.intrinsics, keyframe.stamp_ns,
                                                   keyframe.frame_id)
        msg.keyframe_pose = pose_msg(keyframe.T_world_cam)
    return msg


def snapshot_from_patches(msg: ScenePatches) -> SceneSnapshot:
    """The :class:`SceneSnapshot` a ScenePatches message carries.

    :raises ValueError: when array lengths disagree with each other.
    """
    positions = np.asarray(msg.positions, np.float32)
    count = len(positions) // 3
    features = np.frombuffer(bytes(msg.features), "<f2")
    counts = np.asarray(msg.counts, np.int64)
    if (len(positions) != 3 * count or len(features) != count * msg.feature_dim
            or len(counts) != count):
        raise ValueError(f"ScenePatches arrays disagree: {len(positions)} position values, "
                         f"{len(features)} feature values of dim {msg.feature_dim}, "
                         f"{len(counts)} counts")
    points, colors = point_cloud_arrays(msg.surface)
    point_classes = point_object_classes = None
    if msg.class_names:
        point_classes, point_object_classes = (
            np.asarray(values, np.int16) for values in (msg.point_classes,
                                                        msg.point_object_classes))
        for classes in (point_classes, point_object_classes):
            if len(classes) != len(points) or classes.max(initial=-1) >= len(
                    msg.class_names) or classes.min(initial=-1) < -1:
                raise ValueError(f"ScenePatches needs {len(points)} point classes in [-1, "
                                 f"{len(msg.class_names)}), one per surface point; got "
                                 f"{len(classes)}")
    keyframe = None
    if msg.has_keyframe:
        keyframe = Keyframe(color=image_to_color(msg.keyframe_color),
                            depth=image_to_depth(msg.keyframe_depth),
                            intrinsics=info_to_intrinsics(msg.keyframe_camera_info),
                            T_world_cam=pose_to_matrix(msg.keyframe_pose),
                            stamp_ns=stamp_to_ns(msg.keyframe_color.header.stamp),
                            frame_id=msg.keyframe_color.header.frame_id)
    bounds = [np.array([p.x, p.y, p.z], np.float32) for p in (msg.bounds_min, msg.bounds_max)]
    return SceneSnapshot(positions=positions.reshape(count, 3).copy(),
                         features=features.reshape(count, msg.feature_dim).copy(),
                         counts=counts, total_tokens=msg.total_tokens,
                         scene_version=msg.scene_version, stamp_ns=stamp_to_ns(msg.header.stamp),
                         scene_frame=msg.header.frame_id, keyframe=keyframe,
                         bounds_min=bounds[0], bounds_max=bounds[1], points=points,
                         colors=colors, voxel_size_m=float(msg.voxel_size),
                         point_classes=point_classes, point_object_classes=point_object_classes,
                         class_names=tuple(msg.class_names))

