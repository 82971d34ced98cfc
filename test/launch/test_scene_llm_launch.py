"""launch_testing: scene_llm.launch.py starts both nodes and AskScene answers NO_SCENE.

Runs where launch_ros and launch_testing are installed (a ROS 2 workspace); skipped in the
PyPI-wheel environment, where the same checks run through test_launch_files.py and the
in-process DDS tests.
"""
from __future__ import annotations

import os
import unittest
from pathlib import Path

import pytest

pytest.importorskip("launch_testing")
pytest.importorskip("launch_ros")

import launch_testing.actions  # noqa: E402
import rclpy  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

import launch  # noqa: E402
from scene_llm_ros.model import build_tiny_scene_llm  # noqa: E402
from scene_llm_ros.srv import AskScene  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "scene_llm.launch.py"


@pytest.mark.launch_test
def generate_test_description():
    checkpoint = Path(os.environ.get("TMPDIR", "/tmp")) / "scene_llm_launch_test_model"
    build_tiny_scene_llm(["what is here ?"] * 20, vocab_size=200).save_pretrained(checkpoint)
    included = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"checkpoint": str(checkpoint)}.items())
    return launch.LaunchDescription([included, launch_testing.actions.ReadyToTest()])


class TestAskSceneComesUp(unittest.TestCase):
    def test_ask_scene_answers_no_scene_before_any_frame(self):
        rclpy.init()
        try:
            node = rclpy.create_node("launch_test_client")
            client = node.create_client(AskScene, "ask_scene")
            self.assertTrue(client.wait_for_service(timeout_sec=60.0))
            future = client.call_async(AskScene.Request(question="what is here ?"))
            rclpy.spin_until_future_complete(node, future, timeout_sec=60.0)
            self.assertEqual(future.result().error_code, AskScene.Response.ERROR_NO_SCENE)
            node.destroy_node()
        finally:
            rclpy.shutdown()
