"""rosbag2 I/O of posed RGB-D streams: write scenes to bags, read them back (no rclpy)."""
from scene_llm_ros.data.rosbag.bagfile import (
    BagInfo,
    BagMessage,
    TopicInfo,
    inspect_bag,
    iter_messages,
)
from scene_llm_ros.data.rosbag.layout import BagTopics, FrameNames
from scene_llm_ros.data.rosbag.reader import RGBDBagReader
from scene_llm_ros.data.rosbag.writer import T_LINK_OPTICAL, write_bag
from scene_llm_ros.geometry.tf_buffer import TFBuffer, TransformLookupError, TransformTrack

__all__ = [
    "BagInfo",
    "BagMessage",
    "BagTopics",
    "FrameNames",
    "RGBDBagReader",
    "T_LINK_OPTICAL",
    "TFBuffer",
    "TopicInfo",
    "TransformLookupError",
    "TransformTrack",
    "inspect_bag",
    "iter_messages",
    "write_bag",
]
