"""Topic names, frame names and QoS of the RGB-D bags that :func:`write_bag` produces."""
from __future__ import annotations

from dataclasses import dataclass

from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)


@dataclass(frozen=True)
class BagTopics:
    """Topic of each stream; an empty string leaves that stream out of the bag.

    The depth image is registered to the colour image (same optical frame and intrinsics), as
    on a RealSense ``aligned_depth_to_color`` topic.
    """

    color: str = "/camera/color/image_raw"
    depth: str = "/camera/depth/image_rect_raw"
    camera_info: str = "/camera/color/camera_info"
    pose: str = "/camera/pose"
    tf: str = "/tf"
    tf_static: str = "/tf_static"


@dataclass(frozen=True)
class FrameNames:
    """TF frame names: ``world`` -> ``camera_link`` (per frame) -> ``optical`` (static)."""

    world: str = "map"
    camera_link: str = "camera_link"
    optical: str = "camera_color_optical_frame"


#: How the recorder stores an infinite duration (RMW_DURATION_INFINITE as int32 s + uint32 ns).
_INFINITE = QosTime(2147483647, 4294967295)


def recorded_qos(*, latched: bool) -> Qos:
    """The offered QoS that ``ros2 bag record`` stores for a discovered publisher.

    History and depth of a remote publisher are not discoverable, so the recorder writes
    ``unknown`` / 0 and we do the same; durations are the defaults (infinite).
    ``ros2 bag play`` offers transient-local durability only when every recorded publisher
    did, so ``latched=True`` is what makes a played ``/tf_static`` reach subscribers that join
    late, as a live static broadcaster would.

    :param latched: transient-local durability (``/tf_static``) instead of volatile.
    """
    return Qos(history=QosHistory.UNKNOWN, depth=0, reliability=QosReliability.RELIABLE,
               durability=QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
               deadline=_INFINITE, lifespan=_INFINITE, liveliness=QosLiveliness.AUTOMATIC,
               liveliness_lease_duration=_INFINITE, avoid_ros_namespace_conventions=False)
