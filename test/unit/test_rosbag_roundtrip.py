"""write_bag -> RGBDBagReader round trips through mcap and sqlite3 bags."""
from __future__ import annotations

import numpy as np
import pytest
from rosbag_testutil import INTRINSICS, START_NS, make_frames

from scene_llm_ros.data.rosbag import (
    T_LINK_OPTICAL,
    BagTopics,
    FrameNames,
    RGBDBagReader,
    inspect_bag,
    iter_messages,
    write_bag,
)
from scene_llm_ros.data.rosbag.messages import typestore
from scene_llm_ros.errors import DataFormatError, InvalidFrameError


def _assert_same_frames(got, expected, *, exact_depth_mm: bool = True):
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        g.validate()
        assert g.stamp_ns == e.stamp_ns
        assert g.frame_id == "camera_color_optical_frame"
        assert g.intrinsics == e.intrinsics
        np.testing.assert_array_equal(g.color, e.color)
        np.testing.assert_array_equal(np.isnan(g.depth), np.isnan(e.depth))
        if exact_depth_mm:
            np.testing.assert_array_equal(np.round(g.depth * 1000), np.round(e.depth * 1000))
        else:
            np.testing.assert_array_equal(g.depth, e.depth)  # NaN == NaN here
        np.testing.assert_allclose(g.T_world_cam, e.T_world_cam, atol=1e-6)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("pose_source", ["tf", "topic"])
def test_round_trip_rgb8_16uc1(tmp_path, storage, pose_source):
    frames = make_frames(6)
    bag = tmp_path / "bag"
    assert write_bag(frames, bag, storage=storage) == 6

    reader = RGBDBagReader(bag, pose_source=pose_source)
    assert reader.resolved_topics == {
        "color": "/camera/color/image_raw", "depth": "/camera/depth/image_rect_raw",
        "camera_info": "/camera/color/camera_info",
        "pose": "/camera/pose" if pose_source == "topic" else None}
    assert len(reader) == 6
    got = list(reader)
    _assert_same_frames(got, frames)
    # 16UC1 stores millimetres, so the metres come back as float32(mm / 1000) exactly.
    assert got[1].depth[5, 5] == np.float32(np.round(frames[1].depth[5, 5] * 1000) / 1000)
    assert reader.stats == {"frames_in_bag": 6, "yielded": 6, "no_pose": 0, "unmatched": 0}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_bgr8_32fc1_is_float_exact(tmp_path, storage):
    frames = make_frames(4, seed=3)
    for f in frames:
        f.depth[2, 2] = 1.2345678  # not a whole millimetre
    bag = tmp_path / "bag"
    write_bag(frames, bag, storage=storage, color_encoding="bgr8", depth_encoding="32FC1")
    first = next(iter_messages(bag, ["/camera/color/image_raw"], deserialize=True)).data
    assert first.encoding == "bgr8"
    np.testing.assert_array_equal(first.data.reshape(first.height, first.width, 3),
                                  frames[0].color[..., ::-1])
    _assert_same_frames(list(RGBDBagReader(bag)), frames, exact_depth_mm=False)


def test_rgba8_bgra8_and_mono8_colour(tmp_path):
    frames = make_frames(2, seed=5)
    for encoding in ("rgba8", "bgra8"):
        write_bag(frames, tmp_path / encoding, color_encoding=encoding)
        got = list(RGBDBagReader(tmp_path / encoding))
        np.testing.assert_array_equal(got[0].color, frames[0].color)
    write_bag(frames, tmp_path / "mono", color_encoding="mono8")
    got = list(RGBDBagReader(tmp_path / "mono"))
    gray = got[0].color
    assert gray.shape == frames[0].color.shape
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    luma = frames[0].color.astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(gray[..., 0] - luma).max() <= 1.0


def test_bag_layout_stamps_frames_and_qos(tmp_path):
    frames = make_frames(3)
    bag = tmp_path / "bag"
    write_bag(frames, bag)
    info = inspect_bag(bag)
    assert info.storage == "mcap"
    assert {t: i.message_count for t, i in info.topics.items()} == {
        "/camera/color/image_raw": 3, "/camera/depth/image_rect_raw": 3,
        "/camera/color/camera_info": 3, "/camera/pose": 3, "/tf": 3, "/tf_static": 1}
    assert info.topics["/tf_static"].latched and not info.topics["/tf"].latched
    assert info.start_ns == START_NS
    assert info.duration_ns == frames[-1].stamp_ns - frames[0].stamp_ns

    for msg in iter_messages(bag, deserialize=True):
        if msg.msgtype == "tf2_msgs/msg/TFMessage":
            (tf,) = msg.data.transforms
            stamp = tf.header.stamp
            if msg.topic == "/tf_static":
                assert (tf.header.frame_id, tf.child_frame_id) == (
                    "camera_link", "camera_color_optical_frame")
                r = tf.transform.rotation
                np.testing.assert_allclose([r.x, r.y, r.z, r.w], [-0.5, 0.5, -0.5, 0.5])
            else:
                assert (tf.header.frame_id, tf.child_frame_id) == ("map", "camera_link")
        else:
            stamp = msg.data.header.stamp
            expected_frame = "map" if msg.topic == "/camera/pose" else "camera_color_optical_frame"
            assert msg.data.header.frame_id == expected_frame
        assert stamp.sec * 10**9 + stamp.nanosec == msg.log_time_ns

    info_msg = next(iter_messages(bag, ["/camera/color/camera_info"], deserialize=True)).data
    assert (info_msg.width, info_msg.height) == (INTRINSICS.width, INTRINSICS.height)
    assert info_msg.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(info_msg.d, np.zeros(5))
    np.testing.assert_array_equal(info_msg.k.reshape(3, 3), INTRINSICS.matrix)
    np.testing.assert_array_equal(info_msg.p.reshape(3, 4)[:, :3], INTRINSICS.matrix)
    np.testing.assert_array_equal(info_msg.r.reshape(3, 3), np.eye(3))


