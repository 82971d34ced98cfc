"""The whole FusionNode path over real DDS vs bare Open3D on the same frames, in one run.

    . tools/env.sh && python benchmarks/fusion_node.py [--frames 300] [--seed 7] [--rate-hz 30]
        [--dds-profile large-shm|environment]

Generates a synthetic 640x480 sequence (not timed), measures bare Open3D VoxelBlockGrid
integration of its frames (``bare_open3d_ms`` of ``benchmarks/fusion_core.py``, uint16/uint8
inputs ready; again right before each back-pressure mode, whose CPU ratios use that
measurement), then streams the same frames to a FusionNode with the default built-in patch
encoder. A forked child process plays the camera driver and the odometry: it publishes
``color/image`` (rgb8), ``depth/image`` (16UC1, mm), ``color/camera_info`` and ``pose``
(PoseStamped) over DDS, so the node pays deserialisation, synchronisation, queueing,
integration and keyframe patch encoding exactly as it would behind a real camera. Both
processes use a Fast DDS profile with a 16 MiB shared-memory segment (``--dds-profile``): the
built-in 512 KiB one cannot carry a 640x480 rgb8 image in one piece.

Two modes, each on a fresh node:

* real time: frames published at ``--rate-hz`` with the node's default QoS (best effort);
  reports what was integrated, dropped (by reason) or lost in DDS, and publish->integrated
  latency.
* back-pressure: reliable QoS; the next frame is published only once the previous one was
  integrated or dropped, giving the node's wall cost per integrated frame.

Both modes run twice: with the inputs on the node's own input thread (``input_thread: true``,
the default) and on the node's executor (``false``), and the two are compared. A last
back-pressure run with keyframes off measures the geometry path alone, the work bare Open3D
does too (keyframe patch updates have their own target).

The process sets passive OpenMP waiting as the node executables do
(``scene_llm_ros.nodes.runtime``); pass ``OMP_WAIT_POLICY=ACTIVE`` to see the difference.
The issue's targets are printed beside the numbers.
"""
from __future__ import annotations

from scene_llm_ros.nodes.runtime import prefer_passive_openmp

prefer_passive_openmp()  # before torch and Open3D load, as in the node executables

# ruff: noqa: E402 - the imports below must follow the OpenMP setting
import argparse
import multiprocessing
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from fusion_core import bare_open3d_ms  # benchmarks/ is sys.path[0] when run as a script
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from scene_llm_ros.data.depth import depth_to_uint16
from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.nodes import conversions as conv
from scene_llm_ros.nodes.fusion_node import FusionNode

OPTICAL = "camera_color_optical_frame"
SCENE_FRAME = "map"
# Waiting longer than this for one frame in lockstep means it was lost (counted, not fatal).
_LOCKSTEP_TIMEOUT_S = 5.0
# Stop the back-pressure mode after this many lost frames in a row (the node is not receiving).
_MAX_TIMEOUTS_IN_A_ROW = 3
# The recorder wakes the driver as each frame is fused; this poll only notices drops, and
# polling faster would bill the driver's own CPU to the node it measures.
_POLL_S = 0.05


# Fast DDS' built-in shared-memory segment is 512 KiB, smaller than one 640x480 rgb8 image
# (900 KiB); such samples fall back to fragments that get lost and, when reliable, wait for
# the writer's next heartbeat. The shipped profile gives a camera deployment a larger one.
_LARGE_SHM_PROFILE = Path(__file__).resolve().parents[1] / "config" / "fastdds_large_images.xml"


def _use_large_shm_profile() -> None:
    """Point Fast DDS (2.x and 3.x variable names) at the shipped large-segment profile."""
    os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(_LARGE_SHM_PROFILE)
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(_LARGE_SHM_PROFILE)
    os.environ.pop("FASTDDS_BUILTIN_TRANSPORTS", None)


# -- camera process (child) ------------------------------------------------------------------

