"""inspect_bag and the reader's errors on real ROS 2 bags and on damaged files."""
from __future__ import annotations

import os

import pytest
from rosbag_testutil import make_frames

from scene_llm_ros.data.rosbag import RGBDBagReader, inspect_bag, iter_messages, write_bag
from scene_llm_ros.errors import DataFormatError


@pytest.mark.parametrize("name, storage", [("talker_mcap", "mcap"),
                                           ("talker_sqlite3", "sqlite3")])
def test_inspect_real_talker_bag(shared_data, name, storage):
    bag = shared_data / "rosbag2" / name
    info = inspect_bag(bag)
    assert info.storage == storage
    assert info.topics["/topic"].msgtype == "std_msgs/msg/String"
    assert info.topics["/topic"].message_count == 10
    assert info.topics["/rosout"].msgtype == "rcl_interfaces/msg/Log"
    assert info.message_count == 20
    assert info.duration_ns == 4_531_096_768  # as ros2 bag record wrote in metadata.yaml
    # rosbags alone yields nothing here: metadata.yaml and the storage disagree on QoS.
    texts = [x.data.data for x in iter_messages(bag, ["/topic"], deserialize=True)]
    assert len(texts) == 10 and all(t.startswith("Hello, world! ") for t in texts)


@pytest.mark.parametrize("name", ["talker_mcap", "talker_sqlite3"])
def test_reader_on_talker_bag_says_no_rgbd_topics(shared_data, name):
    with pytest.raises(DataFormatError, match=r"no RGB-D topics.*/topic \[std_msgs/msg/String\]"):
        RGBDBagReader(shared_data / "rosbag2" / name)


@pytest.mark.parametrize("storage, suffix", [("mcap", "mcap"), ("sqlite3", "db3")])
def test_truncated_bag_raises_naming_the_file(tmp_path, storage, suffix):
    bag = tmp_path / "bag"
    write_bag(make_frames(20), bag, storage=storage)
    data_file = bag / f"bag.{suffix}"
    data = data_file.read_bytes()
    data_file.write_bytes(data[:len(data) // 2])
    for open_it in (inspect_bag, RGBDBagReader, lambda p: list(iter_messages(p))):
        with pytest.raises(DataFormatError, match=str(bag)):
            open_it(bag)
    with pytest.raises(DataFormatError, match=f"bag.{suffix}"):
        inspect_bag(data_file)


def test_not_a_bag(tmp_path):
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(DataFormatError, match="junk.mcap is not a readable rosbag2 bag"):
        inspect_bag(junk)
    with pytest.raises(DataFormatError, match="has no metadata.yaml"):
        inspect_bag(tmp_path)
    with pytest.raises(DataFormatError, match="does not exist"):
        RGBDBagReader(tmp_path / "missing")
    text = tmp_path / "notes.txt"
    text.write_text("not a bag")
    with pytest.raises(DataFormatError, match="notes.txt"):
        inspect_bag(text)
