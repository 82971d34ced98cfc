"""Replay plans: topics resolved, poses computed offline, the bag's own messages frame by frame."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from rosbag_testutil import make_frames, write_custom_bag

from scene_llm_ros.data.rosbag import iter_messages, write_bag
from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.evaluation import colour_images_at, iter_replay_frames, plan_replay


@pytest.mark.parametrize("storage,color_encoding,depth_encoding,tf,pose_topic", [
    ("mcap", "bgr8", "32FC1", True, False),
    ("sqlite3", "rgb8", "16UC1", False, True),
])
def test_plan_and_frames_carry_the_bag_bytes_and_poses(tmp_path, storage, color_encoding,
                                                       depth_encoding, tf, pose_topic):
    frames = make_frames(5)
    bag = tmp_path / "bag"
    write_bag(frames, bag, storage=storage, color_encoding=color_encoding,
              depth_encoding=depth_encoding, tf=tf, pose_topic=pose_topic)
    plan = plan_replay(bag)
    assert plan.storage == storage and plan.pose_source == ("tf" if tf else "topic")
    assert plan.scene_frame == "map" and plan.frames_in_bag == 5 and len(plan.frames) == 5
    assert plan.skipped == {"unmatched": 0, "no_pose": 0}
    replayed = list(iter_replay_frames(plan))
    assert [f.stamp_ns for f in replayed] == [f.stamp_ns for f in frames]
    raw = {(topic, m.stamp_to_ns(msg.header.stamp)): msg for topic, _, _, msg in
           iter_messages(bag, [plan.topics["color"], plan.topics["depth"]], deserialize=True)}
    for original, frame in zip(frames, replayed, strict=True):
        # The poses the node will get are the recorded ones, and the pixels are untouched.
        np.testing.assert_allclose(frame.T_world_cam, original.T_world_cam, atol=1e-6)
        assert frame.color.encoding == color_encoding and frame.depth.encoding == depth_encoding
        bag_color = raw[(plan.topics["color"], frame.stamp_ns)]
        assert bytes(frame.color.data) == bytes(bag_color.data)
        assert len(frame.infos) == 1  # write_bag logs one CameraInfo per frame
    assert replayed[-1].log_time_ns - replayed[0].log_time_ns == \
        frames[-1].stamp_ns - frames[0].stamp_ns


def test_unposed_frames_are_skipped_and_counted(tmp_path):
    frames = make_frames(6, period_ns=500_000_000)
    # The last frame has no pose: 0.5 s beyond the last pose sample it is not extrapolated.
    frames[-1] = replace(frames[-1], T_world_cam=None)
    bag = tmp_path / "bag"
    write_bag(frames, bag)
    plan = plan_replay(bag, pose_topic="/camera/pose")
    assert plan.pose_source == "topic" and plan.topics["pose"] == "/camera/pose"
    assert len(plan.frames) == 5 and plan.skipped["no_pose"] == 1
    assert len(list(iter_replay_frames(plan))) == 5
    images = colour_images_at(bag, plan.topics["color"], [frames[2].stamp_ns, 12345])
    assert list(images) == [frames[2].stamp_ns]
    np.testing.assert_array_equal(images[frames[2].stamp_ns], frames[2].color)


def test_a_late_camera_info_goes_out_with_the_first_frame(tmp_path):
    frames = make_frames(3)
    optical = "camera_color_optical_frame"
    messages = []
    for i, frame in enumerate(frames):
        if i == 2:  # the only CameraInfo is logged with the last frame
            messages.append(("/info", m.camera_info(frame.intrinsics, frame.stamp_ns, optical)))
        messages += [
            ("/pose", m.pose_stamped(frame.T_world_cam, frame.stamp_ns, "map")),
            ("/color", m.color_to_image(frame.color, "rgb8", frame.stamp_ns, optical)),
            ("/depth", m.depth_to_image(frame.depth, "32FC1", frame.stamp_ns, optical))]
    bag = tmp_path / "bag"
    write_custom_bag(bag, messages)
    plan = plan_replay(bag)
    assert plan.topics == {"color": "/color", "depth": "/depth", "camera_info": "/info",
                           "pose": "/pose"}
    replayed = list(iter_replay_frames(plan))
    assert [len(f.infos) for f in replayed] == [1, 0, 1]
    assert m.stamp_to_ns(replayed[0].infos[0].header.stamp) == frames[2].stamp_ns


def test_bags_that_cannot_be_replayed(tmp_path, shared_data):
    with pytest.raises(DataFormatError, match="no RGB-D topics"):
        plan_replay(shared_data / "rosbag2" / "talker_mcap")
    bag = tmp_path / "unposed"
    write_bag(make_frames(3), bag, tf=False, pose_topic=False)
    with pytest.raises(DataFormatError, match="no pose source"):
        plan_replay(bag)
    with pytest.raises(DataFormatError, match="does not exist|not a readable"):
        plan_replay(tmp_path / "missing")