def _camera_main(conn, frames, depths_mm, domain_id: int) -> None:
    """Publish frames on command; report each frame's publish time (CLOCK_MONOTONIC, which
    is system-wide, so the parent can subtract it from its own readings)."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node("bench_camera", context=context)
    pubs: list = []
    try:
        while True:
            command = conn.recv()
            if command[0] == "quit":
                return
            if command[0] == "connect":
                for pub in pubs:
                    node.destroy_publisher(pub)
                pubs = _make_publishers(node, reliable=command[1])
                deadline = time.monotonic() + 30.0
                while (min(p.get_subscription_count() for p in pubs) < 1
                       and time.monotonic() < deadline):
                    time.sleep(0.05)
                time.sleep(0.5)  # let discovery settle both ways before the first sample
                conn.send(("ready", min(p.get_subscription_count() for p in pubs)))
            elif command[0] == "stream":
                _stream(conn, pubs, frames, depths_mm, rate_hz=command[1], lockstep=command[2])
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _make_publishers(node, *, reliable: bool) -> list:
    image_qos = qos_profile_sensor_data
    if reliable:
        image_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pose_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    return [node.create_publisher(Image, "color/image", image_qos),
            node.create_publisher(Image, "depth/image", image_qos),
            node.create_publisher(CameraInfo, "color/camera_info", image_qos),
            node.create_publisher(PoseStamped, "pose", pose_qos)]


def _stream(conn, pubs: list, frames, depths_mm, *, rate_hz: float, lockstep: bool) -> None:
    color_pub, depth_pub, info_pub, pose_pub = pubs
    period = 1.0 / rate_hz if rate_hz > 0 else 0.0
    start = time.monotonic()
    for i, frame in enumerate(frames):
        if period:
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        stamp = frame.stamp_ns
        # Poses bracket the image stamp, as an odometry source faster than the camera does.
        poses = [PoseStamped(header=conv.header(s, SCENE_FRAME), pose=conv.pose_msg(
            frame.T_world_cam)) for s in (stamp - 1_000_000, stamp + 1_000_000)]
        info = conv.camera_info_msg(frame.intrinsics, stamp, OPTICAL)
        color = conv.image_msg(frame.color, "rgb8", stamp, OPTICAL)
        depth = conv.image_msg(depths_mm[i], "16UC1", stamp, OPTICAL)
        published = time.monotonic()
        for pose in poses:
            pose_pub.publish(pose)
        info_pub.publish(info)
        color_pub.publish(color)
        depth_pub.publish(depth)
        conn.send(("sent", i, published))
        if lockstep and conn.recv() != "next":
            break
    conn.send(("end", time.monotonic() - start))


# -- node side (parent) ----------------------------------------------------------------------

@dataclass
class ModeResult:
    """What one streaming mode measured (times are CLOCK_MONOTONIC seconds or ms)."""

    published: int = 0
    publish_s: float = 0.0
    sent_at: dict[int, float] = field(default_factory=dict)  # stamp_ns -> publish time
    done_at: dict[int, float] = field(default_factory=dict)  # stamp_ns -> integrated time
    keyframe: dict[int, bool] = field(default_factory=dict)
    core_ms: dict[int, float] = field(default_factory=dict)  # integrate + patch, in the node
    patch_ms: list[float] = field(default_factory=list)
    received: int = 0
    integrated: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    lockstep_timeouts: int = 0
    sync_latency_ms: float = 0.0
    cpu_ms: float = 0.0  # process CPU time over the whole mode
    thread_cpu_ms: dict[str, float] = field(default_factory=dict)  # streaming only, by role
    bare_cpu_ms: float = 0.0  # bare Open3D CPU ms/frame measured just before this mode

    @property
    def latencies_ms(self) -> np.ndarray:
        return np.array([(self.done_at[s] - self.sent_at[s]) * 1e3 for s in self.done_at
                         if s in self.sent_at])

    @property
    def span_s(self) -> float:
        """First publish to last integration."""
        return max(self.done_at.values()) - min(self.sent_at.values())


class IntegrationRecorder:
    """The pipeline's ``on_integrated`` hook: records when and how each frame was fused."""

    def __init__(self, result: ModeResult) -> None:
        self.result = result
        self.cond = threading.Condition()

    def __call__(self, frame, integration) -> None:
        now = time.monotonic()
        with self.cond:
            r = self.result
            r.done_at[frame.stamp_ns] = now
            r.keyframe[frame.stamp_ns] = integration.keyframe
            r.core_ms[frame.stamp_ns] = integration.integrate_ms + integration.patch_ms
            if integration.keyframe:
                r.patch_ms.append(integration.patch_ms)
            self.cond.notify_all()


