"""Bag replay over real ROS topics into fusion_node + inference_node, and AskScene like a planner.

:class:`EvaluationSession` composes, in one process and one private rclpy context, the fusion
and inference nodes (as ``scene-llm run`` does: the model's patch encoder is shared and the
inference node reads the fusion core's snapshots directly), a ``bag_player`` node publishing
the bag's messages, and a ``planner`` node calling the ``ask_scene`` service. All of them live
in their own namespace, so two evaluations on one machine never see each other's topics.

Poses are published as one ``geometry_msgs/PoseStamped`` per image on the fusion node's
``pose`` topic (computed offline from the bag's TF chain or pose topic), because ``tf2_msgs``
has no PyPI wheel; the fusion node runs with ``pose_source: topic``.
"""
from __future__ import annotations

import array
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header

from scene_llm_ros.evaluation.answers import AskResult, PredictedObject, ReferenceCamera
from scene_llm_ros.evaluation.errors import ReplayError
from scene_llm_ros.evaluation.replay_plan import ReplayFrame
from scene_llm_ros.nodes import conversions as conv
from scene_llm_ros.nodes import topics
from scene_llm_ros.srv import AskScene

_LOG = logging.getLogger(__name__)

# Reliable and deep enough for a burst: a replay must not lose messages in transport (the
# fusion node's subscriptions use qos_reliability=reliable for the same reason).
_RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
_POLL_S = 0.002  # back-pressure polling; one integration takes milliseconds or more


def _time(stamp: Any) -> Time:
    return Time(sec=int(stamp.sec), nanosec=int(stamp.nanosec))


def _header(header: Any) -> Header:
    return Header(stamp=_time(header.stamp), frame_id=str(header.frame_id))


def bag_image_msg(msg: Any) -> Image:
    """A ``sensor_msgs/Image`` carrying a bag message's own bytes (no re-encoding)."""
    data = array.array("B")
    data.frombytes(np.asarray(msg.data, np.uint8).tobytes())
    return Image(header=_header(msg.header), height=int(msg.height), width=int(msg.width),
                 encoding=str(msg.encoding), is_bigendian=int(msg.is_bigendian),
                 step=int(msg.step), data=data)


def bag_camera_info_msg(msg: Any) -> CameraInfo:
    """A ``sensor_msgs/CameraInfo`` equal to a bag message."""
    roi = msg.roi
    return CameraInfo(
        header=_header(msg.header), height=int(msg.height), width=int(msg.width),
        distortion_model=str(msg.distortion_model),
        d=[float(v) for v in np.asarray(msg.d).ravel()],
        k=[float(v) for v in np.asarray(msg.k).ravel()],
        r=[float(v) for v in np.asarray(msg.r).ravel()],
        p=[float(v) for v in np.asarray(msg.p).ravel()],
        binning_x=int(msg.binning_x), binning_y=int(msg.binning_y),
        roi=RegionOfInterest(x_offset=int(roi.x_offset), y_offset=int(roi.y_offset),
                             height=int(roi.height), width=int(roi.width),
                             do_rectify=bool(roi.do_rectify)))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value


