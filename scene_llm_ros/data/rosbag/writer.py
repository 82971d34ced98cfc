"""Write posed RGB-D frames to a rosbag2 bag (mcap or sqlite3) as a ROS 2 camera would publish."""
from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.data.rosbag.layout import BagTopics, FrameNames, recorded_qos
from scene_llm_ros.data.transforms import R_BODY_OPTICAL, invert_transform, make_transform
from scene_llm_ros.data.types import RGBDFrame
from scene_llm_ros.errors import InvalidFrameError

_LOG = logging.getLogger(__name__)

STORAGES = ("mcap", "sqlite3")
#: rosbag2 metadata version written (that of ROS 2 Jazzy's recorder).
BAG_VERSION = 9
#: First stamp when the frames start at 0 (e.g. ScanNet's index / fps). Not 0, because a zero
#: stamp means "latest available" to a tf2 lookup.
DEFAULT_START_NS = 1_000_000_000

#: camera_link -> optical frame: a pure REP-103 rotation, no offset.
T_LINK_OPTICAL = make_transform(R_BODY_OPTICAL, np.zeros(3))


def write_bag(frames: Iterable[RGBDFrame], out_bag: str | Path, *, storage: str = "mcap",
              fps: float | None = None, start_ns: int | None = None,
              color_encoding: str = "rgb8", depth_encoding: str = "16UC1",
              topics: BagTopics | None = None, frame_names: FrameNames | None = None,
              tf: bool = True, pose_topic: bool = True) -> int:
    """Write ``frames`` to a new rosbag2 directory ``out_bag``.

    Per frame, all stamped with the frame's stamp (header stamp = bag log time): colour and
    depth ``sensor_msgs/Image`` in the optical frame, ``sensor_msgs/CameraInfo``, ``/tf``
    ``world -> camera_link`` and ``geometry_msgs/PoseStamped`` of the optical frame in
    ``world``. Once, at the first stamp: ``/tf_static`` ``camera_link -> optical`` (the REP-103
    optical rotation), recorded with transient-local QoS so ``ros2 bag play`` latches it.
    A frame without a pose is written without its ``/tf`` and pose messages.

    :param frames: posed frames; ``T_world_cam`` is the pose of the optical frame.
    :param out_bag: bag directory to create; it must not exist.
    :param storage: ``mcap`` or ``sqlite3``.
    :param fps: if given, restamp frame ``i`` at ``start_ns + i / fps``; otherwise the frames
        keep the spacing of their own ``stamp_ns``, which must be strictly increasing.
    :param start_ns: stamp of the first frame (default: its own stamp, or 1 s if that is 0,
        because a zero stamp means "latest" to tf2 lookups).
    :param color_encoding: rgb8, bgr8, rgba8, bgra8 or mono8 (lossy).
    :param depth_encoding: 16UC1 (millimetres, 0 = invalid) or 32FC1 (metres, NaN = invalid).
    :param topics: topic names (default :class:`BagTopics`); an empty name leaves that stream
        out.
    :param frame_names: TF frame names (default :class:`FrameNames`).
    :param tf: write ``/tf`` and ``/tf_static``.
    :param pose_topic: write the PoseStamped topic.
    :return: number of frames written.
    :raises ValueError: on a bad storage, encoding or fps.
    :raises FileExistsError: if ``out_bag`` exists.
    :raises InvalidFrameError: on an invalid frame or non-increasing stamps.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    if color_encoding not in m.COLOR_ENCODINGS:
        raise ValueError(f"colour encoding must be one of {m.COLOR_ENCODINGS}, "
                         f"got {color_encoding!r}")
    if depth_encoding not in m.DEPTH_ENCODINGS:
        raise ValueError(f"depth encoding must be one of {m.DEPTH_ENCODINGS}, "
                         f"got {depth_encoding!r}")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if start_ns is not None and start_ns < 0:
        raise ValueError(f"start_ns must not be negative, got {start_ns}")
    topics = topics or BagTopics()
    frame_names = frame_names or FrameNames()
    out_bag = Path(out_bag)
    if out_bag.exists():
        raise FileExistsError(f"{out_bag} exists already; bags are never overwritten")

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(out_bag, version=BAG_VERSION, storage_plugin=plugin)
    try:
        with writer:
            count = _write_frames(writer, frames, fps, start_ns, color_encoding,
                                  depth_encoding, topics, frame_names, tf, pose_topic)
    except BaseException:
        # A bag without metadata.yaml is unreadable; leave nothing rather than a trap.
        shutil.rmtree(out_bag, ignore_errors=True)
        raise
    _LOG.info("wrote %d frames to %s (%s)", count, out_bag, storage)
    return count


def _write_frames(writer: Writer, frames: Iterable[RGBDFrame], fps: float | None,
                  start_ns: int | None, color_encoding: str, depth_encoding: str,
                  topics: BagTopics, names: FrameNames, tf: bool, pose_topic: bool) -> int:
    store = m.typestore()
    connections: dict[str, Any] = {}

    def connect(topic: str, msgtype: str, *, latched: bool = False) -> None:
        if topic:
            connections[topic] = writer.add_connection(
                topic, msgtype, typestore=store,
                offered_qos_profiles=[recorded_qos(latched=latched)])

    connect(topics.color, m.IMAGE)
    connect(topics.depth, m.IMAGE)
    connect(topics.camera_info, m.CAMERA_INFO)
    if tf:
        connect(topics.tf, m.TF_MESSAGE)
        connect(topics.tf_static, m.TF_MESSAGE, latched=True)
    if pose_topic:
        connect(topics.pose, m.POSE_STAMPED)

    def write(topic: str, msg: Any, stamp_ns: int) -> None:
        if topic in connections:
            writer.write(connections[topic], stamp_ns,
                         store.serialize_cdr(msg, msg.__msgtype__))

    T_optical_link = invert_transform(T_LINK_OPTICAL)
    count = no_pose = first_ns = 0
    previous_ns = -1
    for index, frame in enumerate(frames):
        frame.validate()
        if index == 0:
            first_ns = int(frame.stamp_ns)
            if start_ns is None:
                start_ns = first_ns or DEFAULT_START_NS
        if fps is None:
            stamp_ns = start_ns + int(frame.stamp_ns) - first_ns
            if stamp_ns <= previous_ns:
                raise InvalidFrameError(
                    f"frame {index} has stamp {frame.stamp_ns} ns, not after the previous "
                    f"frame's; pass fps (scene-llm bag --fps) to restamp the frames")
        else:
            stamp_ns = start_ns + round(index * 1e9 / fps)
        if index == 0 and tf:
            write(topics.tf_static, m.tf_message([m.transform_stamped(
                T_LINK_OPTICAL, stamp_ns, names.camera_link, names.optical)]), stamp_ns)
        previous_ns = stamp_ns

        if frame.T_world_cam is None:
            no_pose += 1
        else:
            T_world_cam = np.asarray(frame.T_world_cam, dtype=np.float64)
            if tf:
                T_world_link = T_world_cam @ T_optical_link
                write(topics.tf, m.tf_message([m.transform_stamped(
                    T_world_link, stamp_ns, names.world, names.camera_link)]), stamp_ns)
            if pose_topic:
                write(topics.pose, m.pose_stamped(T_world_cam, stamp_ns, names.world), stamp_ns)
        write(topics.camera_info, m.camera_info(frame.intrinsics, stamp_ns, names.optical),
              stamp_ns)
        write(topics.color, m.color_to_image(frame.color, color_encoding, stamp_ns,
                                             names.optical), stamp_ns)
        write(topics.depth, m.depth_to_image(frame.depth_metres(), depth_encoding, stamp_ns,
                                             names.optical), stamp_ns)
        count += 1
    if no_pose:
        _LOG.warning("%d of %d frames had no pose and were written without /tf and pose",
                     no_pose, count)
    return count