def _start_node(context, executor, name: str, params: dict
                ) -> tuple[FusionNode, ModeResult, IntegrationRecorder]:
    node = FusionNode(name, context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(node)
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError("FusionNode failed to configure")
    result = ModeResult()
    recorder = IntegrationRecorder(result)
    # IngestPipeline has no public way to add an on_integrated hook once the node built it;
    # a FusionNode(on_integrated=...) argument would make this private assignment go away.
    node.pipeline.on_integrated = recorder
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError("FusionNode failed to activate")
    return node, result, recorder


def _thread_cpu_ms() -> dict[int, tuple[str, float]]:
    """CPU time of every thread of this process: native id -> (role, ms)."""
    tick_ms = 1e3 / os.sysconf("SC_CLK_TCK")
    python_names = {t.native_id: t.name for t in threading.enumerate()}
    threads = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        name = python_names.get(int(tid), comm)
        threads[int(tid)] = (_thread_role(name), (int(fields[11]) + int(fields[12])) * tick_ms)
    return threads


def _thread_role(name: str) -> str:
    if name == "MainThread":
        return "benchmark driver (main thread; not the node's)"
    if name == "scene-ingest":
        return "fusion worker (sync, decode, integrate, patches)"
    if name.endswith("_input"):
        return "input thread (take, deserialise, buffer)"
    if name.startswith("dds."):
        return "Fast DDS threads"
    if name == "python":  # native threads without a name of their own: OpenMP pools
        return "Open3D / torch OpenMP threads"
    return "node executor and other threads"


def _cpu_by_role(before: dict, after: dict) -> dict[str, float]:
    roles: dict[str, float] = {}
    for tid, (role, ms) in after.items():
        roles[role] = roles.get(role, 0.0) + ms - before.get(tid, (role, 0.0))[1]
    return roles


def _stop_node(node: FusionNode, executor, result: ModeResult) -> None:
    stats = node.pipeline.stats()
    result.received = stats.frames_received
    result.integrated = stats.frames_integrated
    result.drops = {k: v for k, v in stats.drops.items() if v}
    result.sync_latency_ms = stats.latency_ms
    node.trigger_deactivate()
    node.trigger_cleanup()
    executor.remove_node(node)
    node.destroy_node()
    time.sleep(0.5)  # let the readers' disposal reach the camera before it reconnects


def _connect(conn, *, reliable: bool) -> None:
    conn.send(("connect", reliable))
    reply = conn.recv()
    if reply[1] < 1:
        raise RuntimeError("the camera never matched the fusion node's subscriptions")


def run_realtime(conn, context, executor, frames, rate_hz: float,
                 input_thread: bool) -> ModeResult:
    # The node's defaults, as on a robot: best-effort images, a queue of 5.
    node, result, _ = _start_node(context, executor, f"fusion_node_realtime_{input_thread}",
                                  {"input_thread": input_thread})
    _connect(conn, reliable=False)
    conn.send(("stream", rate_hz, False))
    while True:
        message = conn.recv()
        if message[0] == "end":
            result.publish_s = message[1]
            break
        result.sent_at[frames[message[1]].stamp_ns] = message[2]
        result.published += 1
    # Let the node drain: done when everything received is integrated or dropped.
    deadline = time.monotonic() + 30.0
    last = -1
    while time.monotonic() < deadline:
        stats = node.pipeline.stats()
        if stats.frames_received == last and node.pipeline.wait_until_idle(1.0):
            break
        last = stats.frames_received
        time.sleep(0.5)
    _stop_node(node, executor, result)
    return result


# Keyframe thresholds no walk reaches: only the first frame is encoded into patches.
_NO_KEYFRAMES = {"keyframe_translation_m": 100.0, "keyframe_rotation_deg": 360.0,
                 "keyframe_interval_s": 3600.0}


def run_lockstep(conn, context, executor, frames, input_thread: bool,
                 keyframes: bool = True) -> ModeResult:
    params = {"qos_reliability": "reliable", "input_thread": input_thread,
              **({} if keyframes else _NO_KEYFRAMES)}
    node, result, recorder = _start_node(
        context, executor, f"fusion_node_lockstep_{input_thread}_{keyframes}", params)
    _connect(conn, reliable=True)
    conn.send(("stream", 0.0, True))
    pipeline = node.pipeline
    dropped_seen = in_a_row = 0
    threads_before = _thread_cpu_ms()
    while True:
        message = conn.recv()
        if message[0] == "end":
            result.publish_s = message[1]
            break
        stamp = frames[message[1]].stamp_ns
        result.sent_at[stamp] = message[2]
        result.published += 1
        deadline = time.monotonic() + _LOCKSTEP_TIMEOUT_S
        with recorder.cond:
            while stamp not in result.done_at:
                recorder.cond.wait(_POLL_S)
                if pipeline.stats().frames_dropped > dropped_seen:
                    break
                if time.monotonic() > deadline:
                    result.lockstep_timeouts += 1
                    break
        in_a_row = 0 if stamp in result.done_at else in_a_row + 1
        dropped_seen = pipeline.stats().frames_dropped
        conn.send("next" if in_a_row < _MAX_TIMEOUTS_IN_A_ROW else "stop")
    result.thread_cpu_ms = _cpu_by_role(threads_before, _thread_cpu_ms())  # before they end
    _stop_node(node, executor, result)
    return result


class Spinner:
    """Spins the executor in a thread and keeps spinning after a callback raises (the
    exception is counted and reported rather than silently ending the benchmark)."""

    def __init__(self, executor) -> None:
        self.executor = executor
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self.executor.context.ok():
            try:
                self.executor.spin()
                return
            except ExternalShutdownException:
                return
            except Exception as exc:  # noqa: BLE001 - count it, keep the node running
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate-hz", type=float, default=30.0, help="real-time publish rate")
    parser.add_argument("--domain-id", type=int, default=100 + os.getpid() % 100,
                        help="ROS_DOMAIN_ID of this run (default: unique per process)")
    parser.add_argument("--dds-profile", choices=("large-shm", "environment"),
                        default="large-shm",
                        help="large-shm: a Fast DDS profile with a 16 MiB shared-memory "
                        "segment for both processes; environment: whatever the environment "
                        "configures (Fast DDS' default 512 KiB segment cannot carry a 640x480 "
                        "rgb8 image: best effort loses most, reliable repairs them ~3 s late)")
    args = parser.parse_args()
    if args.dds_profile == "large-shm":
        _use_large_shm_profile()
    out = sys.stdout
    run_start = time.perf_counter()

    t0 = time.perf_counter()
    scene = generate_scene(args.seed, "scene9000_00", SynthConfig(
        width=640, height=480, num_frames=args.frames, noise=True, write_sens=False))
    frames = scene.frames
    depths_mm = [depth_to_uint16(f.depth) for f in frames]
    out.write(f"generated {len(frames)} frames 640x480 in {time.perf_counter() - t0:.1f} s "
              f"(not timed below); ROS_DOMAIN_ID {args.domain_id}, "
              f"DDS profile {args.dds_profile}\n")

    config = FusionConfig()  # the node's defaults: same voxel size and depth range
    bare, bare_cpu_ms = _bare_open3d(frames, config)
    out.write(f"bare Open3D done: {len(bare)} frames\n")

    # Fork the camera before this process starts any DDS participant.
    mp = multiprocessing.get_context("fork")
    conn, child_conn = mp.Pipe()
    camera = mp.Process(target=_camera_main, args=(child_conn, frames, depths_mm,
                                                   args.domain_id), daemon=True)
    camera.start()

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain_id)
    executor = MultiThreadedExecutor(num_threads=3, context=context)  # as fusion_node main()
    spinner = Spinner(executor)
    modes = {}
    try:
        for input_thread in (True, False):
            t0 = time.perf_counter()
            realtime = run_realtime(conn, context, executor, frames, args.rate_hz, input_thread)
            out.write(f"real-time mode (input_thread {input_thread}) done in "
                      f"{time.perf_counter() - t0:.1f} s\n")
            _, bare_before = _bare_open3d(frames, config)
            t0 = time.perf_counter()
            cpu_start = time.process_time()
            lockstep = run_lockstep(conn, context, executor, frames, input_thread)
            lockstep.cpu_ms = (time.process_time() - cpu_start) * 1e3
            lockstep.bare_cpu_ms = bare_before
            out.write(f"back-pressure mode (input_thread {input_thread}) done in "
                      f"{time.perf_counter() - t0:.1f} s\n")
            modes[input_thread] = (realtime, lockstep)
        _, bare_before = _bare_open3d(frames, config)
        cpu_start = time.process_time()
        geometry = run_lockstep(conn, context, executor, frames, True, keyframes=False)
        geometry.cpu_ms = (time.process_time() - cpu_start) * 1e3
        geometry.bare_cpu_ms = bare_before
    finally:
        conn.send(("quit",))
        camera.join(10)
        executor.shutdown()
        rclpy.try_shutdown(context=context)
        spinner.join(5)

    report(sys.stdout, args.rate_hz, bare, bare_cpu_ms, modes)
    _report_lockstep(sys.stdout, "(c) back-pressure as (b), own input thread, keyframes off "
                     "(the geometry path bare Open3D also does)", geometry, bare)
    if spinner.errors:
        out.write(f"\nWARNING: {len(spinner.errors)} executor callback exceptions (the node's "
                  f"own code raised), first: {spinner.errors[0]}\n")
    out.write(f"\ntotal run time {time.perf_counter() - run_start:.0f} s\n")
    return 0


