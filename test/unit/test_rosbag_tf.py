"""The offline TF buffer and RGBDBagReader on hand-made bags (interpolation, sizes, topics)."""
from __future__ import annotations

import numpy as np
import pytest
from rosbag_testutil import INTRINSICS, START_NS, make_frames, random_pose, write_custom_bag

from scene_llm_ros.data.rosbag import RGBDBagReader, TFBuffer, TransformLookupError
from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.data.rosbag.writer import T_LINK_OPTICAL
from scene_llm_ros.data.transforms import make_transform
from scene_llm_ros.errors import DataFormatError

MS = 1_000_000


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_chain_through_several_parents_and_siblings():
    rng = np.random.default_rng(0)
    T_map_odom, T_base_link, T_link_opt = (random_pose(rng) for _ in range(3))
    T_odom_base = [random_pose(rng), random_pose(rng)]
    T_base_lidar = random_pose(rng)
    tf = TFBuffer()
    tf.add_static("map", "odom", T_map_odom)
    tf.add_dynamic("odom", "base_link", 0, T_odom_base[0])
    tf.add_dynamic("/odom", "base_link", 100 * MS, T_odom_base[1])  # leading slash tolerated
    tf.add_static("base_link", "camera_link", T_base_link)
    tf.add_static("camera_link", "optical", T_link_opt)
    tf.add_static("base_link", "lidar", T_base_lidar)

    expected = T_map_odom @ T_odom_base[1] @ T_base_link @ T_link_opt
    np.testing.assert_allclose(tf.lookup("map", "optical", 100 * MS), expected, atol=1e-12)
    # Sibling lookup stops at the common ancestor, so it needs no dynamic edge.
    np.testing.assert_allclose(tf.lookup("lidar", "optical", 10**15),
                               np.linalg.inv(T_base_lidar) @ T_base_link @ T_link_opt,
                               atol=1e-12)
    np.testing.assert_allclose(tf.lookup("optical", "map", 0),
                               np.linalg.inv(T_map_odom @ T_odom_base[0] @ T_base_link
                                             @ T_link_opt), atol=1e-12)
    assert tf.can_transform("map", "lidar") and not tf.can_transform("map", "elsewhere")
    with pytest.raises(TransformLookupError, match="no TF chain"):
        tf.lookup("map", "elsewhere", 0)


