"""inference_node over real DDS: fusion -> ScenePatches -> AskScene service and action."""
from __future__ import annotations

import math
import os
import subprocess
import threading
import time

import numpy as np
import pytest
import torch
from dds_helpers import Camera, StatusWatcher, call, interrupt, node_command, wait_for
from geometry_msgs.msg import Point
from rclpy.action import ActionClient
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from scene_llm_ros.action import AskScene as AskSceneAction
from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from scene_llm_ros.inference.requests import ErrorCode
from scene_llm_ros.model import GROUND_TOKEN, build_tiny_scene_llm
from scene_llm_ros.nodes import conversions as conv
from scene_llm_ros.nodes.fusion_node import FusionNode
from scene_llm_ros.nodes.inference_node import InferenceNode
from scene_llm_ros.srv import AskScene

pytestmark = pytest.mark.dds
CORPUS = ["what is on the table ?", "the chair is next to the desk ."] * 20


@pytest.fixture(scope="module")
def scene():
    return generate_scene(11, "scene9000_00", SynthConfig(width=160, height=120, num_frames=25,
                                                         noise=False, write_sens=False))


@pytest.fixture(scope="module")
def grounding_model():
    """A tiny random model whose LLM always emits <ground>: every answer grounds objects, in
    a 20 m box centred on a scene token (it covers the fused room, whatever the weights)."""
    model = build_tiny_scene_llm(CORPUS, vocab_size=300)
    box_out = model.grounding_head.box[-1]
    with torch.no_grad():
        box_out.weight.zero_()
        box_out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, *[math.log(20.0)] * 3]))
    head = model.llm.get_output_embeddings()
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.zero_()
        biased.bias.fill_(-10.0)
        biased.bias[model.tokenizer.convert_tokens_to_ids(GROUND_TOKEN)] = 10.0
    model.llm.set_output_embeddings(biased)
    return model


def start(ros, node):
    ros.executor.add_node(node)
    ros._nodes.append(node)  # noqa: SLF001 - the harness destroys it
    return node


def fused_pair(ros, scene, model, *, encoder=None, **inference_params):
    fusion = start(ros, FusionNode(encoder=encoder or model.patch_encoder, context=ros.context,
                                   parameter_overrides=[
                                       Parameter("qos_reliability", value="reliable"),
                                       Parameter("queue_size", value=50),
                                       Parameter("patches_rate_hz", value=10.0)]))
    params = {"max_new_tokens": 2, **inference_params}
    inference = start(ros, InferenceNode(model=model, context=ros.context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()]))
    for node in (fusion, inference):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    return fusion, inference