def _bare_open3d(frames, config: FusionConfig) -> tuple[np.ndarray, float]:
    """Bare Open3D on ``frames``: wall ms per frame, and CPU ms per frame of every thread of
    this process (the cost of a frame, not its latency).

    Measured again right before each back-pressure mode: on this shared machine the same
    300 frames cost 10.7-16.7 ms of CPU from one run to the next, which a single
    measurement at the start would put into every ratio.
    """
    cpu_start = time.process_time()
    wall = np.array(bare_open3d_ms(frames, config.voxel_size_m, config.depth_max_m,
                                   sensor_formats=True))
    return wall, (time.process_time() - cpu_start) * 1e3 / len(frames)


def _drops(r: ModeResult) -> str:
    return ", ".join(f"{k} {v}" for k, v in r.drops.items()) or "none"


def report(out, rate_hz: float, bare: np.ndarray, bare_cpu_ms: float,
           modes: dict[bool, tuple[ModeResult, ModeResult]]) -> None:
    """Print every mode beside bare Open3D and the issue's targets, then the input thread's
    effect (the node's default ``input_thread: true`` against ``false``)."""
    out.write("\n== bare Open3D VoxelBlockGrid (same frames, uint16/uint8 ready) ==\n")
    _row(out, "ms/frame median / mean", f"{np.median(bare):.1f} / {bare.mean():.1f}")
    _row(out, "process CPU ms/frame (all threads)", f"{bare_cpu_ms:.1f}")
    for input_thread, (realtime, lockstep) in modes.items():
        where = ("own input thread (default)" if input_thread
                 else "inputs on the node's executor")
        _report_realtime(out, f"(a) real time: {rate_hz:g} Hz, default QoS (best effort), "
                         f"queue_size 5, {where}", realtime)
        _report_lockstep(out, f"(b) back-pressure: reliable QoS, next frame after the "
                         f"previous one is fused, {where}", lockstep, bare)
    if len(modes) == 2 and all(m[1].integrated for m in modes.values()):
        (rt_on, ls_on), (rt_off, ls_off) = modes[True], modes[False]
        out.write("\n== input thread: input_thread true vs false ==\n")
        _row(out, "real time: integrated / published, true vs false",
             f"{rt_on.integrated / rt_on.published:.0%} vs "
             f"{rt_off.integrated / rt_off.published:.0%}")
        cpu_on, cpu_off = ls_on.cpu_ms / ls_on.integrated, ls_off.cpu_ms / ls_off.integrated
        _row(out, "back-pressure CPU ms per frame, true vs false",
             f"{cpu_on:.1f} vs {cpu_off:.1f}", f"{cpu_off / cpu_on:.1f}x less with the thread")


