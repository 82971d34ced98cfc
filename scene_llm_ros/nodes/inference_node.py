"""inference_node: answers AskScene (service and action) over the fused scene (lifecycle node).

The model loads on configure and is released on cleanup (GPU memory freed). Requests go
through :class:`~scene_llm_ros.inference.engine.InferenceEngine`: validated, queued (BUSY
beyond ``queue_size``), answered on one worker thread with a timeout, while the executor keeps
serving (callbacks are coroutines awaiting the engine). The scene comes from ``scene/patches``
(ScenePatches from a fusion node in another process) or, composed in one process, straight
from the fusion core without copies.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from concurrent.futures import Future as ConcurrentFuture

import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future as RosFuture
from sensor_msgs.msg import Image, RegionOfInterest
from visualization_msgs.msg import Marker, MarkerArray

from scene_llm_ros.action import AskScene as AskSceneAction
from scene_llm_ros.errors import SceneLlmError
from scene_llm_ros.fusion.snapshot import SceneSnapshot
from scene_llm_ros.inference.engine import EngineConfig, Feedback, InferenceEngine
from scene_llm_ros.inference.requests import AskOutcome, AskRequest, ErrorCode
from scene_llm_ros.model.errors import SceneFeatureError
from scene_llm_ros.model.modeling_scene_llm import SceneLlm
from scene_llm_ros.msg import GroundedObject, ScenePatches
from scene_llm_ros.nodes import conversions as conv
from scene_llm_ros.nodes import topics
from scene_llm_ros.nodes.lifecycle import WorkerLifecycleNode, run_standalone
from scene_llm_ros.nodes.logging_bridge import forward_python_logging
from scene_llm_ros.nodes.parameters import Param, declare, values
from scene_llm_ros.srv import AskScene

try:  # vision_msgs has no PyPI wheel; on a robot Detection3DArray is published too
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose
except ImportError:
    Detection3DArray = None

PARAMS = (
    Param("checkpoint", "embedded", "Model checkpoint directory (SceneLlm.save_pretrained), "
          "or 'embedded' for the default model shipped with the package"),
    Param("device", "cpu", "Torch device: cpu or cuda:N"),
    Param("dtype", "float32", "float32, bfloat16 or float16"),
    Param("quantization", "", "'' (none), '4bit' (NF4) or '8bit' bitsandbytes LLM loading"),
    Param("lora_path", "", "LoRA adapter directory applied to the LLM ('' = none)"),
    Param("max_new_tokens", 64, "Generation limit when a request gives 0", 1, 4096),
    Param("max_new_tokens_limit", 512, "Largest limit a request may ask for", 1, 4096),
    Param("num_beams", 1, "1 = greedy (streams feedback), more = beam search", 1, 16),
    Param("queue_size", 4, "Requests that may wait while one runs (more get BUSY)", 0, 1000),
    Param("request_timeout_s", 30.0, "Requests not answered in time get TIMEOUT", 0.1, 3600.0),
    Param("max_question_chars", 2000, "Longer questions are a BAD_REQUEST", 1, 100000),
    Param("max_prompt_points", 16, "More clicked points are a BAD_REQUEST", 0, 1024),
)


class PatchesSnapshotSource:
    """The latest ScenePatches as a snapshot, converted once per scene version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._message: ScenePatches | None = None
        self._snapshot: SceneSnapshot | None = None
        self.expected_encoder = ""

    def update(self, msg: ScenePatches) -> None:
        with self._lock:
            self._message = msg

    def __call__(self) -> SceneSnapshot | None:
        with self._lock:
            msg = self._message
            if msg is None:
                return None
            if self._snapshot is None or self._snapshot.scene_version != msg.scene_version:
                if self.expected_encoder and msg.encoder != self.expected_encoder:
                    raise SceneFeatureError(
                        f"the fusion node's patch encoder ({msg.encoder[:80]}) is not the "
                        f"model's ({self.expected_encoder[:80]}); set the fusion node's "
                        "patch_encoder parameter to the model checkpoint")
                self._snapshot = conv.snapshot_from_patches(msg)
            return self._snapshot


