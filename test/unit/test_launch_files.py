"""The launch files' remappings and parameters match what the nodes declare.

launch_ros is not installable from PyPI, so the files are read as Python syntax here; the
launch_testing test in test/launch runs them where launch_ros exists.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scene_llm_ros.data.rosbag import BagTopics
from scene_llm_ros.nodes.fusion_node import PARAMS as FUSION_PARAMS
from scene_llm_ros.nodes.inference_node import PARAMS as INFERENCE_PARAMS
from scene_llm_ros.nodes.topics import FUSION_INPUTS

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
BUILT_IN = {"use_sim_time"}  # every rclpy node declares it


def constants(path: Path) -> dict:
    """Module-level NAME = literal assignments of a launch file."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


@pytest.mark.parametrize("name", ["scene_llm.launch.py", "replay.launch.py"])
def test_remappings_and_parameters_match_the_nodes(name):
    c = constants(LAUNCH / name)
    assert tuple(c["REMAPPINGS"]) == FUSION_INPUTS
    fusion = {p.name for p in FUSION_PARAMS} | BUILT_IN
    inference = {p.name for p in INFERENCE_PARAMS} | BUILT_IN
    assert set(c["FUSION_PARAMETERS"]) <= fusion
    assert set(c["INFERENCE_PARAMETERS"]) <= inference
    assert set(c.get("FUSION_REPLAY", {})) <= fusion
    assert set(c.get("INFERENCE_REPLAY", {})) <= inference
    arguments = [argument for argument, _ in c["REMAPPINGS"].values()]
    assert len(set(arguments)) == len(arguments)
    source = (LAUNCH / name).read_text()
    assert 'executable="fusion_node"' in source and 'executable="inference_node"' in source


def test_replay_defaults_are_the_topics_scene_llm_bag_writes():
    remap = constants(LAUNCH / "replay.launch.py")["REMAPPINGS"]
    topics = BagTopics()
    assert [default for _, default in remap.values()] == [
        topics.color, topics.depth, topics.camera_info, topics.pose]
