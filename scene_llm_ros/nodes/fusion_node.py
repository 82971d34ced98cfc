"""fusion_node: live RGB-D into a TSDF map and a 3D patch memory (lifecycle node).

Subscribes (remap them): ``color/image``, ``depth/image`` (registered to colour),
``color/camera_info``, and ``/tf`` + ``/tf_static`` or ``pose`` (PoseStamped or Odometry).
Publishes ``scene/points`` (PointCloud2), ``scene/status`` (SceneStatus), ``scene/patches``
(ScenePatches, transient local); serves ``scene/reset``, ``scene/save``, ``scene/load``.
Callbacks only buffer; the core's worker thread integrates (see :mod:`scene_llm_ros.ingest`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger

from scene_llm_ros.errors import SceneLlmError
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import PatchEncoder, load_patch_encoder, model_scene_tokens
from scene_llm_ros.fusion.keyframes import KeyframePolicy
from scene_llm_ros.fusion.scene import SceneFusion
from scene_llm_ros.ingest.config import IngestConfig
from scene_llm_ros.ingest.pipeline import IngestPipeline
from scene_llm_ros.ingest.poses import TFPoseSource, TopicPoseSource
from scene_llm_ros.msg import ScenePatches, SceneStatus
from scene_llm_ros.nodes import conversions as conv
from scene_llm_ros.nodes import topics
from scene_llm_ros.nodes.guard import guarded
from scene_llm_ros.nodes.input_executor import InputExecutor
from scene_llm_ros.nodes.lifecycle import WorkerLifecycleNode, run_standalone
from scene_llm_ros.nodes.logging_bridge import forward_python_logging
from scene_llm_ros.nodes.parameters import Param, declare, values
from scene_llm_ros.nodes.raw_image import parse_image
from scene_llm_ros.srv import LoadScene, SaveScene

try:  # tf2_msgs has no PyPI wheel; on a robot it is always there
    from tf2_msgs.msg import TFMessage
except ImportError:
    TFMessage = None

PARAMS = (
    Param("scene_frame", "map", "World frame of the map (REP-105); changing it resets the scene",
          dynamic=True),
    Param("camera_frame", "", "Expected optical frame of the images; '' accepts the images' own"),
    Param("pose_source", "auto", "'tf' (scene_frame -> image frame through /tf), 'topic' "
          "(the 'pose' topic), or 'auto' (tf where tf2_msgs is installed, else topic)"),
    Param("pose_topic_type", "pose_stamped", "Type of the 'pose' topic: pose_stamped or odometry"),
    Param("pose_body_frame", "", "Frame a PoseStamped gives the pose of ('' = the camera "
          "optical frame); chained to the camera through /tf_static otherwise"),
    Param("qos_reliability", "best_effort", "Image QoS reliability: best_effort (sensor data) "
          "or reliable"),
    Param("qos_depth", 5, "Image subscription queue depth", 1, 5),
    Param("slop_s", 0.02, "Largest stamp difference of paired colour/depth/info", 0.0, 1.0),
    Param("sync_buffer_size", 10, "Messages buffered per stream while waiting for a partner",
          1, 100),
    Param("queue_size", 5, "Frames waiting for a pose or the integrator (oldest dropped)", 1, 100),
    Param("pose_wait_s", 0.5, "How long a frame may wait for its pose", 0.0, 10.0),
    Param("pose_tolerance_s", 0.05, "After the wait, the nearest pose within this is used",
          0.0, 10.0),
    Param("time_jump_s", 1.0, "Stamps going back this far mean the stream restarted",
          0.001, 3600.0),
    Param("max_rate_hz", 0.0, "Integrate at most this many frames/s (0 = all)", 0.0, 1000.0,
          dynamic=True),
    Param("use_message_filters", True, "Use message_filters' synchroniser when installed"),
    Param("input_thread", True, "Take images, camera info, poses and /tf on a hidden internal "
          "node with its own executor thread (each message then costs about a tenth of what "
          "this node's executor spends on it); false keeps them on this node's executor"),
    Param("voxel_size_m", 0.04, "TSDF voxel edge", 0.005, 1.0),
    Param("block_resolution", 16, "TSDF voxels per block edge", 4, 32),
    Param("depth_max_m", 5.0, "Depth beyond this is ignored", 0.1, 100.0),
    Param("trunc_voxel_multiplier", 4.0, "TSDF truncation in voxels", 1.0, 32.0),
    Param("device", "CPU:0", "Open3D device of the TSDF (CPU:0, CUDA:0)"),
    Param("patch_voxel_size_m", 0.2, "3D patch memory voxel edge", 0.01, 5.0),
    Param("max_patch_tokens", 1024, "Token budget handed to the model", 1, 65536),
    Param("min_patch_valid_fraction", 0.1, "Valid depth a patch needs", 0.0, 1.0),
    Param("surface_weight_threshold", 3.0, "TSDF weight of observed surface", 0.0, 1000.0),
    Param("semantic_pixel_stride", 4, "Every n-th keyframe pixel carries the encoder's patch "
          "classes into the semantic map (encoders that classify only)", 1, 64),
    Param("keyframe_translation_m", 0.3, "Keyframe after moving this far", 0.0, 100.0),
    Param("keyframe_rotation_deg", 15.0, "Keyframe after turning this much", 0.0, 360.0),
    Param("keyframe_interval_s", 2.0, "Keyframe at least this often while moving", 0.0, 3600.0),
    Param("patch_encoder", "embedded", "The model's encoder: 'embedded' (the default model's), "
          "a model checkpoint or built-in encoder directory, a local Hugging Face CLIP/SigLIP "
          "directory, or 'builtin' (untrained weights)"),
    Param("encoder_layer", -2, "Hidden layer of a Hugging Face vision tower", -64, 64),
    Param("encoder_image_size", 0, "Input size of a Hugging Face vision tower (0 = its own)",
          0, 4096),
    Param("encoder_device", "cpu", "Torch device of the patch encoder (cpu, cuda:0)"),
    Param("status_rate_hz", 2.0, "SceneStatus publishing rate", 0.1, 100.0),
    Param("points_rate_hz", 1.0, "scene/points rate when the scene changed (0 = off)",
          0.0, 30.0),
    Param("points_voxel_size_m", 0.05, "Voxel downsampling of scene/points", 0.0, 1.0),
    Param("patches_rate_hz", 1.0, "scene/patches rate when the scene changed (0 = off)",
          0.0, 30.0),
)


# Poses are small and a lost one costs every frame near it: keep a deep reader history so
# a busy moment (integration holding the interpreter) does not overflow it.
_POSE_HISTORY = 1000


def _image_qos(reliability: str, depth: int) -> QoSProfile:
    if reliability not in ("best_effort", "reliable"):
        raise ValueError(f"qos_reliability must be best_effort or reliable, got {reliability!r}")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                     reliability=qos_profile_sensor_data.reliability,
                     durability=DurabilityPolicy.VOLATILE)
    if reliability == "reliable":
        qos.reliability = ReliabilityPolicy.RELIABLE
    return qos


def _downsample(points: np.ndarray, colors: np.ndarray,
                voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """One point (the first) per ``voxel`` cell."""
    if voxel <= 0 or len(points) == 0:
        return points, colors
    keys = np.floor(points / voxel).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return points[first], colors[first]


class FusionNode(WorkerLifecycleNode):
    """Lifecycle adapter between ROS topics/services and :class:`IngestPipeline` +
    :class:`SceneFusion`.

    :param encoder: a patch encoder to use instead of the ``patch_encoder`` parameter (for
        in-process composition with an inference node that owns the model's encoder).
    :param scene_tokens: the scene-token settings of the model ``encoder`` belongs to
        (``SceneLlmConfig.scene_tokens``); without an injected encoder they are read from the
        model ``patch_encoder`` names. Either way they replace the parameters.
    """

    def __init__(self, node_name: str = "fusion_node", *, encoder: PatchEncoder | None = None,
                 scene_tokens: dict | None = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        declare(self, PARAMS)
        self._injected_encoder = encoder
        self._injected_scene_tokens = dict(scene_tokens or {})
        self.fusion: SceneFusion | None = None
        self.pipeline: IngestPipeline | None = None
        self._inputs: InputExecutor | None = None
        self._subscriptions_made: list = []
        self._timers_made: list = []
        self._services_made: list = []
        self._status_pub = self._points_pub = self._patches_pub = None
        self._published_version = {"points": -1, "patches": -1}
        self.add_on_set_parameters_callback(self._on_parameters)
        self._detach_logging = forward_python_logging(
            self.get_logger(), "scene_llm_ros.ingest", "scene_llm_ros.fusion")

    # -- lifecycle -------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = values(self, PARAMS)
        try:
            encoder, scene_tokens = self._injected_encoder, self._injected_scene_tokens
            if encoder is None:
                encoder = load_patch_encoder(
                    p["patch_encoder"], device=p["encoder_device"], layer=p["encoder_layer"],
                    image_size=p["encoder_image_size"] or None)
                scene_tokens = model_scene_tokens(p["patch_encoder"])
            self._adopt_model_scene_tokens(p, scene_tokens)
            fusion_config = FusionConfig(
                voxel_size_m=p["voxel_size_m"], block_resolution=p["block_resolution"],
                depth_max_m=p["depth_max_m"], trunc_voxel_multiplier=p["trunc_voxel_multiplier"],
                device=p["device"], patch_voxel_size_m=p["patch_voxel_size_m"],
                max_patch_tokens=p["max_patch_tokens"],
                min_patch_valid_fraction=p["min_patch_valid_fraction"],
                surface_weight_threshold=p["surface_weight_threshold"],
                semantic_pixel_stride=p["semantic_pixel_stride"],
                keyframes=KeyframePolicy(p["keyframe_translation_m"], p["keyframe_rotation_deg"],
                                         p["keyframe_interval_s"]))
            ingest_config = IngestConfig(
                slop_s=p["slop_s"], sync_buffer_size=p["sync_buffer_size"],
                queue_size=p["queue_size"], pose_wait_s=p["pose_wait_s"],
                pose_tolerance_s=p["pose_tolerance_s"], time_jump_s=p["time_jump_s"],
                max_rate_hz=p["max_rate_hz"], camera_frame=p["camera_frame"])
            image_qos = _image_qos(p["qos_reliability"], p["qos_depth"])
            if p["pose_source"] == "auto":
                p["pose_source"] = "tf" if TFMessage is not None else "topic"
            if p["pose_source"] not in ("tf", "topic"):
                raise ValueError(f"pose_source must be auto, tf or topic, got "
                                 f"{p['pose_source']!r}")
            if p["pose_source"] == "tf" and TFMessage is None:
                raise ValueError("pose_source 'tf' needs tf2_msgs, which is not installed; "
                                 "use pose_source 'topic'")
            if p["pose_topic_type"] not in ("pose_stamped", "odometry"):
                raise ValueError("pose_topic_type must be pose_stamped or odometry, got "
                                 f"{p['pose_topic_type']!r}")
        except (SceneLlmError, ValueError, OSError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE

        self.fusion = SceneFusion(fusion_config, encoder=encoder, scene_frame=p["scene_frame"])
        self._tf = TFPoseSource(p["scene_frame"], time_jump_s=p["time_jump_s"])
        poses = self._tf if p["pose_source"] == "tf" else TopicPoseSource(
            p["scene_frame"], body_frame=p["pose_body_frame"], tf=self._tf,
            time_jump_s=p["time_jump_s"])
        self.pipeline = IngestPipeline(self.fusion, poses, ingest_config)
        self._create_entities(p, image_qos)
        self.get_logger().info(
            f"configured: scene frame {p['scene_frame']}, poses from {p['pose_source']}, "
            f"encoder {encoder.identity[:60]}, voxel {p['voxel_size_m']} m, scene tokens "
            f"{p['patch_voxel_size_m']} m x {p['max_patch_tokens']}")
        return TransitionCallbackReturn.SUCCESS

    def _adopt_model_scene_tokens(self, p: dict, settings: dict) -> None:
        # The model reads only tokens like those it was trained on; the parameters say so too.
        changed = []
        for name, value in settings.items():
            if p[name] != value:
                self.get_logger().info(f"{name} {p[name]} -> {value}: the scene tokens the "
                                       f"model was trained on")
                p[name] = type(p[name])(value)
                changed.append(Parameter(name, value=p[name]))
        if changed:
            self.set_parameters(changed)

    def _create_entities(self, p: dict, image_qos: QoSProfile) -> None:
        # Input callbacks only buffer, so streams run concurrently; each stream has its own
        # exclusive group so that its messages are handled in the order they arrive (a shared
        # reentrant group could swap two images and fake a jump back in time).
        new_input_group = MutuallyExclusiveCallbackGroup
        outputs = MutuallyExclusiveCallbackGroup()
        services = MutuallyExclusiveCallbackGroup()
        if p["input_thread"]:
            self._inputs = InputExecutor(self)
            sub = self._inputs.create_subscription
        else:
            sub = self.create_subscription
        self._subscriptions_made = self._image_subscriptions(p, image_qos, sub, new_input_group)
        if TFMessage is not None:
            tf_qos = QoSProfile(depth=_POSE_HISTORY, reliability=ReliabilityPolicy.RELIABLE)
            static_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._subscriptions_made += [
                sub(TFMessage, "/tf",
                    guarded(self, lambda msg: self._on_tf(msg, static=False), "/tf"),
                    tf_qos, callback_group=new_input_group()),
                sub(TFMessage, "/tf_static",
                    guarded(self, lambda msg: self._on_tf(msg, static=True), "/tf_static"),
                    static_qos, callback_group=new_input_group()),
            ]
        if p["pose_source"] == "topic":
            pose_type = PoseStamped if p["pose_topic_type"] == "pose_stamped" else Odometry
            self._subscriptions_made.append(sub(pose_type, topics.POSE,
                                                guarded(self, self._on_pose, "pose"),
                                                _POSE_HISTORY,
                                                callback_group=new_input_group()))
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        publisher = self.create_lifecycle_publisher
        self._status_pub = publisher(SceneStatus, topics.SCENE_STATUS, 10)
        self._points_pub = publisher(PointCloud2, topics.SCENE_POINTS, latched)
        self._patches_pub = publisher(ScenePatches, topics.SCENE_PATCHES, latched)
        self._timers_made = [
            self.create_timer(1.0 / p["status_rate_hz"],
                              guarded(self, self._publish_status, "status publishing"),
                              callback_group=outputs),
            self.create_timer(0.1, guarded(self, self._publish_scene, "scene publishing"),
                              callback_group=outputs),
        ]
        self._services_made = [
            self.create_service(Trigger, topics.SCENE_RESET, self._service(self._on_reset, "reset"),
                                callback_group=services),
            self.create_service(SaveScene, topics.SCENE_SAVE, self._service(self._on_save, "save"),
                                callback_group=services),
            self.create_service(LoadScene, topics.SCENE_LOAD, self._service(self._on_load, "load"),
                                callback_group=services),
        ]
        self._last_scene_publish = {"points": 0.0, "patches": 0.0}

    def _image_subscriptions(self, p: dict, qos: QoSProfile, sub, new_group: type) -> list:
        pipeline = self.pipeline
        if p["use_message_filters"]:
            try:
                import message_filters
            except ImportError:
                self.get_logger().info("message_filters not installed: using the built-in "
                                       "approximate-time synchroniser")
            else:
                node = self if self._inputs is None else self._inputs.node
                subscribers = [
                    message_filters.Subscriber(node, msg_type, self.resolve_topic_name(topic),
                                               qos_profile=qos)
                    for msg_type, topic in ((Image, topics.COLOR_IMAGE),
                                            (Image, topics.DEPTH_IMAGE),
                                            (CameraInfo, topics.CAMERA_INFO))]
                synchronizer = message_filters.ApproximateTimeSynchronizer(
                    subscribers, p["sync_buffer_size"], p["slop_s"])
                synchronizer.registerCallback(pipeline.add_synchronized)
                self._synchronizer = synchronizer  # keeps the callback alive
                return [s.sub for s in subscribers]
        # Images arrive serialized and are read in place (parse_image), saving rclpy's two
        # copies of the pixels into a Python message.
        return [
            sub(Image, topics.COLOR_IMAGE,
                guarded(self, lambda raw: pipeline.add_color(parse_image(raw)), "colour image"),
                qos, callback_group=new_group(), raw=True),
            sub(Image, topics.DEPTH_IMAGE,
                guarded(self, lambda raw: pipeline.add_depth(parse_image(raw)), "depth image"),
                qos, callback_group=new_group(), raw=True),
            sub(CameraInfo, topics.CAMERA_INFO,
                guarded(self, pipeline.add_camera_info, "camera info"), qos,
                callback_group=new_group()),
        ]

    def _start_worker(self) -> None:
        self.pipeline.start()

    def _stop_worker(self) -> None:
        self.pipeline.stop()

    def _release(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
        if self._inputs is not None:
            self._inputs.close()  # with the subscriptions it holds
            self._inputs = None
        else:
            for subscription in self._subscriptions_made:
                self.destroy_subscription(subscription)
        for timer in self._timers_made:
            self.destroy_timer(timer)
        for service in self._services_made:
            self.destroy_service(service)
        for publisher in (self._status_pub, self._points_pub, self._patches_pub):
            if publisher is not None:
                self.destroy_publisher(publisher)
        self._subscriptions_made, self._timers_made, self._services_made = [], [], []
        self._status_pub = self._points_pub = self._patches_pub = None
        self.fusion = self.pipeline = None

    # -- inputs ------------------------------------------------------------------------------

    def _on_tf(self, msg, *, static: bool) -> None:
        for tf in msg.transforms:
            self._tf.add_transform(tf.header.frame_id, tf.child_frame_id,
                                   conv.stamp_to_ns(tf.header.stamp),
                                   conv.transform_to_matrix(tf.transform), static=static)
        if self.pipeline is not None:
            self.pipeline.pose_arrived()

    def _on_pose(self, msg: PoseStamped | Odometry) -> None:
        pose = msg.pose.pose if isinstance(msg, Odometry) else msg.pose
        child = msg.child_frame_id if isinstance(msg, Odometry) else ""
        self.pipeline.poses.add_pose(msg.header.frame_id, conv.stamp_to_ns(msg.header.stamp),
                                     conv.pose_to_matrix(pose), child)
        self.pipeline.pose_arrived()

    def _on_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == "scene_frame" and self.fusion is not None \
                    and param.value != self.fusion.scene_frame:
                # A map in the old frame means nothing in the new one.
                self.get_logger().warning(f"scene frame {self.fusion.scene_frame} -> "
                                          f"{param.value}: resetting the scene")
                self.pipeline.clear()
                self.pipeline.poses.clear()
                self.pipeline.poses.scene_frame = param.value
                self._tf.scene_frame = param.value
                self.fusion.reset()
                self.fusion.scene_frame = param.value
            elif param.name == "max_rate_hz" and self.pipeline is not None:
                self.pipeline.config.max_rate_hz = float(param.value)
        return SetParametersResult(successful=True)

    # -- outputs -----------------------------------------------------------------------------

    def status_msg(self) -> SceneStatus:
        """The current SceneStatus (also published periodically)."""
        stats = self.pipeline.stats()
        scene = self.fusion.stats
        snapshot_bounds = self.fusion.bounds
        msg = SceneStatus()
        msg.header = conv.header(time.time_ns(), self.fusion.scene_frame)
        msg.scene_version = scene["scene_version"]
        msg.frames_received = stats.frames_received
        msg.frames_integrated = scene["frames_integrated"]
        msg.frames_dropped = stats.frames_dropped
        msg.drop_reasons = list(stats.drops)
        msg.drop_counts = list(stats.drops.values())
        msg.keyframes = scene["keyframes"]
        msg.patch_tokens = scene["patch_tokens"]
        msg.tsdf_voxels = scene["tsdf_voxels"]
        msg.memory_bytes = scene["memory_bytes"]
        if snapshot_bounds is not None:
            msg.bounds_min = conv.point_msg(snapshot_bounds[0])
            msg.bounds_max = conv.point_msg(snapshot_bounds[1])
        msg.integrate_ms = stats.integrate_ms
        return msg

    def _publish_status(self) -> None:
        publisher = self._status_pub  # local: cleanup may clear it while a timer runs
        if self.fusion is not None and publisher is not None:
            publisher.publish(self.status_msg())

    def _publish_scene(self) -> None:
        """Points and patches, each at its rate and only when the scene changed."""
        fusion, points_pub, patches_pub = self.fusion, self._points_pub, self._patches_pub
        if fusion is None or points_pub is None or patches_pub is None:
            return
        version = fusion.stats["scene_version"]
        now = time.monotonic()
        publishers = {"points": points_pub, "patches": patches_pub}
        # Extracting the surface costs tens of milliseconds under the fusion lock: only for
        # someone listening. A later subscriber gets the current scene on the next tick.
        due = [kind for kind in ("points", "patches")
               if self.get_parameter(f"{kind}_rate_hz").value > 0
               and publishers[kind].get_subscription_count() > 0
               and self._published_version[kind] != version
               and now - self._last_scene_publish[kind]
               >= 1.0 / self.get_parameter(f"{kind}_rate_hz").value]
        if not due:
            return
        snapshot = fusion.snapshot()
        if "points" in due:
            points, colors = _downsample(snapshot.points, snapshot.colors,
                                         self.get_parameter("points_voxel_size_m").value)
            points_pub.publish(conv.point_cloud_msg(points, colors, snapshot.stamp_ns,
                                                    snapshot.scene_frame))
        if "patches" in due:
            patches_pub.publish(conv.scene_patches_msg(snapshot, fusion.encoder.identity))
        for kind in due:
            self._published_version[kind] = snapshot.scene_version
            self._last_scene_publish[kind] = now

    # -- services ------------------------------------------------------------------------------

    def _service(self, handler, what: str):
        """A service handler whose unexpected errors become success = False, not a crash."""

        def failed(request, response):
            response.success = False
            response.message = f"{what} failed unexpectedly; see the node's log"
            return response

        return guarded(self, handler, f"scene/{what}", failed)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        if self.fusion is None:
            response.success, response.message = False, "node is not configured"
            return response
        self.pipeline.clear()
        self.fusion.reset()
        response.success = True
        response.message = f"scene reset (version {self.fusion.stats['scene_version']})"
        return response

    def _on_save(self, request: SaveScene.Request, response: SaveScene.Response):
        return self._scene_operation(
            response, lambda: self.fusion.save(Path(request.directory)),
            f"saved to {request.directory}", "save failed")

    def _on_load(self, request: LoadScene.Request, response: LoadScene.Response):
        return self._scene_operation(
            response, lambda: self.fusion.load(Path(request.directory)),
            f"loaded {request.directory}", "load failed, scene unchanged", replaced=True)

    def _scene_operation(self, response, operation, done: str, failed: str, *,
                         replaced: bool = False):
        """Run a save or load for a service; errors become success = False and a message.

        :param replaced: the operation replaced the scene, so buffered frames are dropped.
        """
        if self.fusion is None:
            response.success, response.message = False, "node is not configured"
            return response
        try:
            response.scene_version = operation()
        except (OSError, SceneLlmError, ValueError) as exc:
            response.success, response.message = False, f"{failed}: {exc}"
            response.scene_version = self.fusion.stats["scene_version"]
            return response
        if replaced:
            self.pipeline.clear()  # frames buffered before a load belong to the old scene
        response.success = True
        response.message = f"{done} (scene version {response.scene_version})"
        return response


def main(args: list[str] | None = None) -> None:
    """Run the node alone; it configures and activates itself."""
    run_standalone(FusionNode, args, threads=3)