def _fill(result, outcome: AskOutcome):
    """Fill an AskScene service response or action result (same fields) from an outcome."""
    result.success = outcome.success
    result.error_code = outcome.error_code.value
    result.message = outcome.message
    result.answer = outcome.answer
    result.header = conv.header(outcome.scene_stamp_ns, outcome.scene_frame)
    result.scene_version = outcome.scene_version
    result.encode_ms, result.prefill_ms = outcome.encode_ms, outcome.prefill_ms
    result.decode_ms, result.total_ms = outcome.decode_ms, outcome.total_ms
    result.tokens_generated = outcome.tokens_generated
    result.prefix_cache_hit = outcome.prefix_cache_hit
    reference = outcome.reference
    if reference is not None:
        result.reference_camera_info = conv.camera_info_msg(
            reference.intrinsics, reference.stamp_ns, reference.frame_id)
        result.reference_camera_pose = conv.pose_msg(reference.T_world_cam)
    for obj in outcome.objects:
        msg = GroundedObject(id=obj.id, label=obj.label, score=float(obj.score))
        msg.bbox.center.position = conv.point_msg(obj.center)
        msg.bbox.center.orientation.w = 1.0
        msg.bbox.size.x, msg.bbox.size.y, msg.bbox.size.z = (float(v) for v in obj.size)
        if obj.mask is not None and reference is not None:
            msg.mask = conv.image_msg(obj.mask, "mono8", reference.stamp_ns, reference.frame_id)
            x, y, w, h = obj.roi
            msg.roi = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)
        if obj.points is not None:
            msg.points = conv.point_cloud_msg(obj.points, obj.colors, outcome.scene_stamp_ns,
                                              outcome.scene_frame)
        result.objects.append(msg)
    return result


def _request(msg) -> AskRequest:
    points = np.array([[p.x, p.y, p.z] for p in msg.prompt_points], np.float64).reshape(-1, 3)
    return AskRequest(question=msg.question, task=msg.task, prompt_points=points,
                      max_new_tokens=msg.max_new_tokens, return_masks=msg.return_masks,
                      return_points=msg.return_points)