def _row(out, name, value, target=""):
    out.write(f"{name:<60} {value:>16}   {target}\n")


def _report_realtime(out, title: str, r: ModeResult) -> None:
    def row(name, value, target=""):
        _row(out, name, value, target)

    lat = r.latencies_ms
    out.write(f"\n== {title} ==\n")
    row("frames published / achieved publish rate",
        f"{r.published} / {r.published / r.publish_s:.1f} Hz")
    row("frames received by the node / lost in DDS",
        f"{r.received} / {r.published - r.received}")
    row("frames integrated", f"{r.integrated}")
    row("frames dropped by the node", f"{sum(r.drops.values())}", _drops(r))
    row("integration rate, fps (integrated / first publish..last fused)",
        f"{r.integrated / r.span_s:.1f}" if r.done_at else "0", "target >= 10")
    row("latency publish -> integrated, ms (mean / p95)",
        f"{lat.mean():.0f} / {_pct(lat, 95):.0f}" if len(lat) else "n/a")
    row("IngestStats.latency_ms sync -> integrated (mean, last 100)",
        f"{r.sync_latency_ms:.0f}")
    row("node core time integrate+patch, ms/frame (mean)",
        f"{np.mean(list(r.core_ms.values())):.1f}" if r.core_ms else "n/a")
    row("keyframes / keyframe patch update, ms (median / p95)",
        f"{len(r.patch_ms)} / {np.median(r.patch_ms):.0f} / {_pct(r.patch_ms, 95):.0f}"
        if r.patch_ms else "0", "target < 50")
    row("keeps up (every published frame integrated)", "yes" if r.integrated == r.published
        else f"no ({r.integrated / max(r.published, 1):.0%})")



