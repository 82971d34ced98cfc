"""AskScene service and action round trips between two processes over real Fast DDS."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from geometry_msgs.msg import Point
from rclpy.action import ActionClient

from scene_llm_ros.action import AskScene as AskSceneAction
from scene_llm_ros.srv import AskScene

SERVER = Path(__file__).parent / "servers" / "ask_scene_test_server.py"
TIMEOUT_S = 30.0


@pytest.fixture
def server_process():
    proc = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    line = proc.stdout.readline()
    assert line.strip() == "READY", f"test server failed to start: {line!r}"
    yield proc
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_future(future, timeout: float = TIMEOUT_S):
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    assert done.wait(timeout), "no reply over DDS within the timeout"
    return future.result()


def test_service_round_trip(ros, server_process):
    node = ros.node("ask_scene_client")
    client = node.create_client(AskScene, "ask_scene")
    assert client.wait_for_service(timeout_sec=TIMEOUT_S), "AskScene service not discovered"

    request = AskScene.Request(question="where is the chair?", task=AskScene.Request.TASK_GROUND,
                               prompt_points=[Point(x=1.0, y=2.0, z=0.5)], return_masks=True)
    response = wait_future(client.call_async(request))
    assert response.success and response.error_code == AskScene.Response.ERROR_NONE
    assert response.answer == "echo: where is the chair? (1 points)"
    assert response.header.frame_id == "map" and response.scene_version == 7
    (obj,) = response.objects
    assert obj.label == "chair" and obj.score == pytest.approx(0.9)
    assert (obj.bbox.size.x, obj.bbox.size.y, obj.bbox.size.z) == pytest.approx((0.5, 0.6, 1.0))
    mask = np.frombuffer(bytes(obj.mask.data), np.uint8).reshape(obj.mask.height, obj.mask.width)
    assert obj.mask.encoding == "mono8" and int(mask.sum()) == 6 * 255
    assert (obj.roi.x_offset, obj.roi.y_offset, obj.roi.width, obj.roi.height) == (3, 2, 3, 2)

    bad = wait_future(client.call_async(AskScene.Request(question="  ")))
    assert not bad.success and bad.error_code == "BAD_REQUEST"


def test_action_streams_feedback_and_succeeds(ros, server_process):
    node = ros.node("ask_scene_action_client")
    client = ActionClient(node, AskSceneAction, "ask_scene")
    assert client.wait_for_server(timeout_sec=TIMEOUT_S), "AskScene action not discovered"
    feedback: list[AskSceneAction.Feedback] = []
    goal = AskSceneAction.Goal(question="describe the room", max_new_tokens=6)
    handle = wait_future(client.send_goal_async(goal, feedback_callback=lambda m: feedback.append(
        m.feedback)))
    assert handle.accepted
    result = wait_future(handle.get_result_async())
    assert result.status == GoalStatus.STATUS_SUCCEEDED
    assert result.result.answer == "the red chair is next to"
    assert result.result.tokens_generated == 6 and len(result.result.objects) == 1
    counts = [f.tokens_generated for f in feedback]
    assert counts == sorted(counts) and counts[-1] == 6 and len(counts) >= 3
    assert feedback[-1].partial_answer == result.result.answer


def test_action_cancel_stops_generation(ros, server_process):
    node = ros.node("ask_scene_cancel_client")
    client = ActionClient(node, AskSceneAction, "ask_scene")
    assert client.wait_for_server(timeout_sec=TIMEOUT_S)
    first_feedback = threading.Event()
    goal = AskSceneAction.Goal(question="describe everything", max_new_tokens=400)
    handle = wait_future(client.send_goal_async(goal, feedback_callback=lambda _m:
                                                first_feedback.set()))
    assert first_feedback.wait(TIMEOUT_S)
    started = time.monotonic()
    cancel = wait_future(handle.cancel_goal_async())
    assert len(cancel.goals_canceling) == 1
    result = wait_future(handle.get_result_async())
    assert result.status == GoalStatus.STATUS_CANCELED
    assert result.result.error_code == "CANCELED"
    # Generation really stopped: far fewer than the 400 requested tokens, and promptly.
    assert result.result.tokens_generated < 100
    assert time.monotonic() - started < 10.0