def file_parameters(path: str | Path, node_name: str, namespace: str) -> dict[str, Any]:
    """A node's parameters from a ROS 2 params file (``/**``, then ``node_name``, then its
    fully qualified name), flattened to dotted names.

    The session's nodes live in a private namespace, which a params file written for
    ``fusion_node:`` would not match if rcl applied it; reading it here keeps such files valid.

    :raises ReplayError: when the file is unreadable or not a params file.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ReplayError(f"--params {path}: cannot read it: {exc}") from exc
    if not isinstance(document, dict):
        raise ReplayError(f"--params {path}: expected node sections with ros__parameters")
    found: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}", f"{namespace}/{node_name}"):
        section = document.get(key)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            _flatten("", section["ros__parameters"], found)
    return found


def _response_result(response: AskScene.Response, latency_ms: float) -> AskResult:
    reference = None
    info = response.reference_camera_info
    if info.width > 0 and info.height > 0:
        try:
            reference = ReferenceCamera(
                intrinsics=conv.info_to_intrinsics(info),
                T_world_cam=conv.pose_to_matrix(response.reference_camera_pose),
                stamp_ns=conv.stamp_to_ns(info.header.stamp), frame_id=info.header.frame_id)
        except (ValueError, ArithmeticError) as exc:  # a bad camera must not end the run
            _LOG.warning("unusable reference camera in a response: %s", exc)
    objects = []
    for obj in response.objects:
        mask = None
        if obj.mask.width > 0 and obj.mask.height > 0:
            rows = np.frombuffer(bytes(obj.mask.data), np.uint8).reshape(obj.mask.height, -1)
            mask = rows[:, :obj.mask.width].copy()
        c, s = obj.bbox.center.position, obj.bbox.size
        objects.append(PredictedObject(
            id=obj.id, label=obj.label, score=float(obj.score),
            center=np.array([c.x, c.y, c.z]), size=np.array([s.x, s.y, s.z]),
            roi=(obj.roi.x_offset, obj.roi.y_offset, obj.roi.width, obj.roi.height),
            mask=mask))
    return AskResult(success=response.success, error_code=response.error_code,
                     message=response.message, answer=response.answer, objects=objects,
                     reference=reference, scene_frame=response.header.frame_id,
                     scene_version=int(response.scene_version),
                     tokens_generated=int(response.tokens_generated), latency_ms=latency_ms,
                     stage_ms={"encode": float(response.encode_ms),
                               "prefill": float(response.prefill_ms),
                               "decode": float(response.decode_ms),
                               "total": float(response.total_ms)})


class EvaluationSession:
    """fusion_node + inference_node + a bag player + a planner, in one process.

    Use as a context manager: entering starts the nodes (the inference node loads the model
    on configure), leaving shuts everything down.

    :param checkpoint: model directory for the inference node's ``checkpoint`` parameter.
    :param scene_frame: the fusion node's ``scene_frame`` (the frame of the replayed poses).
    :param namespace: namespace of all nodes; None makes a unique one.
    :param params_file: ROS params file with ``fusion_node`` / ``inference_node`` sections.
    :param fusion_params: fusion node parameters, applied over the file's.
    :param inference_params: inference node parameters, applied over the file's.
    """

    def __init__(self, *, checkpoint: str | Path, scene_frame: str = "map",
                 namespace: str | None = None, params_file: str | Path | None = None,
                 fusion_params: dict[str, Any] | None = None,
                 inference_params: dict[str, Any] | None = None) -> None:
        self.namespace = namespace or f"/scene_llm_eval_{uuid.uuid4().hex[:8]}"
        if not self.namespace.startswith("/"):
            self.namespace = "/" + self.namespace
        self._checkpoint = str(checkpoint)
        self._scene_frame = scene_frame
        self._params_file = params_file
        self._fusion_params = dict(fusion_params or {})
        self._inference_params = dict(inference_params or {})
        self._context: rclpy.Context | None = None
        self._executor: MultiThreadedExecutor | None = None
        self._thread: threading.Thread | None = None
        self._nodes: list = []
        self.fusion = self.inference = None

    # -- start and stop ----------------------------------------------------------------------

    def __enter__(self) -> EvaluationSession:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _parameters(self, node_name: str, forced: dict[str, Any]) -> list[Parameter]:
        values = file_parameters(self._params_file, node_name, self.namespace) \
            if self._params_file else {}
        values.update(forced)
        return [Parameter(name, value=value) for name, value in values.items()]

    def start(self) -> None:
        """Create, configure and activate the nodes and spin them in a background thread.

        :raises ReplayError: when a node fails to configure (e.g. the checkpoint cannot be
            loaded; the node's log says why).
        """
        from scene_llm_ros.nodes.composition import CompositionError, compose

        # A private context: the session neither needs nor disturbs a global rclpy.init, and
        # Ctrl-C stays a KeyboardInterrupt in the caller.
        self._context = rclpy.Context()
        rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        ns, ctx = self.namespace, self._context
        # The replay's needs win over the params file: reliable QoS so nothing is lost in
        # transport, poses from the 'pose' topic this session publishes, and no ScenePatches
        # traffic (the inference node reads the fusion core directly).
        forced = {"qos_reliability": "reliable", "pose_source": "topic",
                  "pose_topic_type": "pose_stamped", "scene_frame": self._scene_frame,
                  "patches_rate_hz": 0.0, **self._fusion_params}
        try:
            nodes = compose(
                namespace=ns, context=ctx,
                fusion_parameters=self._parameters("fusion_node", forced),
                inference_parameters=self._parameters(
                    "inference_node", {"checkpoint": self._checkpoint, **self._inference_params}))
        except CompositionError as exc:
            raise ReplayError(f"{exc} (checkpoint {self._checkpoint})") from exc
        self.fusion, self.inference = nodes.fusion, nodes.inference
        self._nodes += [nodes.fusion, nodes.inference]

        player = rclpy.create_node("bag_player", namespace=ns, context=ctx)
        planner = rclpy.create_node("planner", namespace=ns, context=ctx)
        self._nodes += [player, planner]
        self._color = player.create_publisher(Image, topics.COLOR_IMAGE, _RELIABLE)
        self._depth = player.create_publisher(Image, topics.DEPTH_IMAGE, _RELIABLE)
        self._info = player.create_publisher(CameraInfo, topics.CAMERA_INFO, _RELIABLE)
        self._pose = player.create_publisher(PoseStamped, topics.POSE, _RELIABLE)
        self._client = planner.create_client(AskScene, topics.ASK_SCENE)

        self._executor = MultiThreadedExecutor(num_threads=6, context=ctx)
        for node in self._nodes:
            self._executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, name="evaluation-executor",
                                        daemon=True)
        self._thread.start()
        self._wait_for_connections()

    def _spin(self) -> None:
        """Spin until shutdown; a callback's exception is logged instead of ending the spin
        (``executor.spin()`` would re-raise it and leave every node deaf)."""
        executor, context = self._executor, self._context
        while context.ok() and executor is self._executor:
            try:
                executor.spin_once(timeout_sec=0.1)
            except ExternalShutdownException:
                return
            except Exception:  # noqa: BLE001 - keep serving the other callbacks
                _LOG.exception("a callback of the evaluation session raised")

    def _wait_for_connections(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        publishers = (self._color, self._depth, self._info, self._pose)
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() >= 1 for p in publishers) \
                    and self._client.service_is_ready():
                return
            time.sleep(0.01)
        raise ReplayError(f"the session's nodes did not discover each other within "
                          f"{timeout_s:.0f} s (DDS discovery; check ROS_DOMAIN_ID and "
                          "ROS_AUTOMATIC_DISCOVERY_RANGE)")

    def close(self) -> None:
        """Shut the nodes down and release the context (idempotent)."""
        executor, self._executor = self._executor, None  # ends the spin loop
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        for node in reversed(self._nodes):
            if hasattr(node, "trigger_shutdown"):
                try:
                    node.trigger_shutdown()
                except Exception as exc:  # noqa: BLE001 - keep releasing the others
                    _LOG.warning("%s did not shut down cleanly: %s", node.get_name(), exc)
            node.destroy_node()
        self._nodes = []
        if self._context is not None:
            rclpy.try_shutdown(context=self._context)
            self._context = None

    # -- replay ------------------------------------------------------------------------------

    def _done(self) -> int:
        """Frames the fusion node has finished with: integrated or dropped for a reason."""
        stats = self.fusion.pipeline.stats()
        return stats.frames_integrated + stats.frames_dropped

    def _publish(self, frame: ReplayFrame) -> None:
        # The pose first: the fusion node's worker waits for it anyway, but it is never late.
        self._pose.publish(PoseStamped(header=conv.header(frame.stamp_ns, self._scene_frame),
                                       pose=conv.pose_msg(frame.T_world_cam)))
        for info in frame.infos:
            self._info.publish(bag_camera_info_msg(info))
        self._color.publish(bag_image_msg(frame.color))
        self._depth.publish(bag_image_msg(frame.depth))

    def replay(self, frames: Iterable[ReplayFrame], *, rate: float | None,
               max_in_flight: int = 2, frame_timeout_s: float = 60.0,
               on_frame: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Publish ``frames``.

        :param rate: multiple of the recorded speed (log times); None publishes as fast as
            the fusion node takes them: the next frame goes out only while fewer than
            ``max_in_flight`` published frames are neither integrated nor dropped, so its
            queue never overflows and no frame is lost.
        :param frame_timeout_s: with back-pressure, how long one frame may stay unfinished
            before the replay goes on without it (counted in ``stalls``).
        :param on_frame: called with the number of frames published so far.
        :return: ``published``, ``stalls``, ``seconds``, ``mode``.
        """
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        start = time.monotonic()
        done_before = self._done()
        published = stalls = 0
        first_log_ns: int | None = None
        for frame in frames:
            if rate is None:
                waited_from = time.monotonic()
                while published - (self._done() - done_before) >= max_in_flight:
                    if time.monotonic() - waited_from > frame_timeout_s:
                        stalls += 1
                        _LOG.warning("frame %d not finished by the fusion node after %.0f s; "
                                     "going on", published - max_in_flight + 1, frame_timeout_s)
                        break
                    time.sleep(_POLL_S)
            else:
                first_log_ns = frame.log_time_ns if first_log_ns is None else first_log_ns
                due = start + (frame.log_time_ns - first_log_ns) * 1e-9 / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self._publish(frame)
            published += 1
            if on_frame is not None:
                on_frame(published)
        return {"published": published, "stalls": stalls,
                "seconds": time.monotonic() - start,
                "mode": "as_fast_as_possible" if rate is None else f"rate x{rate:g}"}

    def wait_until_fused(self, published: int, timeout_s: float, *,
                         settle_s: float = 5.0) -> bool:
        """Wait until every published frame was integrated or dropped and the worker is idle.

        :param settle_s: give up early when nothing has changed for this long while no frame
            is queued: the frames still missing will never come (e.g. an image lost in
            transport at a real-time rate, so its partner waits in the synchroniser).
        :return: False when frames are still unaccounted for (they show as ``pending``).
        """
        deadline = time.monotonic() + timeout_s
        pipeline = self.fusion.pipeline
        last_state, last_change = None, time.monotonic()
        while time.monotonic() < deadline:
            stats = pipeline.stats()
            if stats.frames_received >= published and self._done() >= published:
                return pipeline.wait_until_idle(max(0.0, deadline - time.monotonic()))
            state = (stats.frames_received, stats.frames_integrated, stats.frames_dropped,
                     stats.queued)
            if state != last_state:
                last_state, last_change = state, time.monotonic()
            elif stats.queued == 0 and time.monotonic() - last_change >= settle_s:
                _LOG.warning("fusion settled with %d of %d published frames unaccounted for",
                             published - self._done(), published)
                return False
            time.sleep(0.01)
        return False

    def ingest(self) -> dict[str, Any]:
        """The fusion node's counters (as its SceneStatus reports them)."""
        status = self.fusion.status_msg()
        return {"received": int(status.frames_received),
                "integrated": int(status.frames_integrated),
                "dropped": int(status.frames_dropped),
                "dropped_by_reason": dict(zip(status.drop_reasons,
                                              (int(c) for c in status.drop_counts),
                                              strict=True)),
                "keyframes": int(status.keyframes), "patch_tokens": int(status.patch_tokens),
                "tsdf_voxels": int(status.tsdf_voxels),
                "scene_version": int(status.scene_version),
                "integrate_ms_mean": round(float(status.integrate_ms), 2)}

    def surface(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The fused surface: float32 (N, 3) points in the scene frame, uint8 (N, 3) RGB,
        and their spacing (the TSDF voxel), metres."""
        snapshot = self.fusion.fusion.snapshot()
        return snapshot.points, snapshot.colors, float(snapshot.voxel_size_m)

    # -- questions ---------------------------------------------------------------------------

    def ask(self, question: str, *, task: str = "", max_new_tokens: int = 0,
            timeout_s: float = 120.0) -> AskResult:
        """Call ``ask_scene`` as a planner does and wait for the response.

        :return: the response; without one, a failed result with error code
            ``CLIENT_TIMEOUT`` (none within ``timeout_s``) or ``EXECUTOR_STOPPED``.
        """
        request = AskScene.Request(question=question, task=task, max_new_tokens=max_new_tokens,
                                   return_masks=True, return_points=False)
        start = time.monotonic()
        future = self._client.call_async(request)
        finished = threading.Event()
        future.add_done_callback(lambda _future: finished.set())
        deadline = start + timeout_s
        while not finished.wait(0.1):
            if time.monotonic() > deadline:
                self._client.remove_pending_request(future)
                return AskResult.failed("CLIENT_TIMEOUT", f"no response within "
                                        f"{timeout_s:.0f} s", (time.monotonic() - start) * 1e3)
            if self._thread is None or not self._thread.is_alive():
                return AskResult.failed("EXECUTOR_STOPPED", "the session's executor stopped; "
                                        "no response can arrive",
                                        (time.monotonic() - start) * 1e3)
        latency_ms = (time.monotonic() - start) * 1e3
        return _response_result(future.result(), latency_ms)
