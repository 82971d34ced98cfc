"""AskScene through the real service vs the same generation in-process, the scene-prefix
cache, and the node under load, measured side by side in one run.

    . tools/env.sh && python benchmarks/ask_scene.py [--calls 50] [--max-new-tokens 8]
        [--frames 30] [--clients 8] [--questions 25] [--queue-size 4]

Builds a tiny random scene LLM in code (``build_tiny_scene_llm``, hidden 256, 4 layers by
default) and a synthetic 320x240 sequence (neither timed). One process holds a private rclpy
context with two executors: the *server* one (4 threads, as ``inference_node``'s ``main()``)
spins a FusionNode and two InferenceNodes sharing the model, as the integration tests do (the
fusion node's timers, scene publishing at 10 Hz and status at 2 Hz, also wake that executor);
the *client* one spins the fake camera and every client node. Requests and replies go through
the RMW between nodes; within one process Fast DDS may deliver them intra-process rather than
through shared memory or UDP.

Two scenes:

* **fused**: the frames stream over DDS into the FusionNode (default patch voxel 0.2 m);
  ``ask_scene`` answers over the ScenePatches it publishes (a few hundred tokens or more).
* **1024 tokens**: the fusion core fuses the same frames with a 0.1 m patch voxel, whose
  farthest-point budget keeps exactly 1024 of the ~2,200 occupied voxels; a second
  InferenceNode (``big/ask_scene``) is composed on that snapshot (no ScenePatches hop).

Then:

1. Latency: ``--calls`` AskScene calls per scene with a fixed ``max_new_tokens``, each paired
   with ``SceneLlm.answer`` on the same snapshot, question and limit, called in this thread
   without ROS (order alternating). Both share the model and its warm prefix cache (warm-up
   calls first; every measured call is a cache hit). Service overhead is the client round
   trip minus the in-process wall time.
2. Scene-prefix cache: on the 1024-token scene, after a first question filled the cache, a
   second question with ``use_prefix_cache`` True vs False (alternating).
3. Load: ``--clients`` client nodes in their own threads each ask ``--questions`` questions
   back to back (``call_async``, then wait) against ``queue_size`` ``--queue-size``: answered,
   BUSY, other errors, lost calls, an answer afterwards and this process' VmRSS before and
   after.

The targets are printed beside the numbers.
"""
from __future__ import annotations

import argparse
import collections
import gc
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.scene import SceneFusion
from scene_llm_ros.inference.requests import ErrorCode
from scene_llm_ros.model import build_tiny_scene_llm
from scene_llm_ros.msg import ScenePatches
from scene_llm_ros.nodes import conversions as conv
from scene_llm_ros.nodes.fusion_node import FusionNode
from scene_llm_ros.nodes.inference_node import InferenceNode
from scene_llm_ros.srv import AskScene

OPTICAL = "camera_color_optical_frame"
SCENE_FRAME = "map"
QUESTION = "what is on the table ?"
SECOND_QUESTION = "where is the chair next to the desk ?"
CORPUS = [QUESTION, SECOND_QUESTION, "the chair is next to the desk .",
          "there is a lamp on the table near the bed .", "how many chairs are in the room ?"] * 20
