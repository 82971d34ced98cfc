"""A stand-in AskScene server for transport tests: the test is about interfaces and DDS.

Run as ``python ask_scene_test_server.py``; it prints READY once both servers are up and
exits when stdin closes, so the test that started it controls its lifetime.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from sensor_msgs.msg import Image

from scene_llm_ros.action import AskScene as AskSceneAction
from scene_llm_ros.msg import GroundedObject
from scene_llm_ros.srv import AskScene

WORDS = ("the", "red", "chair", "is", "next", "to", "the", "table")


def grounded_object() -> GroundedObject:
    obj = GroundedObject(id="0", label="chair", score=0.9)
    position = obj.bbox.center.position
    position.x, position.y, position.z = 1.0, 2.0, 0.5
    obj.bbox.center.orientation.w = 1.0
    obj.bbox.size.x, obj.bbox.size.y, obj.bbox.size.z = 0.5, 0.6, 1.0
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 3:6] = 255
    obj.mask = Image(height=6, width=8, encoding="mono8", step=8, data=mask.tobytes())
    obj.mask.header.frame_id = "camera_color_optical_frame"
    obj.roi.x_offset, obj.roi.y_offset, obj.roi.width, obj.roi.height = 3, 2, 3, 2
    return obj


def answer_service(request: AskScene.Request, response: AskScene.Response) -> AskScene.Response:
    if not request.question.strip():
        response.success = False
        response.error_code = AskScene.Response.ERROR_BAD_REQUEST
        response.message = "question is empty"
        return response
    response.success = True
    response.answer = f"echo: {request.question} ({len(request.prompt_points)} points)"
    response.objects = [grounded_object()]
    response.header.frame_id = "map"
    response.scene_version = 7
    response.reference_camera_info.header.frame_id = "camera_color_optical_frame"
    response.reference_camera_info.width, response.reference_camera_info.height = 8, 6
    response.tokens_generated = len(WORDS)
    return response


def execute_goal(goal_handle):
    request = goal_handle.request
    limit = request.max_new_tokens or len(WORDS)
    words: list[str] = []
    result = AskSceneAction.Result()
    for i in range(limit):
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
            result.success = False
            result.error_code = AskSceneAction.Result.ERROR_CANCELED
            result.answer = " ".join(words)
            result.tokens_generated = len(words)
            return result
        words.append(WORDS[i % len(WORDS)])
        feedback = AskSceneAction.Feedback(stage=AskSceneAction.Feedback.STAGE_DECODING,
                                           partial_answer=" ".join(words),
                                           tokens_generated=len(words))
        goal_handle.publish_feedback(feedback)
        time.sleep(0.05)
    goal_handle.succeed()
    result.success = True
    result.answer = " ".join(words)
    result.tokens_generated = len(words)
    result.objects = [grounded_object()]
    return result


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("ask_scene_test_server")
    group = ReentrantCallbackGroup()
    node.create_service(AskScene, "ask_scene", answer_service, callback_group=group)
    ActionServer(node, AskSceneAction, "ask_scene", execute_goal, callback_group=group,
                 goal_callback=lambda _goal: GoalResponse.ACCEPT,
                 cancel_callback=lambda _goal: CancelResponse.ACCEPT)
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    print("READY", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