def test_dynamic_edge_interpolates_and_refuses_to_extrapolate():
    tf = TFBuffer(tolerance_ns=10 * MS)
    tf.add_dynamic("map", "cam", 0, make_transform(_rot_z(0.0), [0.0, 0.0, 0.0]))
    tf.add_dynamic("map", "cam", 100 * MS, make_transform(_rot_z(np.pi / 2), [2.0, 0.0, 0.0]))
    T = tf.lookup("map", "cam", 25 * MS)
    np.testing.assert_allclose(T[:3, :3], _rot_z(np.pi / 8), atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [0.5, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(tf.lookup("map", "cam", 105 * MS)[:3, 3], [2.0, 0.0, 0.0])
    with pytest.raises(TransformLookupError, match="extrapolate"):
        tf.lookup("map", "cam", 111 * MS)
    with pytest.raises(TransformLookupError, match="extrapolate"):
        tf.lookup("map", "cam", -11 * MS)


def test_dynamic_edge_forgets_its_history_when_its_stamps_jump_back():
    tf = TFBuffer(tolerance_ns=0, jump_back_ns=1000 * MS)
    for stamp_ms, x in ((0, 0.0), (2000, 2.0), (1500, 1.5)):  # 0.5 s back: out of order only
        tf.add_dynamic("map", "cam", stamp_ms * MS, make_transform(np.eye(3), [x, 0.0, 0.0]))
    np.testing.assert_allclose(tf.lookup("map", "cam", 1000 * MS)[:3, 3], [1.0, 0.0, 0.0])
    tf.add_dynamic("map", "cam", 100 * MS, make_transform(np.eye(3), [9.0, 0.0, 0.0]))  # loop
    tf.add_dynamic("map", "cam", 200 * MS, make_transform(np.eye(3), [10.0, 0.0, 0.0]))
    np.testing.assert_allclose(tf.lookup("map", "cam", 150 * MS)[:3, 3], [9.5, 0.0, 0.0])
    with pytest.raises(TransformLookupError, match="extrapolate"):
        tf.lookup("map", "cam", 1000 * MS)  # the samples of the first loop are gone


def _image_messages(stamp_ns: int, frame, *, depth_frame: str = "optical",
                    depth_size: tuple[int, int] | None = None):
    depth = frame.depth
    if depth_size is not None:
        depth = depth[::2, ::2]
        assert depth.shape[::-1] == depth_size
    return [
        ("/cam/color", m.color_to_image(frame.color, "rgb8", stamp_ns, "optical")),
        ("/cam/depth", m.depth_to_image(depth, "16UC1", stamp_ns + 3 * MS, depth_frame)),
        ("/cam/info", m.camera_info(INTRINSICS, stamp_ns, "optical")),
    ]


def test_reader_interpolates_tf_between_messages(tmp_path):
    """Images at 50 and 150 ms, /tf at 0, 100, 200 ms: poses are interpolated."""
    frames = make_frames(3)
    T_map_link = [make_transform(_rot_z(a), [x, 1.0, 0.0])
                  for a, x in ((0.0, 0.0), (np.pi / 2, 1.0), (np.pi, 3.0))]
    msgs = [("/tf_static", m.tf_message([m.transform_stamped(T_LINK_OPTICAL, START_NS, "base",
                                                             "optical")]))]
    msgs += [("/tf", m.tf_message([m.transform_stamped(T, START_NS + i * 100 * MS, "map",
                                                       "base")]))
             for i, T in enumerate(T_map_link)]
    msgs += _image_messages(START_NS + 50 * MS, frames[0])
    msgs += _image_messages(START_NS + 150 * MS, frames[1])
    msgs += _image_messages(START_NS + 400 * MS, frames[2])  # 200 ms past the last /tf
    write_custom_bag(tmp_path / "bag", msgs)

    reader = RGBDBagReader(tmp_path / "bag")
    assert reader.pose_source == "tf"
    got = list(reader)
    assert reader.stats == {"frames_in_bag": 3, "yielded": 2, "no_pose": 1, "unmatched": 0}
    expected = [make_transform(_rot_z(np.pi / 4), [0.5, 1.0, 0.0]) @ T_LINK_OPTICAL,
                make_transform(_rot_z(3 * np.pi / 4), [2.0, 1.0, 0.0]) @ T_LINK_OPTICAL]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.T_world_cam, e, atol=1e-9)
    assert got[0].extras["depth_stamp_ns"] == START_NS + 53 * MS


def test_reader_poses_from_odometry_chained_to_the_camera(tmp_path):
    frames = make_frames(1)
    rng = np.random.default_rng(4)
    T_odom_base, T_base_opt = random_pose(rng), random_pose(rng)
    pose = m.pose_stamped(T_odom_base, START_NS, "odom").pose
    odom = m.typestore().types[m.ODOMETRY](
        header=m.header(START_NS, "odom"), child_frame_id="base_link",
        pose=m.typestore().types["geometry_msgs/msg/PoseWithCovariance"](
            pose=pose, covariance=np.zeros(36)),
        twist=m.typestore().types["geometry_msgs/msg/TwistWithCovariance"](
            twist=m.typestore().types["geometry_msgs/msg/Twist"](
                linear=m.typestore().types["geometry_msgs/msg/Vector3"](x=0, y=0, z=0),
                angular=m.typestore().types["geometry_msgs/msg/Vector3"](x=0, y=0, z=0)),
            covariance=np.zeros(36)))
    msgs = [("/odom", odom),
            ("/tf_static", m.tf_message([m.transform_stamped(T_base_opt, START_NS, "base_link",
                                                             "optical")]))]
    msgs += _image_messages(START_NS, frames[0])
    write_custom_bag(tmp_path / "bag", msgs, storage="sqlite3")
    reader = RGBDBagReader(tmp_path / "bag", pose_source="topic")
    (got,) = list(reader)
    np.testing.assert_allclose(got.T_world_cam, T_odom_base @ T_base_opt, atol=1e-9)


def test_smaller_registered_depth_is_resized_to_colour(tmp_path):
    frames = make_frames(1)
    msgs = [("/pose", m.pose_stamped(frames[0].T_world_cam, START_NS, "map"))]
    msgs += _image_messages(START_NS, frames[0], depth_size=(16, 12))
    write_custom_bag(tmp_path / "bag", msgs)
    (got,) = list(RGBDBagReader(tmp_path / "bag"))
    assert got.depth.shape == (24, 32)
    assert got.intrinsics == INTRINSICS
    np.testing.assert_array_equal(got.depth[::2, ::2], got.depth[1::2, 1::2])
    np.testing.assert_array_equal(np.round(got.depth[::2, ::2] * 1000),
                                  np.round(frames[0].depth[::2, ::2] * 1000))


def test_unregistered_depth_is_refused(tmp_path):
    frames = make_frames(1)
    msgs = [("/pose", m.pose_stamped(frames[0].T_world_cam, START_NS, "map"))]
    msgs += _image_messages(START_NS, frames[0], depth_frame="depth_optical")
    write_custom_bag(tmp_path / "bag", msgs)
    with pytest.raises(DataFormatError, match="registered"):
        RGBDBagReader(tmp_path / "bag")
    assert len(list(RGBDBagReader(tmp_path / "bag", allow_unregistered_depth=True))) == 1


def test_ambiguous_colour_topics_are_listed_and_can_be_chosen(tmp_path):
    frames = make_frames(1)
    msgs = [("/pose", m.pose_stamped(frames[0].T_world_cam, START_NS, "map"))]
    msgs += _image_messages(START_NS, frames[0])
    msgs.append(("/ir", m.color_to_image(frames[0].color, "mono8", START_NS, "optical")))
    write_custom_bag(tmp_path / "bag", msgs)
    with pytest.raises(DataFormatError, match=r"several colour topics: /cam/color \(rgb8\), "
                                              r"/ir \(mono8\)"):
        RGBDBagReader(tmp_path / "bag")
    reader = RGBDBagReader(tmp_path / "bag", color_topic="/ir")
    assert reader.resolved_topics["color"] == "/ir"
    with pytest.raises(DataFormatError, match="not a colour encoding"):
        RGBDBagReader(tmp_path / "bag", color_topic="/cam/depth")


def test_unmatched_depth_is_counted(tmp_path):
    frames = make_frames(2)
    msgs = [("/pose", m.pose_stamped(f.T_world_cam, START_NS + i * 100 * MS, "map"))
            for i, f in enumerate(frames)]
    msgs += _image_messages(START_NS, frames[0])
    color_only = _image_messages(START_NS + 100 * MS, frames[1])
    msgs += [color_only[0], color_only[2]]
    write_custom_bag(tmp_path / "bag", msgs)
    reader = RGBDBagReader(tmp_path / "bag")
    assert len(list(reader)) == 1
    assert reader.stats == {"frames_in_bag": 2, "yielded": 1, "no_pose": 0, "unmatched": 1}