BIG_TOKENS = 1024
_FRAMES_AHEAD = 3
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _rss_mib() -> float:
    """VmRSS of this process, MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _call(client, request: AskScene.Request, timeout_s: float
          ) -> tuple[AskScene.Response | None, float]:
    """One service call from the calling thread: the response (None if it never came) and
    the client-observed round trip, ms."""
    done = threading.Event()
    start = time.perf_counter()
    future = client.call_async(request)
    future.add_done_callback(lambda _f: done.set())
    answered = done.wait(timeout_s)
    elapsed = (time.perf_counter() - start) * 1e3
    if not answered:
        client.remove_pending_request(future)
        return None, elapsed
    return future.result(), elapsed


# -- scene input -------------------------------------------------------------------------------

def _stream_frames(node, frames, fusion: FusionNode) -> None:
    """Publish posed RGB-D like a camera driver plus odometry, at most ``_FRAMES_AHEAD``
    frames ahead of the fusion node (its image subscriptions keep only 5), and wait until
    every frame it received is fused or dropped."""
    color = node.create_publisher(Image, "color/image", RELIABLE)
    depth = node.create_publisher(Image, "depth/image", RELIABLE)
    info = node.create_publisher(CameraInfo, "color/camera_info", RELIABLE)
    pose = node.create_publisher(PoseStamped, "pose", RELIABLE)
    _wait_for(lambda: min(p.get_subscription_count() for p in (color, depth, info, pose)) >= 1,
              30, "the fusion node's subscriptions")
    time.sleep(0.5)  # let discovery settle both ways before the first sample

    def handled() -> int:
        s = fusion.pipeline.stats()
        return s.frames_integrated + s.frames_dropped

    for i, frame in enumerate(frames):
        _wait_for(lambda sent=i: sent - handled() < _FRAMES_AHEAD, 60,
                  "the fusion node to catch up")
        stamp = frame.stamp_ns
        # Poses bracket the image stamp, as an odometry source faster than the camera does.
        for s in (stamp - 1_000_000, stamp + 1_000_000):
            pose.publish(PoseStamped(header=conv.header(s, SCENE_FRAME),
                                     pose=conv.pose_msg(frame.T_world_cam)))
        info.publish(conv.camera_info_msg(frame.intrinsics, stamp, OPTICAL))
        color.publish(conv.image_msg(frame.color, "rgb8", stamp, OPTICAL))
        depth.publish(conv.image_msg(frame.depth, "32FC1", stamp, OPTICAL))
    # Done when nothing new arrives and everything received is fused or dropped.
    deadline = time.monotonic() + 60.0
    last = -1
    while time.monotonic() < deadline:
        received = fusion.pipeline.stats().frames_received
        if received == last and handled() >= received:
            return
        last = received
        time.sleep(1.0)
    raise RuntimeError("the fusion node did not finish the frames it received within 60 s")


def _big_snapshot(frames, encoder, patch_voxel_m: float):
    """A snapshot of ``BIG_TOKENS`` tokens: the fusion core with a small patch voxel."""
    fusion = SceneFusion(FusionConfig(patch_voxel_size_m=patch_voxel_m,
                                      max_patch_tokens=BIG_TOKENS), encoder=encoder)
    for frame in frames:
        fusion.integrate(frame)
    return fusion.snapshot()


# -- measurements ------------------------------------------------------------------------------

@dataclass
class LatencyCase:
    """Paired service and in-process timings of one scene, ms."""

    name: str
    tokens: int
    rtt: list[float] = field(default_factory=list)
    encode: list[float] = field(default_factory=list)
    prefill: list[float] = field(default_factory=list)
    decode: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    local_wall: list[float] = field(default_factory=list)
    local_encode: list[float] = field(default_factory=list)
    local_prefill: list[float] = field(default_factory=list)
    local_decode: list[float] = field(default_factory=list)
    tokens_generated: set = field(default_factory=set)
    cache_hits: int = 0
    same_answer: bool = True
    failures: list[str] = field(default_factory=list)


def measure_latency(name: str, client, model, snapshot, *, calls: int, max_new_tokens: int,
                    warmup: int, timeout_s: float) -> LatencyCase:
    request = AskScene.Request(question=QUESTION, max_new_tokens=max_new_tokens)
    case = LatencyCase(name, len(snapshot.positions))
    local_text = [""]  # the in-process answer, which the service's must equal

    def via_ros() -> None:
        response, rtt = _call(client, request, timeout_s)
        if response is None or not response.success:
            case.failures.append("no response" if response is None
                                 else f"{response.error_code}: {response.message}")
            return
        case.rtt.append(rtt)
        case.encode.append(response.encode_ms)
        case.prefill.append(response.prefill_ms)
        case.decode.append(response.decode_ms)
        case.total.append(response.total_ms)
        case.tokens_generated.add(response.tokens_generated)
        case.same_answer &= response.answer == local_text[0]

    def in_process() -> None:
        start = time.perf_counter()
        answer = model.answer(snapshot, QUESTION, max_new_tokens=max_new_tokens)
        case.local_wall.append((time.perf_counter() - start) * 1e3)
        case.local_encode.append(answer.encode_ms)
        case.local_prefill.append(answer.prefill_ms)
        case.local_decode.append(answer.decode_ms)
        case.cache_hits += answer.prefix_cache_hit
        case.tokens_generated.add(answer.tokens_generated)
        local_text[0] = answer.text

    # Warm both paths; the first call fills the prefix cache both then hit.
    for _ in range(warmup):
        _call(client, request, timeout_s)
        model.answer(snapshot, QUESTION, max_new_tokens=max_new_tokens)
    local_text[0] = model.answer(snapshot, QUESTION, max_new_tokens=max_new_tokens).text
    for i in range(calls):
        # Alternate the order so neither path always runs right after the other.
        for step in ((via_ros, in_process) if i % 2 == 0 else (in_process, via_ros)):
            step()
    return case


@dataclass
class CacheResult:
    """Second-question timings with and without the scene-prefix cache, ms."""

    tokens: int
    hit_prefill: list[float] = field(default_factory=list)
    hit_wall: list[float] = field(default_factory=list)
    miss_prefill: list[float] = field(default_factory=list)
    miss_wall: list[float] = field(default_factory=list)
    all_hits: bool = True


def measure_prefix_cache(model, snapshot, *, reps: int, max_new_tokens: int) -> CacheResult:
    result = CacheResult(len(snapshot.positions))
    model.answer(snapshot, QUESTION, max_new_tokens=max_new_tokens)  # the first question
    for i in range(reps):
        for cached in ((True, False) if i % 2 == 0 else (False, True)):
            start = time.perf_counter()
            answer = model.answer(snapshot, SECOND_QUESTION, max_new_tokens=max_new_tokens,
                                  use_prefix_cache=cached)
            wall = (time.perf_counter() - start) * 1e3
            if cached:
                result.all_hits &= answer.prefix_cache_hit
                result.hit_prefill.append(answer.prefill_ms)
                result.hit_wall.append(wall)
            else:
                result.miss_prefill.append(answer.prefill_ms)
                result.miss_wall.append(wall)
    return result


@dataclass
class LoadResult:
    """What the concurrent clients saw."""

    sent: int = 0
    codes: collections.Counter = field(default_factory=collections.Counter)
    lost: int = 0
    answered_rtt: list[float] = field(default_factory=list)
    busy_rtt: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    engine_counts: collections.Counter = field(default_factory=collections.Counter)
    after_ok: bool = False
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0


def measure_load(clients: list, inference: InferenceNode, probe, *, questions: int,
                 max_new_tokens: int, timeout_s: float) -> LoadResult:
    """Every client in its own thread asks ``questions`` questions back to back."""
    result = LoadResult()
    lock = threading.Lock()
    start_line = threading.Barrier(len(clients) + 1)

    def run(client) -> None:
        request = AskScene.Request(question=QUESTION, max_new_tokens=max_new_tokens)
        start_line.wait()
        for _ in range(questions):
            response, rtt = _call(client, request, timeout_s)
            with lock:
                result.sent += 1
                if response is None:
                    result.lost += 1
                    continue
                result.codes[response.error_code or "ok"] += 1
                if response.success:
                    result.answered_rtt.append(rtt)
                elif response.error_code == ErrorCode.BUSY.value:
                    result.busy_rtt.append(rtt)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    before_counts = collections.Counter(inference.engine.counts)
    gc.collect()
    result.rss_before_mib = _rss_mib()
    start_line.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - start
    result.engine_counts = collections.Counter(inference.engine.counts) - before_counts
    response, _ = _call(probe, AskScene.Request(question=SECOND_QUESTION,
                                                max_new_tokens=max_new_tokens), timeout_s)
    result.after_ok = response is not None and response.success
    gc.collect()
    result.rss_after_mib = _rss_mib()
    return result


# -- report ------------------------------------------------------------------------------------

def report(out, args, fused_tokens: int, cases: list[LatencyCase], cache: CacheResult,
           load: LoadResult) -> None:
    def row(name, value, target=""):
        out.write(f"{name:<62} {value:>22}   {target}\n")

    def p50_p95(values, fmt="{:.1f}"):
        return f"{fmt.format(_pct(values, 50))} / {fmt.format(_pct(values, 95))}"

    for case in cases:
        out.write(f"\n== 1. AskScene latency, {case.name} ({case.tokens} scene tokens), "
                  f"{len(case.rtt)} calls, max_new_tokens {args.max_new_tokens}, "
                  "prefix cache warm ==\n")
        if case.failures:
            row("failed service calls", f"{len(case.failures)}", case.failures[0][:60])
        if not case.rtt:
            continue
        row("tokens generated (every call)", ", ".join(map(str, sorted(case.tokens_generated))))
        row("same answer text through ROS and in-process", "yes" if case.same_answer else "NO")
        row("in-process prefix-cache hits", f"{case.cache_hits} / {len(case.local_wall)}")
        row("ms p50 / p95:", "service", "in-process")
        for label, ros_values, local_values in (
                ("  encode", case.encode, case.local_encode),
                ("  prefill", case.prefill, case.local_prefill),
                ("  decode (+ grounding pass)", case.decode, case.local_decode)):
            row(label, p50_p95(ros_values), p50_p95(local_values))
        row("  total_ms (engine: arrival -> outcome) / in-process wall",
            p50_p95(case.total), p50_p95(case.local_wall))
        row("  client round trip", p50_p95(case.rtt))
        rtt, wall = np.array(case.rtt), np.array(case.local_wall)
        stages = np.array(case.encode) + np.array(case.prefill) + np.array(case.decode)
        row("service overhead = round trip - in-process wall, ms p50/p95",
            f"{_pct(rtt, 50) - _pct(wall, 50):.1f} / {_pct(rtt, 95) - _pct(wall, 95):.1f}",
            "target < 10 ms")
        row("  per pair (round trip_i - wall_i), ms p50 / p95", p50_p95(rtt - wall))
        row("  of which ROS: round trip - total_ms, ms p50 / p95",
            p50_p95(rtt - np.array(case.total)))
        row("  of which engine: total_ms - (encode+prefill+decode)",
            p50_p95(np.array(case.total) - stages))

    out.write(f"\n== 2. scene-prefix cache, second question, {cache.tokens} scene tokens, "
              f"{len(cache.hit_wall)} reps each, in-process ==\n")
    row("cached answers that hit the cache", "yes" if cache.all_hits else "NO")
    row("prefill ms p50: cache off / on",
        f"{_pct(cache.miss_prefill, 50):.1f} / {_pct(cache.hit_prefill, 50):.1f}")
    row("prefill ratio off / on (p50)",
        f"{_pct(cache.miss_prefill, 50) / _pct(cache.hit_prefill, 50):.1f}x", "target >= 3x")
    row("total wall ms p50: cache off / on",
        f"{_pct(cache.miss_wall, 50):.1f} / {_pct(cache.hit_wall, 50):.1f}")
    row("total wall ratio off / on (p50)",
        f"{_pct(cache.miss_wall, 50) / _pct(cache.hit_wall, 50):.2f}x")

    expected = args.clients * args.questions
    other = sum(v for k, v in load.codes.items() if k not in ("ok", ErrorCode.BUSY.value))
    out.write(f"\n== 3. load: {args.clients} clients x {args.questions} questions, queue_size "
              f"{args.queue_size}, fused scene ({fused_tokens} tokens) ==\n")
    row("calls sent / responses", f"{load.sent} / {load.sent - load.lost}",
        f"expected {expected}")
    row("answered / BUSY / other errors",
        f"{load.codes['ok']} / {load.codes[ErrorCode.BUSY.value]} / {other}",
        ", ".join(f"{k} {v}" for k, v in load.codes.items()
                  if k not in ("ok", ErrorCode.BUSY.value)))
    row("lost (no response within the timeout)", f"{load.lost}", "target 0")
    row("engine counts during the load", ", ".join(
        f"{k} {v}" for k, v in sorted(load.engine_counts.items())) or "none")
    row("answered round trip ms p50 / p95", p50_p95(load.answered_rtt))
    row("BUSY round trip ms p50 / p95", p50_p95(load.busy_rtt))
    row("load wall s / answered per s",
        f"{load.wall_s:.1f} / {load.codes['ok'] / load.wall_s:.2f}")
    row("answers after the load", "yes" if load.after_ok else "NO", "target yes")
    row("VmRSS before / after, MiB", f"{load.rss_before_mib:.0f} / {load.rss_after_mib:.0f}")
    row("VmRSS after / before", f"{load.rss_after_mib / load.rss_before_mib:.3f}",
        "target flat (~1.00)")


# -- main --------------------------------------------------------------------------------------

def _drops(stats) -> str:
    return ", ".join(f"{k} {v}" for k, v in stats.drops.items() if v) or "none"


def _configure(node) -> None:
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError(f"{node.get_name()} failed to configure")
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError(f"{node.get_name()} failed to activate")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="measured calls per scene")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=256, help="LLM hidden size")
    parser.add_argument("--layers", type=int, default=4, help="LLM layers")
    parser.add_argument("--big-patch-voxel", type=float, default=0.1,
                        help="patch voxel (m) of the 1024-token scene")
    parser.add_argument("--cache-reps", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--questions", type=int, default=25, help="questions per client")
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--call-timeout-s", type=float, default=120.0)
    parser.add_argument("--domain-id", type=int, default=100 + os.getpid() % 100,
                        help="ROS_DOMAIN_ID of this run (default: unique per process)")
    args = parser.parse_args()
    out = sys.stdout
    run_start = time.perf_counter()

    t0 = time.perf_counter()
    scene = generate_scene(args.seed, "scene9000_00", SynthConfig(
        width=args.width, height=args.height, num_frames=args.frames, write_sens=False))
    frames = scene.frames
    model = build_tiny_scene_llm(CORPUS, hidden_size=args.hidden, num_layers=args.layers,
                                 num_heads=4, intermediate_size=2 * args.hidden,
                                 vocab_size=400)
    big = _big_snapshot(frames, model.patch_encoder, args.big_patch_voxel)
    out.write(f"set-up (not timed below): {len(frames)} frames {args.width}x{args.height}, "
              f"tiny model hidden {args.hidden} x {args.layers} layers, 1024-token scene: "
              f"{len(big.positions)} of {big.total_tokens} patch voxels at "
              f"{args.big_patch_voxel} m, {time.perf_counter() - t0:.1f} s; "
              f"ROS_DOMAIN_ID {args.domain_id}\n")
    if len(big.positions) != BIG_TOKENS:
        out.write(f"WARNING: the small-voxel scene has {len(big.positions)} tokens, not "
                  f"{BIG_TOKENS}: use more --frames or a smaller --big-patch-voxel\n")

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain_id)
    servers = MultiThreadedExecutor(num_threads=4, context=context)
    clients = MultiThreadedExecutor(num_threads=2, context=context)
    nodes = []

    def add(executor, node):
        executor.add_node(node)
        nodes.append(node)
        return node

    inference_params = [Parameter("max_new_tokens", value=args.max_new_tokens),
                        Parameter("queue_size", value=args.queue_size)]
    fusion = add(servers, FusionNode(encoder=model.patch_encoder, context=context,
                                     parameter_overrides=[
                                         Parameter("qos_reliability", value="reliable"),
                                         Parameter("pose_source", value="topic"),
                                         Parameter("queue_size", value=50),
                                         Parameter("patches_rate_hz", value=10.0)]))
    inference = add(servers, InferenceNode(model=model, context=context,
                                           parameter_overrides=inference_params))
    inference_big = add(servers, InferenceNode(
        model=model, snapshot_source=lambda: big, context=context, namespace="big",
        parameter_overrides=inference_params))
    client_node = add(clients, rclpy.create_node("bench_client", context=context))
    received: list[ScenePatches] = []
    client_node.create_subscription(ScenePatches, "scene/patches", received.append, LATCHED)
    load_clients = []
    for i in range(args.clients):
        node = add(clients, rclpy.create_node(f"bench_load_client_{i}", context=context))
        load_clients.append(node.create_client(AskScene, "ask_scene"))
    threads = [threading.Thread(target=e.spin, daemon=True) for e in (servers, clients)]
    for thread in threads:
        thread.start()
    try:
        for node in (fusion, inference, inference_big):
            _configure(node)
        t0 = time.perf_counter()
        _stream_frames(client_node, frames, fusion)
        version = fusion.fusion.stats["scene_version"]
        stats = fusion.pipeline.stats()
        patches = _wait_for(lambda: received and received[-1].scene_version == version
                            and received[-1], 30, "ScenePatches of the fused scene")
        fused = conv.snapshot_from_patches(patches)
        client = client_node.create_client(AskScene, "ask_scene")
        client_big = client_node.create_client(AskScene, "big/ask_scene")
        for c in [client, client_big, *load_clients]:
            if not c.wait_for_service(timeout_sec=30.0):
                raise RuntimeError(f"{c.srv_name} is not available")
        probe = AskScene.Request(question=QUESTION, max_new_tokens=1)
        _wait_for(lambda: (r := _call(client, probe, args.call_timeout_s)[0]) is not None
                  and r.scene_version == version, 60, "ask_scene to see the fused scene")
        out.write(f"fused over DDS: {len(frames)} frames sent, {stats.frames_received} "
                  f"received, {stats.frames_integrated} integrated ({stats.frames_dropped} "
                  f"dropped: {_drops(stats)}), {len(fused.positions)} "
                  f"patch tokens, scene version {version}, {time.perf_counter() - t0:.1f} s\n")

        t0 = time.perf_counter()
        cases = [measure_latency(name, c, model, snapshot, calls=args.calls,
                                 max_new_tokens=args.max_new_tokens, warmup=args.warmup,
                                 timeout_s=args.call_timeout_s)
                 for name, c, snapshot in (("fused scene via ScenePatches", client, fused),
                                           ("1024-token scene, composed", client_big, big))]
        out.write(f"1. latency done in {time.perf_counter() - t0:.1f} s\n")
        t0 = time.perf_counter()
        cache = measure_prefix_cache(model, big, reps=args.cache_reps,
                                     max_new_tokens=args.max_new_tokens)
        out.write(f"2. prefix cache done in {time.perf_counter() - t0:.1f} s\n")
        t0 = time.perf_counter()
        load = measure_load(load_clients, inference, client, questions=args.questions,
                            max_new_tokens=args.max_new_tokens, timeout_s=args.call_timeout_s)
        out.write(f"3. load done in {time.perf_counter() - t0:.1f} s\n")
        report(out, args, len(fused.positions), cases, cache, load)
    finally:
        for node in (inference_big, inference, fusion):
            node.trigger_shutdown()
        for executor in (servers, clients):
            executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        for thread in threads:
            thread.join(5)
    out.write(f"\ntotal run time {time.perf_counter() - run_start:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