def _report_lockstep(out, title: str, r: ModeResult, bare: np.ndarray) -> None:
    def row(name, value, target=""):
        _row(out, name, value, target)

    out.write(f"\n== {title} ==\n")
    row("frames published / received / integrated",
        f"{r.published} / {r.received} / {r.integrated}")
    row("frames dropped by the node / lockstep timeouts",
        f"{sum(r.drops.values())} / {r.lockstep_timeouts}", _drops(r))
    if not r.done_at:
        return
    lat = r.latencies_ms
    cost_ms = r.span_s * 1e3 / r.integrated
    non_key = np.array([(r.done_at[s] - r.sent_at[s]) * 1e3 for s in r.done_at
                        if not r.keyframe[s]])
    row("node wall cost per integrated frame, ms (span / integrated)", f"{cost_ms:.1f}")
    row("integrated fps", f"{1e3 / cost_ms:.1f}", "target >= 10")
    node_cpu_ms = r.cpu_ms / r.integrated
    row("node process CPU ms per integrated frame (DDS, sync, decode, fuse)",
        f"{node_cpu_ms:.1f}")
    row("bare Open3D CPU ms per frame, measured just before this mode", f"{r.bare_cpu_ms:.1f}")
    row("ratio node CPU / bare Open3D CPU per frame", f"{node_cpu_ms / r.bare_cpu_ms:.2f}x")
    row("while streaming, CPU ms per frame by thread:", "")
    for role, ms in sorted(r.thread_cpu_ms.items(), key=lambda kv: -kv[1]):
        row(f"  {role}", f"{ms / r.integrated:.2f}")
    driver_ms = r.thread_cpu_ms.get(_thread_role("MainThread"), 0.0)
    node_only_ms = (sum(r.thread_cpu_ms.values()) - driver_ms) / r.integrated
    row("node threads CPU ms per frame (without the driver) / ratio to bare",
        f"{node_only_ms:.1f} / {node_only_ms / r.bare_cpu_ms:.2f}x", "target <= 1.3x")
    row("ratio node wall / bare Open3D wall per frame (latency-bound)",
        f"{cost_ms / bare.mean():.2f}x")
    row("latency publish -> integrated, ms (median / p95)",
        f"{np.median(lat):.1f} / {_pct(lat, 95):.1f}")
    if len(non_key):
        core = np.array([r.core_ms[s] for s in r.done_at if not r.keyframe[s]])
        row("non-keyframe publish -> integrated, ms (median)", f"{np.median(non_key):.1f}")
        row("  of which SceneFusion.integrate in the worker, ms (median)",
            f"{np.median(core):.1f}")
        # Latency, not cost: it includes the DDS transfer of each image (the CPU rows above
        # are the cost the target is about).
        row("ratio non-keyframe latency / bare Open3D wall (medians)",
            f"{np.median(non_key) / np.median(bare):.2f}x", "latency, includes DDS transfer")
    else:
        row("non-keyframes", "0 (every frame was a keyframe)")
    row("node core time integrate+patch, ms/frame (mean)",
        f"{np.mean(list(r.core_ms.values())):.1f}")
    row("keyframes", f"{len(r.patch_ms)}")
    row("keyframe patch update, ms (median / p95)",
        f"{np.median(r.patch_ms):.0f} / {_pct(r.patch_ms, 95):.0f}" if r.patch_ms else "n/a",
        "target < 50")


if __name__ == "__main__":
    sys.exit(main())