class InferenceNode(WorkerLifecycleNode):
    """Lifecycle adapter between AskScene and :class:`InferenceEngine`.

    :param snapshot_source: the fusion core's ``snapshot`` method when composed in one
        process; None subscribes to ``scene/patches``.
    :param model: an already loaded model (composition, tests); None loads ``checkpoint``.
    """

    def __init__(self, node_name: str = "inference_node", *,
                 snapshot_source: Callable[[], SceneSnapshot | None] | None = None,
                 model: SceneLlm | None = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        declare(self, PARAMS)
        self._injected_source = snapshot_source
        self._injected_model = model
        self.engine: InferenceEngine | None = None
        self._goal_cancels: dict[bytes, threading.Event] = {}
        self._patches_subscription = None
        self._markers = self._mask = self._detections = None
        # The service and action live as long as the node (answering NOT_READY while
        # unconfigured): destroying them under a spinning executor races its wait set.
        requests = ReentrantCallbackGroup()
        self.create_service(AskScene, topics.ASK_SCENE, self._on_ask, callback_group=requests)
        self._action = ActionServer(
            self, AskSceneAction, topics.ASK_SCENE, self._on_goal_execute, callback_group=requests,
            goal_callback=lambda _goal: GoalResponse.ACCEPT, cancel_callback=self._on_cancel)
        self._wake = self.create_guard_condition(lambda: None)
        self._detach_logging = forward_python_logging(
            self.get_logger(), "scene_llm_ros.inference", "scene_llm_ros.model",
            "scene_llm_ros.grounding")

    # -- lifecycle -------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = values(self, PARAMS)
        try:
            config = EngineConfig(
                queue_size=p["queue_size"], request_timeout_s=p["request_timeout_s"],
                max_question_chars=p["max_question_chars"],
                max_prompt_points=p["max_prompt_points"], max_new_tokens=p["max_new_tokens"],
                max_new_tokens_limit=p["max_new_tokens_limit"], num_beams=p["num_beams"])
            model = self._injected_model or self._load_model(p)
        except (SceneLlmError, ValueError, OSError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        source = self._injected_source
        if source is None:
            source = PatchesSnapshotSource()
            source.expected_encoder = model.patch_encoder.identity if model.patch_encoder else ""
            latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._patches_subscription = self.create_subscription(
                ScenePatches, topics.SCENE_PATCHES, source.update, latched)
        self.engine = InferenceEngine(source, config, model=model)
        self._markers = self.create_lifecycle_publisher(MarkerArray, topics.GROUNDING_MARKERS, 10)
        self._mask = self.create_lifecycle_publisher(Image, topics.GROUNDING_MASK, 10)
        self._detections = (self.create_lifecycle_publisher(
            Detection3DArray, topics.GROUNDING_DETECTIONS, 10) if Detection3DArray else None)
        self.get_logger().info(f"configured: model on {p['device']}, queue {p['queue_size']}, "
                               f"timeout {p['request_timeout_s']} s")
        return TransitionCallbackReturn.SUCCESS

    def _load_model(self, p: dict) -> SceneLlm:
        if not p["checkpoint"]:
            raise ValueError("parameter 'checkpoint' is empty: set it to a model directory or "
                             "'embedded'")
        return SceneLlm.from_pretrained(p["checkpoint"], device=p["device"], dtype=p["dtype"],
                                        quantization=p["quantization"] or None,
                                        lora_path=p["lora_path"] or None)

    def _start_worker(self) -> None:
        self.engine.start()

    def _stop_worker(self) -> None:
        self.engine.stop()

    def _release(self) -> None:
        if self.engine is None:
            return
        self.engine.stop()
        model = self.engine.model
        self.engine.set_model(None)
        self.engine = None
        if self._patches_subscription is not None:
            self.destroy_subscription(self._patches_subscription)
            self._patches_subscription = None
        for publisher in (self._markers, self._mask, self._detections):
            if publisher is not None:
                self.destroy_publisher(publisher)
        self._markers = self._mask = self._detections = None
        del model
        gc.collect()
        try:
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give the GPU memory back to other processes
        except ImportError:
            pass

    # -- requests ----------------------------------------------------------------------------

    def _await(self, future: ConcurrentFuture) -> RosFuture:
        """An rclpy future completed with the engine's outcome, for a coroutine to await."""
        ros_future = RosFuture(executor=self.executor)

        def resolve(done: ConcurrentFuture) -> None:
            ros_future.set_result(done.result())
            # The executor only resumes a waiting coroutine when it wakes up; the engine's
            # thread must wake it, or the answer waits for the next unrelated event.
            self._wake.trigger()

        future.add_done_callback(resolve)
        return ros_future

    async def _on_ask(self, request: AskScene.Request, response: AskScene.Response):
        if self.engine is None:
            return _fill(response, AskOutcome.failure(ErrorCode.NOT_READY,
                                                      "node is not configured"))
        try:
            outcome = await self._await(self.engine.submit(_request(request)))
            self._publish_grounding(outcome)
            return _fill(response, outcome)
        except Exception as exc:  # noqa: BLE001 - the executor must keep serving
            return _fill(response, self._internal_error(exc))

    def _internal_error(self, exc: Exception) -> AskOutcome:
        self.get_logger().error(f"AskScene failed: {type(exc).__name__}: {exc}",
                                throttle_duration_sec=5.0)
        return AskOutcome.failure(ErrorCode.MODEL_ERROR, f"{type(exc).__name__}: {exc}")

    def _on_cancel(self, goal_handle) -> CancelResponse:
        event = self._goal_cancels.get(bytes(goal_handle.goal_id.uuid))
        if event is not None:
            event.set()
        return CancelResponse.ACCEPT

    async def _on_goal_execute(self, goal_handle):
        result = AskSceneAction.Result()
        if self.engine is None:
            goal_handle.abort()
            return _fill(result, AskOutcome.failure(ErrorCode.NOT_READY,
                                                    "node is not configured"))
        key = bytes(goal_handle.goal_id.uuid)
        cancel = self._goal_cancels[key] = threading.Event()

        def feedback(progress: Feedback) -> None:
            goal_handle.publish_feedback(AskSceneAction.Feedback(
                stage=progress.stage, partial_answer=progress.partial_answer,
                tokens_generated=progress.tokens_generated))

        try:
            outcome = await self._await(self.engine.submit(_request(goal_handle.request),
                                                           on_feedback=feedback, cancel=cancel))
        except Exception as exc:  # noqa: BLE001 - the executor must keep serving
            outcome = self._internal_error(exc)
        finally:
            self._goal_cancels.pop(key, None)
        if outcome.error_code is ErrorCode.CANCELED and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif outcome.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        try:
            self._publish_grounding(outcome)
        except Exception as exc:  # noqa: BLE001 - visualisation must not lose the answer
            self._internal_error(exc)
        return _fill(result, outcome)

    # -- visualisation -----------------------------------------------------------------------

    def _publish_grounding(self, outcome: AskOutcome) -> None:
        marker_pub, mask_pub, detections_pub = self._markers, self._mask, self._detections
        if not outcome.success or not outcome.objects or marker_pub is None or mask_pub is None:
            return
        header = conv.header(outcome.scene_stamp_ns, outcome.scene_frame)
        markers = MarkerArray(markers=[Marker(header=header, action=Marker.DELETEALL)])
        for i, obj in enumerate(outcome.objects):
            box = Marker(header=header, ns="boxes", id=i, type=Marker.CUBE, action=Marker.ADD)
            box.pose.position = conv.point_msg(obj.center)
            box.pose.orientation.w = 1.0
            box.scale.x, box.scale.y, box.scale.z = (float(v) for v in obj.size)
            box.color.r, box.color.g, box.color.a = 1.0, 0.3, 0.35
            text = Marker(header=header, ns="labels", id=i, type=Marker.TEXT_VIEW_FACING,
                          action=Marker.ADD, text=f"{obj.label} {obj.score:.2f}")
            text.pose.position = conv.point_msg(obj.center + [0, 0, obj.size[2] / 2 + 0.1])
            text.pose.orientation.w = 1.0
            text.scale.z = 0.15
            text.color.r = text.color.g = text.color.b = text.color.a = 1.0
            markers.markers += [box, text]
        marker_pub.publish(markers)
        masks = [o.mask for o in outcome.objects if o.mask is not None]
        if masks and outcome.reference is not None:
            mask_pub.publish(conv.image_msg(np.maximum.reduce(masks), "mono8",
                                              outcome.reference.stamp_ns,
                                              outcome.reference.frame_id))
        if detections_pub is not None:
            detections = Detection3DArray(header=header)
            for obj in outcome.objects:
                detection = Detection3D(header=header, id=obj.id)
                detection.bbox.center.position = conv.point_msg(obj.center)
                detection.bbox.center.orientation.w = 1.0
                detection.bbox.size.x, detection.bbox.size.y, detection.bbox.size.z = (
                    float(v) for v in obj.size)
                hypothesis = ObjectHypothesisWithPose()
                hypothesis.hypothesis.class_id = obj.label
                hypothesis.hypothesis.score = float(obj.score)
                detection.results.append(hypothesis)
                detections.detections.append(detection)
            detections_pub.publish(detections)


def main(args: list[str] | None = None) -> None:
    """Run the node alone; it configures and activates itself."""
    run_standalone(InferenceNode, args, threads=4)