def stream(ros, scene, fusion):
    camera = Camera(ros)
    camera.wait_for_node()
    for frame in scene.frames:
        camera.send(frame)
        time.sleep(0.02)
    # A KEEP_LAST reader can lose a sample on a loaded machine: wait until what arrived is fused.
    seen = [-1]

    def settled() -> bool:
        stats = fusion.pipeline.stats()
        done = (stats.frames_received == seen[0] and fusion.pipeline.wait_until_idle(0.3)
                and stats.frames_integrated >= len(scene.frames) // 2)
        seen[0] = stats.frames_received
        time.sleep(0.3)
        return done

    wait_for(settled, 60, "fusion")


def ask(client, question="what is on the table ?", **fields):
    return call(client, AskScene, "ask_scene", AskScene.Request(question=question, **fields))


def assert_mask_lies_on_points(mask: np.ndarray, points: np.ndarray, response) -> None:
    """The mask, drawn in the reference image, covers where the object's points project."""
    info = response.reference_camera_info
    K = np.array(info.k).reshape(3, 3)
    T = conv.pose_to_matrix(response.reference_camera_pose)
    camera = (points - T[:3, 3]) @ T[:3, :3]  # scene -> optical frame
    camera = camera[camera[:, 2] > 0.1]
    u = np.round(K[0, 0] * camera[:, 0] / camera[:, 2] + K[0, 2]).astype(int)
    v = np.round(K[1, 1] * camera[:, 1] / camera[:, 2] + K[1, 2]).astype(int)
    inside = (u >= 0) & (u < info.width) & (v >= 0) & (v < info.height)
    near = np.zeros_like(mask, bool)
    for du in range(-3, 4):
        for dv in range(-3, 4):
            near[np.clip(v[inside] + dv, 0, info.height - 1),
                 np.clip(u[inside] + du, 0, info.width - 1)] = True
    on_points = near[mask > 0].mean()
    assert on_points > 0.9, f"only {on_points:.0%} of the mask is where the points project"


def test_grounded_answer_over_dds_and_error_codes(ros, scene, grounding_model):
    fusion, inference = fused_pair(ros, scene, grounding_model)
    client = ros.node("planner")
    assert ask(client).error_code == ErrorCode.NOT_READY.value  # configured, not active
    assert fusion.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert inference.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert ask(client).error_code == ErrorCode.NO_SCENE.value
    stream(ros, scene, fusion)
    version = fusion.fusion.stats["scene_version"]
    wait_for(lambda: ask(client, max_new_tokens=1).scene_version == version, 30,
             "the inference node to see the fused scene")

    response = ask(client, "where is the chair ?", task="ground", return_masks=True,
                   return_points=True)
    assert response.success, response.message
    assert response.header.frame_id == "map" and response.scene_version == version
    assert len(response.objects) == 2 and response.tokens_generated == 2
    lo, hi = fusion.fusion.bounds
    info = response.reference_camera_info
    assert (info.width, info.height) == (160, 120)
    for obj in response.objects:
        c = obj.bbox.center.position
        assert np.all(np.array([c.x, c.y, c.z]) >= lo - 1) and np.all(
            np.array([c.x, c.y, c.z]) <= hi + 1)
        assert min(obj.bbox.size.x, obj.bbox.size.y, obj.bbox.size.z) > 0
        assert (obj.mask.width, obj.mask.height, obj.mask.encoding) == (160, 120, "mono8")
        points, _ = conv.point_cloud_arrays(obj.points)
        assert len(points) > 0
        mask = np.frombuffer(bytes(obj.mask.data), np.uint8).reshape(120, 160)
        if obj.roi.width:
            assert mask[obj.roi.y_offset:obj.roi.y_offset + obj.roi.height,
                        obj.roi.x_offset:obj.roi.x_offset + obj.roi.width].any()
            assert_mask_lies_on_points(mask, points, response)
    assert response.prefill_ms > 0 and response.total_ms >= response.prefill_ms

    assert ask(client, "").error_code == ErrorCode.BAD_REQUEST.value
    assert ask(client, task="dance").error_code == ErrorCode.BAD_REQUEST.value
    nan_point = Point(x=float("nan"), y=0.0, z=0.0)
    assert ask(client, prompt_points=[nan_point]).error_code == ErrorCode.BAD_REQUEST.value
    clicked = ask(client, prompt_points=[Point(x=1.0, y=1.0, z=0.5)])
    assert clicked.success, clicked.message

    # Busy and timeout: a queue of one, with the worker held on its first request until all
    # four requests have reached the engine. Four fresh clients are discovered one after
    # another, so their requests can arrive further apart than a 0.3 s timeout (seen in CI:
    # four TIMEOUTs and no BUSY).
    engine = inference.engine
    engine.config.queue_size = 1
    engine.config.request_timeout_s = 0.3
    busy_before = engine.counts[ErrorCode.BUSY.value]
    release = threading.Event()
    snapshot_source = engine._snapshot_source  # noqa: SLF001

    def held_snapshot():
        release.wait(60)
        return snapshot_source()

    def reached_engine() -> int:
        return (engine.counts[ErrorCode.BUSY.value] - busy_before
                + len(engine._queue) + (engine._running_job is not None))  # noqa: SLF001

    engine._snapshot_source = held_snapshot  # noqa: SLF001
    try:
        futures = [client.create_client(AskScene, "ask_scene").call_async(
            AskScene.Request(question="what is on the table ?", max_new_tokens=500))
            for _ in range(4)]
        wait_for(lambda: reached_engine() == 4, 60, "four requests at the engine")
    finally:
        release.set()
        engine._snapshot_source = snapshot_source  # noqa: SLF001
    wait_for(lambda: all(f.done() for f in futures), 60, "four concurrent answers")
    codes = sorted(f.result().error_code for f in futures)
    assert codes.count(ErrorCode.BUSY.value) >= 1 and ErrorCode.TIMEOUT.value in codes, codes
    inference.engine.config.request_timeout_s = 30.0
    assert ask(client).success  # still answering afterwards


def test_action_streams_feedback_and_cancel_stops_generation(ros, scene, grounding_model):
    fusion, inference = fused_pair(ros, scene, grounding_model)
    fusion.trigger_activate()
    inference.trigger_activate()
    stream(ros, scene, fusion)
    client = ros.node("action_client")
    action = ActionClient(client, AskSceneAction, "ask_scene")
    assert action.wait_for_server(timeout_sec=10)

    def send(max_tokens: int, feedback: list):
        goal = AskSceneAction.Goal(question="what is on the table ?", max_new_tokens=max_tokens)
        future = action.send_goal_async(goal, feedback_callback=lambda f: feedback.append(
            f.feedback))
        handle = wait_for(lambda: future.done() and future.result(), 20, "goal accepted")
        return handle

    feedback: list = []
    handle = send(3, feedback)
    result_future = handle.get_result_async()
    result = wait_for(lambda: result_future.done() and result_future.result(), 30, "result")
    assert result.result.success and result.result.tokens_generated == 3
    wait_for(lambda: any(f.tokens_generated == 3 for f in feedback), 10, "decoding feedback")
    assert {f.stage for f in feedback} >= {"queued", "decoding"}

    # Cancel mid-generation: generation really stops well before its limit.
    inference.engine.config.max_new_tokens_limit = 2000
    feedback = []
    handle = send(2000, feedback)
    wait_for(lambda: any(f.tokens_generated >= 5 for f in feedback), 30, "generation started")
    cancel = handle.cancel_goal_async()
    wait_for(cancel.done, 10, "cancel accepted")
    result_future = handle.get_result_async()
    result = wait_for(lambda: result_future.done() and result_future.result(), 30, "result")
    assert result.result.error_code == ErrorCode.CANCELED.value
    assert 5 <= result.result.tokens_generated < 2000


def test_encoder_mismatch_is_a_model_error(ros, scene, grounding_model):
    other = BuiltinPatchEncoder(BuiltinEncoderConfig(), seed=5)
    fusion, inference = fused_pair(ros, scene, grounding_model, encoder=other)
    fusion.trigger_activate()
    inference.trigger_activate()
    stream(ros, scene, fusion)
    client = ros.node("mismatch_client")
    response = wait_for(lambda: (r := ask(client)).error_code != ErrorCode.NO_SCENE.value and r,
                        30, "patches to arrive")
    assert response.error_code == ErrorCode.MODEL_ERROR.value
    assert "patch encoder" in response.message


def test_error_codes_match_the_interface():
    declared = {getattr(AskScene.Response, n) for n in dir(AskScene.Response)
                if n.startswith("ERROR_")}
    assert declared == {code.value for code in ErrorCode}



def test_nodes_in_one_process_share_the_snapshot_object(ros, scene, grounding_model):
    fusion = start(ros, FusionNode(encoder=grounding_model.patch_encoder, context=ros.context,
                                   parameter_overrides=[
                                       Parameter("qos_reliability", value="reliable"),
                                       Parameter("queue_size", value=50)]))
    inference = start(ros, InferenceNode(
        model=grounding_model, context=ros.context,
        snapshot_source=lambda: fusion.fusion.snapshot() if fusion.fusion else None,
        parameter_overrides=[Parameter("max_new_tokens", value=2)]))
    for node in (fusion, inference):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    stream(ros, scene, fusion)
    response = ask(ros.node("composed_client"))
    assert response.success and response.scene_version == fusion.fusion.stats["scene_version"]
    # No copy: the engine reads the very object the fusion core cached for this version.
    assert inference.engine._snapshot_source() is fusion.fusion.snapshot()  # noqa: SLF001


def test_fusion_node_in_another_process(ros, scene, tmp_path):
    checkpoint = tmp_path / "model"
    build_tiny_scene_llm(CORPUS, vocab_size=300).save_pretrained(checkpoint)
    fusion = subprocess.Popen(
        [*node_command("fusion_node"), "--ros-args", "-p", "qos_reliability:=reliable",
         "-p", "queue_size:=50", "-p", "patches_rate_hz:=2.0",
         "-p", f"patch_encoder:={checkpoint}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        inference = start(ros, InferenceNode(context=ros.context, parameter_overrides=[
            Parameter("checkpoint", value=str(checkpoint)),
            Parameter("max_new_tokens", value=2)]))
        assert inference.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert inference.trigger_activate() == TransitionCallbackReturn.SUCCESS
        camera = Camera(ros)
        wait_for(lambda: fusion.poll() is not None or camera.subscribed(), 60,
                 "the fusion process to subscribe")
        assert fusion.poll() is None, fusion.stdout.read()
        for frame in scene.frames:
            camera.send(frame)
            time.sleep(0.05)
        client = ros.node("remote_client")
        # Each integrated frame bumps the scene version by one.
        watcher = StatusWatcher(ros)

        last_received = [-1]

        def settled():
            # A KEEP_LAST reader may lose samples under load: wait until delivery stops and
            # everything delivered is processed.
            status = watcher.latest
            if status is None or status.frames_received < 5:
                return False
            stable = status.frames_received == last_received[0]
            last_received[0] = status.frames_received
            time.sleep(0.6)
            return (stable and status.frames_integrated + status.frames_dropped
                    == status.frames_received and status)

        try:
            status = wait_for(settled, 60, "the fusion process to fuse the stream")
        except AssertionError as exc:
            latest = watcher.latest
            raise AssertionError(f"{exc}: last status received "
                                 f"{latest and latest.frames_received}, integrated "
                                 f"{latest and latest.frames_integrated}, drops "
                                 f"{latest and watcher.drops()}") from None
        assert status.frames_integrated >= 5, watcher.drops()
        # The answer is about the latest fused scene, received through ScenePatches.
        response = wait_for(lambda: (r := ask(client)).success
                            and r.scene_version == status.scene_version and r, 60,
                            "an answer about the latest fused scene")
        assert response.header.frame_id == "map"
    finally:
        interrupt(fusion)
    assert fusion.returncode == 0, fusion.stdout.read()


def test_inference_node_alone_answers_without_other_events(ros, scene, grounding_model):
    """Nothing else in the executor: the engine's thread itself must wake the executor."""
    from scene_llm_ros.fusion.scene import SceneFusion

    fusion = SceneFusion(encoder=grounding_model.patch_encoder)
    for frame in scene.frames[:10]:
        fusion.integrate(frame)
    inference = start(ros, InferenceNode(model=grounding_model, context=ros.context,
                                         snapshot_source=fusion.snapshot,
                                         parameter_overrides=[
                                             Parameter("max_new_tokens", value=2)]))
    inference.trigger_configure()
    inference.trigger_activate()
    client = ros.node("lonely_client")
    started = time.monotonic()
    response = call(client, AskScene, "ask_scene",
                    AskScene.Request(question="what is on the table ?"), timeout=10.0)
    assert response.success and time.monotonic() - started < 10.0
