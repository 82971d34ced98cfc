"""What a replay publishes: the bag's usable RGB-D frames with their poses (no ROS).

:func:`plan_replay` resolves the topics and computes every colour image's pose offline with
:class:`~scene_llm_ros.data.rosbag.RGBDBagReader` (TF chain ``tf_parent`` -> image frame, or a
PoseStamped / Odometry topic, interpolated at the image stamp). :func:`iter_replay_frames`
then yields the bag's own colour, depth and camera-info messages (undecoded pixels) frame by
frame in log order, each with its pose, for a ROS publisher to send unchanged.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scene_llm_ros.data.rosbag import RGBDBagReader, iter_messages
from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.evaluation.errors import ReplayError

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedFrame:
    """A colour image the reader could pair and pose.

    :ivar T_world_cam: float64 (4, 4) optical frame -> scene frame at the colour stamp.
    """

    color_stamp_ns: int
    depth_stamp_ns: int
    T_world_cam: np.ndarray


@dataclass
class ReplayPlan:
    """The frames of a bag to replay.

    :ivar topics: resolved ``color``, ``depth``, ``camera_info`` and ``pose`` (None with TF).
    :ivar pose_source: ``tf`` or ``topic``.
    :ivar scene_frame: frame the poses are in (``tf_parent``, or the pose topic's frame).
    :ivar frames: colour stamp -> planned frame, in stamp order.
    :ivar frames_in_bag: colour images in the bag.
    :ivar skipped: colour images the reader could not use: ``unmatched`` (no depth partner or
        camera info) and ``no_pose``.
    """

    bag: Path
    storage: str
    topics: dict[str, str | None]
    pose_source: str
    scene_frame: str
    frames: dict[int, PlannedFrame]
    frames_in_bag: int
    skipped: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass(frozen=True)
class ReplayFrame:
    """One frame as recorded: rosbags messages with the bag's own bytes, and its pose.

    :ivar infos: CameraInfo messages logged since the previous frame (at least one before the
        first frame is published, when the bag has one by then).
    :ivar log_time_ns: bag log time of the later of the colour and depth messages.
    """

    color: Any
    depth: Any
    infos: list[Any]
    stamp_ns: int
    log_time_ns: int
    T_world_cam: np.ndarray


def plan_replay(bag: str | Path, *, color_topic: str | None = None,
                depth_topic: str | None = None, info_topic: str | None = None,
                pose_topic: str | None = None, tf_parent: str = "map",
                tf_child: str | None = None) -> ReplayPlan:
    """Resolve the topics of ``bag`` and pose every usable colour image.

    :param pose_topic: PoseStamped / Odometry topic; None uses TF when it connects
        ``tf_parent`` to the image frame, else the only pose topic.
    :raises DataFormatError: when the bag is unreadable or has no (or ambiguous) RGB-D
        topics, no camera info or no pose source (the reader's messages list the topics).
    :raises ReplayError: when no colour image could be paired and posed.
    """
    reader = RGBDBagReader(bag, color_topic=color_topic, depth_topic=depth_topic,
                           info_topic=info_topic, pose_topic=pose_topic,
                           pose_source="topic" if pose_topic else None, tf_parent=tf_parent,
                           tf_child=tf_child)
    frames: dict[int, PlannedFrame] = {}
    # The reader only exposes poses through its frames, so this pass decodes the images once;
    # the replay itself publishes the undecoded messages.
    for frame in reader:
        frames[frame.stamp_ns] = PlannedFrame(frame.stamp_ns, frame.extras["depth_stamp_ns"],
                                              frame.T_world_cam)
    stats = reader.stats
    if not frames:
        raise ReplayError(
            f"{bag}: none of its {stats['frames_in_bag']} colour images can be replayed: "
            f"{stats['no_pose']} have no pose ({reader.pose_source} "
            f"{reader.resolved_topics['pose'] or tf_parent + ' -> image frame'}) and "
            f"{stats['unmatched']} no depth partner or camera info")
    scene_frame = tf_parent
    if reader.pose_source == "topic":
        scene_frame = _pose_topic_frame(reader.path, reader.resolved_topics["pose"]) or tf_parent
    _LOG.info("%s: replaying %d of %d frames on %s, poses from %s", bag, len(frames),
              stats["frames_in_bag"], reader.resolved_topics, reader.pose_source)
    return ReplayPlan(bag=Path(bag), storage=reader.info.storage,
                      topics=dict(reader.resolved_topics), pose_source=reader.pose_source,
                      scene_frame=scene_frame, frames=dict(sorted(frames.items())),
                      frames_in_bag=stats["frames_in_bag"],
                      skipped={"unmatched": stats["unmatched"], "no_pose": stats["no_pose"]},
                      duration_s=reader.info.duration_s)


def _pose_topic_frame(bag: Path, topic: str) -> str | None:
    for _, _, _, msg in iter_messages(bag, [topic], deserialize=True):
        return msg.header.frame_id.lstrip("/") or None
    return None


def iter_replay_frames(plan: ReplayPlan) -> Iterator[ReplayFrame]:
    """The planned frames in bag log order, with the bag's messages.

    Colour and depth messages of one frame may be logged apart; each is held until its
    partner arrives, so memory stays at a few images. When the bag logs its first camera info
    after the first frame, that info goes out with the first frame (the reader used it for
    the plan too: a constant calibration applies at any stamp).

    :raises DataFormatError: when the bag is damaged midway.
    """
    color_topic, depth_topic = plan.topics["color"], plan.topics["depth"]
    info_topic = plan.topics["camera_info"]
    wanted_depth = {f.depth_stamp_ns: f.color_stamp_ns for f in plan.frames.values()}
    held_color: dict[int, tuple[Any, int]] = {}
    held_depth: dict[int, tuple[Any, int]] = {}
    infos: list[Any] = []
    info_sent = False
    topics = [color_topic, depth_topic] + ([info_topic] if info_topic not in
                                           (color_topic, depth_topic) else [])
    for topic, _, log_ns, msg in iter_messages(plan.bag, topics, deserialize=True):
        if topic == info_topic:
            infos.append(msg)
            continue
        stamp_ns = m.stamp_to_ns(msg.header.stamp)
        if topic == color_topic:
            planned = plan.frames.get(stamp_ns)
            if planned is None or stamp_ns in held_color:
                continue
            depth = held_depth.pop(planned.depth_stamp_ns, None)
            if depth is None:
                held_color[stamp_ns] = (msg, log_ns)
                continue
            color, depth_msg, log_ns = msg, depth[0], max(log_ns, depth[1])
        else:
            color_stamp = wanted_depth.get(stamp_ns)
            if color_stamp is None or stamp_ns in held_depth:
                continue
            held = held_color.pop(color_stamp, None)
            if held is None:
                held_depth[stamp_ns] = (msg, log_ns)
                continue
            color, depth_msg, log_ns = held[0], msg, max(log_ns, held[1])
        planned = plan.frames[m.stamp_to_ns(color.header.stamp)]
        if not info_sent and not infos:
            infos = [_first_message(plan.bag, info_topic)]
        info_sent = True
        yield ReplayFrame(color=color, depth=depth_msg, infos=infos,
                          stamp_ns=planned.color_stamp_ns, log_time_ns=log_ns,
                          T_world_cam=planned.T_world_cam)
        infos = []


def _first_message(bag: Path, topic: str) -> Any:
    messages = iter_messages(bag, [topic], deserialize=True)
    try:
        return next(messages).data
    finally:
        messages.close()  # closes the bag reader the generator holds open


def colour_images_at(bag: str | Path, topic: str, stamps: Collection[int]
                     ) -> dict[int, np.ndarray]:
    """Decoded colour images of ``topic`` at the given header stamps.

    :return: stamp -> uint8 (H, W, 3) RGB; stamps the bag lacks are left out.
    :raises DataFormatError: when the bag cannot be read.
    """
    wanted, found = set(stamps), {}
    if not wanted:
        return found
    for _, _, _, msg in iter_messages(bag, [topic], deserialize=True):
        stamp_ns = m.stamp_to_ns(msg.header.stamp)
        if stamp_ns in wanted and stamp_ns not in found:
            try:
                found[stamp_ns] = m.image_to_color(msg)
            except ValueError as exc:
                _LOG.warning("%s: cannot decode the reference image at %d ns: %s", bag,
                             stamp_ns, exc)
            if len(found) == len(wanted):
                break
    return found