def test_map_to_camera_link_times_static_tf_is_the_optical_pose(tmp_path):
    frames = make_frames(2)
    write_bag(frames, tmp_path / "bag", pose_topic=False)
    from scene_llm_ros.data.rosbag.messages import transform_to_matrix
    tfs = [x.data.transforms[0] for x in iter_messages(tmp_path / "bag", ["/tf"],
                                                       deserialize=True)]
    for tf, frame in zip(tfs, frames, strict=True):
        np.testing.assert_allclose(transform_to_matrix(tf.transform) @ T_LINK_OPTICAL,
                                   frame.T_world_cam, atol=1e-12)


def test_poses_only_in_tf(tmp_path):
    frames = make_frames(4, seed=7)
    bag = tmp_path / "bag"
    write_bag(frames, bag, pose_topic=False)
    assert "/camera/pose" not in inspect_bag(bag).topics
    reader = RGBDBagReader(bag)
    assert reader.pose_source == "tf"
    _assert_same_frames(list(reader), frames)
    with pytest.raises(DataFormatError, match="0 pose topics"):
        RGBDBagReader(bag, pose_source="topic")


def test_poses_only_on_topic_and_custom_names(tmp_path):
    frames = make_frames(3, seed=8)
    topics = BagTopics(color="/cam/rgb", depth="/cam/aligned_depth", camera_info="/cam/info",
                       pose="/slam/pose")
    bag = tmp_path / "bag"
    write_bag(frames, bag, tf=False, topics=topics,
              frame_names=FrameNames(world="odom", optical="cam_optical"))
    reader = RGBDBagReader(bag)
    assert reader.pose_source == "topic"
    assert reader.resolved_topics["pose"] == "/slam/pose"
    got = list(reader)
    assert [g.frame_id for g in got] == ["cam_optical"] * 3
    for g, e in zip(got, frames, strict=True):
        np.testing.assert_allclose(g.T_world_cam, e.T_world_cam, atol=1e-6)
    with pytest.raises(DataFormatError, match="no TF chain"):
        RGBDBagReader(bag, pose_source="tf")


def test_fps_restamps_and_missing_pose_is_skipped(tmp_path):
    frames = make_frames(4)
    for f in frames:
        f.stamp_ns = 0  # e.g. frames without timestamps
    # Without a pose the last frame has no /tf, and 100 ms is beyond the TF tolerance; a gap
    # inside the sequence would be interpolated, as tf2 does.
    frames[3].T_world_cam = None
    bag = tmp_path / "bag"
    write_bag(frames, bag, fps=10.0)
    reader = RGBDBagReader(bag)
    got = list(reader)
    assert [g.stamp_ns for g in got] == [10**9, 10**9 + 10**8, 10**9 + 2 * 10**8]
    assert reader.stats == {"frames_in_bag": 4, "yielded": 3, "no_pose": 1, "unmatched": 0}


def test_writer_rejects_bad_input_and_leaves_no_partial_bag(tmp_path):
    frames = make_frames(3)
    frames[2].stamp_ns = frames[1].stamp_ns
    with pytest.raises(InvalidFrameError, match="pass fps"):
        write_bag(frames, tmp_path / "bag")
    assert not (tmp_path / "bag").exists()
    write_bag(make_frames(1), tmp_path / "bag")
    with pytest.raises(FileExistsError):
        write_bag(make_frames(1), tmp_path / "bag")
    with pytest.raises(ValueError, match="storage"):
        write_bag(make_frames(1), tmp_path / "x", storage="bag")
    with pytest.raises(ValueError, match="depth encoding"):
        write_bag(make_frames(1), tmp_path / "x", depth_encoding="16UC3")
    with pytest.raises(ValueError, match="colour encoding"):
        write_bag(make_frames(1), tmp_path / "x", color_encoding="yuv422")


def test_iter_messages_is_in_log_time_order_with_raw_cdr(tmp_path):
    frames = make_frames(3)
    write_bag(frames, tmp_path / "bag", storage="sqlite3")
    msgs = list(iter_messages(tmp_path / "bag"))
    assert len(msgs) == 16
    times = [x.log_time_ns for x in msgs]
    assert times == sorted(times)
    image = next(x for x in msgs if x.topic == "/camera/color/image_raw")
    assert isinstance(image.data, (bytes, memoryview))
    decoded = typestore().deserialize_cdr(image.data, image.msgtype)
    assert decoded.encoding == "rgb8"
    with pytest.raises(DataFormatError, match="no topic /nope"):
        list(iter_messages(tmp_path / "bag", ["/nope"]))
