"""Read synchronised, posed RGB-D frames back out of a rosbag2 bag."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.data.rosbag.bagfile import BagInfo, inspect_bag, iter_messages
from scene_llm_ros.data.stamps import nearest_within
from scene_llm_ros.data.types import CameraIntrinsics, RGBDFrame
from scene_llm_ros.errors import DataFormatError, InvalidFrameError
from scene_llm_ros.geometry.tf_buffer import (
    DEFAULT_TOLERANCE_NS,
    TFBuffer,
    TransformLookupError,
    TransformTrack,
)

_LOG = logging.getLogger(__name__)

POSE_SOURCES = ("tf", "topic")
_POSE_TYPES = (m.POSE_STAMPED, m.ODOMETRY)


@dataclass(frozen=True)
class _ImageHeader:
    stamp_ns: int
    frame_id: str
    width: int
    height: int
    encoding: str


@dataclass(frozen=True)
class _CameraInfo:
    stamp_ns: int
    intrinsics: CameraIntrinsics
    frame_id: str


@dataclass(frozen=True)
class _PoseTopic:
    track: TransformTrack
    world: str
    body: str  # "" when the message does not say (PoseStamped): taken as the image frame


@dataclass(frozen=True)
class _Planned:
    """One colour image that has a depth partner, intrinsics and a pose."""

    depth_index: int
    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray


class RGBDBagReader:
    """Iterate a bag's colour + depth images as posed :class:`RGBDFrame` objects.

    Opening reads the bag once for everything except image pixels (headers, camera infos, TF,
    poses); iterating reads it again and decodes the images. Each colour image is paired with
    the depth image and the camera info nearest in header stamp within ``slop_ns``, and posed
    at its own stamp. Frames that have no depth partner or intrinsics are counted in
    ``stats["unmatched"]``, those without a pose in ``stats["no_pose"]``, and both are skipped.

    The depth image must be registered to the colour image (same optical frame, as on a
    RealSense ``aligned_depth_to_color`` topic). When only their sizes differ, depth is resized
    to the colour size by nearest neighbour (no depth is invented), and the camera info is
    scaled to the colour size if it was given for another resolution of the same camera.

    Colour comes out as uint8 RGB (mono8 replicated to 3 channels), depth as float32 metres with
    NaN where the bag has 0 or a non-finite value.

    :ivar resolved_topics: ``color``, ``depth``, ``camera_info`` and ``pose`` (None with TF).
    :ivar pose_source: ``tf`` or ``topic``, as resolved.
    :ivar stats: ``frames_in_bag`` (colour images), ``yielded``, ``no_pose``, ``unmatched``.
    """

    def __init__(self, path: str | Path, *, color_topic: str | None = None,
                 depth_topic: str | None = None, info_topic: str | None = None,
                 pose_source: str | None = None, tf_parent: str = "map",
                 tf_child: str | None = None, pose_topic: str | None = None,
                 slop_ns: int = 20_000_000, tf_tolerance_ns: int = DEFAULT_TOLERANCE_NS,
                 allow_unregistered_depth: bool = False) -> None:
        """Index the bag and choose its topics.

        :param path: bag directory or bare ``.mcap`` / ``.db3`` file.
        :param color_topic: colour Image topic; default: the only Image topic whose first
            message has a colour encoding (rgb8, bgr8, rgba8, bgra8, mono8).
        :param depth_topic: depth Image topic; default: the only one encoded 16UC1 or 32FC1.
        :param info_topic: CameraInfo topic; default: the only one, else the one in the colour
            topic's namespace.
        :param pose_source: ``tf`` (chain ``tf_parent`` -> image frame through /tf and
            /tf_static), ``topic`` (PoseStamped or Odometry), or None: TF if it connects the
            frames, else the only pose topic.
        :param tf_parent: world frame of the TF lookups.
        :param tf_child: frame whose pose is wanted (default: the colour image's frame_id).
        :param pose_topic: PoseStamped / Odometry topic. A PoseStamped is taken as the pose of
            the image frame; an Odometry child frame is chained to the image frame through TF.
        :param slop_ns: largest stamp difference between paired colour, depth and info.
        :param tf_tolerance_ns: how far a pose or TF edge may be read outside its samples.
        :param allow_unregistered_depth: accept depth in another frame than colour (its pixels
            are then used as if registered).
        :raises ValueError: on an unknown ``pose_source``.
        :raises DataFormatError: if the bag is unreadable, has no (or ambiguous) RGB-D topics,
            no camera info, no pose source, or depth not registered to colour.
        """
        if pose_source is not None and pose_source not in POSE_SOURCES:
            raise ValueError(f"pose_source must be one of {POSE_SOURCES} or None, "
                             f"got {pose_source!r}")
        self.path = Path(path)
        self.slop_ns = int(slop_ns)
        self.tf_parent = tf_parent
        self.tf_child = tf_child
        self.info: BagInfo = inspect_bag(self.path)
        self.stats = {"frames_in_bag": 0, "yielded": 0, "no_pose": 0, "unmatched": 0}

        self._index(tf_tolerance_ns)
        color = self._pick_image(color_topic, m.COLOR_ENCODINGS, "colour", "color_topic")
        depth = self._pick_image(depth_topic, m.DEPTH_ENCODINGS, "depth", "depth_topic")
        info = self._pick_info(info_topic, color)
        self._check_registered(color, depth, allow_unregistered_depth)
        self.pose_source, pose = self._pick_pose_source(pose_source, pose_topic, color)
        self.resolved_topics = {"color": color, "depth": depth, "camera_info": info,
                                "pose": pose}
        self._plan = self._make_plan()
        _LOG.info("%s: %s, %d of %d frames usable", self.path, self.resolved_topics,
                  len(self._plan), self.stats["frames_in_bag"])

    # -- first pass: everything but the pixels ------------------------------------------------

    def _index(self, tf_tolerance_ns: int) -> None:
        wanted = {m.IMAGE, m.CAMERA_INFO, m.TF_MESSAGE, *_POSE_TYPES}
        topics = [t.name for t in self.info.topics.values() if t.msgtype in wanted]
        self._images: dict[str, list[_ImageHeader]] = {}
        self._infos: dict[str, list[_CameraInfo]] = {}
        self._poses: dict[str, _PoseTopic] = {}
        self._tf = TFBuffer(tolerance_ns=tf_tolerance_ns)
        self._tf_tolerance_ns = tf_tolerance_ns
        for topic, msgtype, _, msg in iter_messages(self.path, topics, deserialize=True):
            if msgtype == m.IMAGE:
                # Deserialising an Image is zero-copy in rosbags, so reading headers is cheap.
                self._images.setdefault(topic, []).append(_ImageHeader(
                    m.stamp_to_ns(msg.header.stamp), msg.header.frame_id, msg.width,
                    msg.height, msg.encoding))
            elif msgtype == m.CAMERA_INFO:
                self._add_info(topic, msg)
            elif msgtype == m.TF_MESSAGE:
                static = self.info.topics[topic].latched or topic.endswith("tf_static")
                for tf in msg.transforms:
                    T = m.transform_to_matrix(tf.transform)
                    if static:
                        self._tf.add_static(tf.header.frame_id, tf.child_frame_id, T)
                    else:
                        self._tf.add_dynamic(tf.header.frame_id, tf.child_frame_id,
                                             m.stamp_to_ns(tf.header.stamp), T)
            else:
                self._add_pose(topic, msgtype, msg, tf_tolerance_ns)

    def _add_info(self, topic: str, msg: Any) -> None:
        try:
            intrinsics = m.info_to_intrinsics(msg)
        except InvalidFrameError as exc:
            # Uncalibrated drivers publish K = 0; such a message cannot be used, the rest can.
            _LOG.debug("%s: skipping camera info on %s: %s", self.path, topic, exc)
            return
        self._infos.setdefault(topic, []).append(
            _CameraInfo(m.stamp_to_ns(msg.header.stamp), intrinsics, msg.header.frame_id))

    def _add_pose(self, topic: str, msgtype: str, msg: Any, tolerance_ns: int) -> None:
        pose = msg.pose.pose if msgtype == m.ODOMETRY else msg.pose
        entry = self._poses.get(topic)
        if entry is None:
            body = msg.child_frame_id.lstrip("/") if msgtype == m.ODOMETRY else ""
            entry = self._poses[topic] = _PoseTopic(
                TransformTrack(f"pose topic {topic}", tolerance_ns=tolerance_ns),
                msg.header.frame_id.lstrip("/"), body)
        entry.track.add(m.stamp_to_ns(msg.header.stamp), m.pose_to_matrix(pose))

    # -- topic selection -----------------------------------------------------------------------

    def _no_rgbd(self) -> DataFormatError:
        return DataFormatError(
            f"{self.path}: no RGB-D topics (need an Image topic encoded "
            f"{'/'.join(m.COLOR_ENCODINGS)} and one encoded {'/'.join(m.DEPTH_ENCODINGS)}); "
            f"topics found: {self.info.describe()}")

    def _pick_image(self, topic: str | None, encodings: tuple[str, ...], what: str,
                    argument: str) -> str:
        if topic is not None:
            if topic not in self._images:
                raise DataFormatError(
                    f"{self.path}: {argument}={topic!r} is not an Image topic with messages; "
                    f"topics found: {self.info.describe()}")
            encoding = self._images[topic][0].encoding
            if encoding not in encodings:
                raise DataFormatError(f"{self.path}: {topic} is encoded {encoding!r}, not a "
                                      f"{what} encoding ({', '.join(encodings)})")
            return topic
        # Decide by what the topic carries, not by its name.
        candidates = [t for t, headers in self._images.items() if headers[0].encoding in encodings]
        if not candidates:
            raise self._no_rgbd()
        if len(candidates) > 1:
            listed = ", ".join(f"{t} ({self._images[t][0].encoding})" for t in sorted(candidates))
            raise DataFormatError(f"{self.path}: several {what} topics: {listed}; "
                                  f"choose one with {argument}")
        return candidates[0]

    def _pick_info(self, topic: str | None, color: str) -> str:
        if topic is not None:
            if topic not in self._infos:
                raise DataFormatError(
                    f"{self.path}: info_topic={topic!r} is not a CameraInfo topic with a "
                    f"usable K; topics found: {self.info.describe()}")
            return topic
        candidates = sorted(self._infos)
        if len(candidates) == 1:
            return candidates[0]
        namespace = color.rsplit("/", 1)[0]
        same_namespace = [t for t in candidates if t.rsplit("/", 1)[0] == namespace]
        if len(same_namespace) == 1:
            return same_namespace[0]
        if not candidates:
            raise DataFormatError(f"{self.path}: no CameraInfo topic with a usable K for "
                                  f"{color}; topics found: {self.info.describe()}")
        raise DataFormatError(f"{self.path}: several CameraInfo topics: "
                              f"{', '.join(candidates)}; choose one with info_topic")

    def _check_registered(self, color: str, depth: str, allowed: bool) -> None:
        color_frame = self._images[color][0].frame_id
        depth_frame = self._images[depth][0].frame_id
        if color_frame != depth_frame and not allowed:
            raise DataFormatError(
                f"{self.path}: depth {depth} is in frame {depth_frame!r} but colour {color} in "
                f"{color_frame!r}; depth must be registered to colour (e.g. a RealSense "
                "aligned_depth_to_color topic), or pass allow_unregistered_depth=True")

    def _pick_pose_source(self, source: str | None, topic: str | None,
                          color: str) -> tuple[str, str | None]:
        child = self.tf_child or self._images[color][0].frame_id
        if topic is not None and topic not in self._poses:
            raise DataFormatError(
                f"{self.path}: pose_topic={topic!r} is not a PoseStamped/Odometry topic with "
                f"messages; topics found: {self.info.describe()}")
        if source == "tf" or (source is None and topic is None and
                              self._tf.can_transform(self.tf_parent, child)):
            if not self._tf.can_transform(self.tf_parent, child):
                known = ", ".join(sorted(self._tf.frames)) or "none"
                raise DataFormatError(f"{self.path}: no TF chain from {self.tf_parent!r} to "
                                      f"{child!r} (TF frames: {known})")
            return "tf", None
        if topic is None:
            candidates = sorted(self._poses)
            if len(candidates) != 1:
                found = ", ".join(candidates) if candidates else "none"
                raise DataFormatError(
                    f"{self.path}: no pose source: no TF chain from {self.tf_parent!r} to "
                    f"{child!r} and {len(candidates)} pose topics ({found}); pass "
                    "pose_source, tf_parent/tf_child or pose_topic")
            topic = candidates[0]
        return "topic", topic

    # -- pairing and posing --------------------------------------------------------------------

    def _intrinsics(self, stamp_ns: int, width: int, height: int) -> CameraIntrinsics | None:
        infos = self._info_list
        j = nearest_within(self._info_stamps, stamp_ns, self.slop_ns)
        if j is None:
            if not self._info_constant:
                return None
            # A camera info published at another rate is still right if it never changes.
            j = 0
        intrinsics = infos[j].intrinsics
        if (intrinsics.width, intrinsics.height) != (width, height):
            intrinsics = intrinsics.resized(width, height)
        return intrinsics

    def _pose(self, stamp_ns: int, frame_id: str) -> np.ndarray:
        if self.pose_source == "tf":
            return self._tf.lookup(self.tf_parent, self.tf_child or frame_id, stamp_ns)
        entry = self._poses[self.resolved_topics["pose"]]
        T_world_body = entry.track.at(stamp_ns)
        if entry.body and entry.body != frame_id:
            return T_world_body @ self._tf.lookup(entry.body, frame_id, stamp_ns)
        return T_world_body

    def _make_plan(self) -> dict[int, _Planned]:
        colors = self._images[self.resolved_topics["color"]]
        depths = self._images[self.resolved_topics["depth"]]
        self._info_list = sorted(self._infos[self.resolved_topics["camera_info"]],
                                 key=lambda i: i.stamp_ns)
        self._info_stamps = [i.stamp_ns for i in self._info_list]
        self._info_constant = len({i.intrinsics for i in self._info_list}) == 1
        depth_order = sorted(range(len(depths)), key=lambda i: depths[i].stamp_ns)
        depth_stamps = [depths[i].stamp_ns for i in depth_order]

        # Pair each depth image with at most one colour image: the nearest in stamp.
        best: dict[int, tuple[int, int]] = {}  # depth index -> (|dt|, colour index)
        for ci, header in enumerate(colors):
            j = nearest_within(depth_stamps, header.stamp_ns, self.slop_ns)
            if j is None:
                continue
            di, dt = depth_order[j], abs(depth_stamps[j] - header.stamp_ns)
            if di not in best or dt < best[di][0]:
                best[di] = (dt, ci)
        partner = {ci: di for di, (_, ci) in best.items()}

        plan: dict[int, _Planned] = {}
        unmatched = no_pose = 0
        for ci, header in enumerate(colors):
            intrinsics = self._intrinsics(header.stamp_ns, header.width, header.height)
            if ci not in partner or intrinsics is None:
                unmatched += 1
                continue
            try:
                T_world_cam = self._pose(header.stamp_ns, header.frame_id)
            except TransformLookupError as exc:
                no_pose += 1
                _LOG.debug("%s: no pose at %d ns: %s", self.path, header.stamp_ns, exc)
                continue
            plan[ci] = _Planned(partner[ci], intrinsics, T_world_cam)
        self.stats.update(frames_in_bag=len(colors), unmatched=unmatched, no_pose=no_pose)
        return plan

    # -- second pass: pixels -------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of frames an iteration yields."""
        return len(self._plan)

    def __iter__(self) -> Iterator[RGBDFrame]:
        """Yield the usable frames in colour log order, decoding only those.

        :raises DataFormatError: if an image cannot be decoded or the bag is damaged.
        """
        color_topic, depth_topic = self.resolved_topics["color"], self.resolved_topics["depth"]
        wanted_depth = {p.depth_index: ci for ci, p in self._plan.items()}
        pending_color: dict[int, bytes] = {}
        pending_depth: dict[int, bytes] = {}
        counts = {color_topic: 0, depth_topic: 0}
        self.stats["yielded"] = 0
        for topic, _, _, raw in iter_messages(self.path, [color_topic, depth_topic]):
            index = counts[topic]
            counts[topic] += 1
            # Keep only messages of planned frames, until their partner arrives.
            if topic == color_topic:
                if index not in self._plan:
                    continue
                ci, di = index, self._plan[index].depth_index
                if di not in pending_depth:
                    pending_color[ci] = raw
                    continue
                color_raw, depth_raw = raw, pending_depth.pop(di)
            else:
                if index not in wanted_depth:
                    continue
                ci, di = wanted_depth[index], index
                if ci not in pending_color:
                    pending_depth[di] = raw
                    continue
                color_raw, depth_raw = pending_color.pop(ci), raw
            self.stats["yielded"] += 1
            yield self._decode(self._plan[ci], color_raw, depth_raw)

    def _decode(self, planned: _Planned, color_raw: bytes, depth_raw: bytes) -> RGBDFrame:
        store = m.typestore()
        color_msg = store.deserialize_cdr(color_raw, m.IMAGE)
        depth_msg = store.deserialize_cdr(depth_raw, m.IMAGE)
        stamp_ns = m.stamp_to_ns(color_msg.header.stamp)
        try:
            color = m.image_to_color(color_msg)
            depth = m.image_to_depth(depth_msg)
        except ValueError as exc:
            raise DataFormatError(f"{self.path}: cannot decode the images at {stamp_ns} ns: "
                                  f"{exc}") from exc
        if depth.shape != color.shape[:2]:
            # Nearest neighbour: interpolating depth would invent surfaces between edges.
            depth = cv2.resize(depth, (color.shape[1], color.shape[0]),
                               interpolation=cv2.INTER_NEAREST)
        return RGBDFrame(color=color, depth=depth, intrinsics=planned.intrinsics,
                         T_world_cam=planned.T_world_cam.copy(), stamp_ns=stamp_ns,
                         frame_id=color_msg.header.frame_id,
                         extras={"depth_stamp_ns": m.stamp_to_ns(depth_msg.header.stamp)})
