"""Cost of the ScenePatches transport (fusion and inference in separate processes) against
sharing the snapshot in one process, measured side by side in one run.

    . tools/env.sh && python benchmarks/scene_patches.py [--frames 120] [--repeats 20]

Fuses a synthetic 640x480 walk, then for the same snapshot measures: building the message,
its serialized size, DDS delivery from a publisher node to a subscriber node (transient
local, reliable, with the large-image Fast DDS profile), rebuilding the snapshot on the
receiving side, and, for comparison, taking the snapshot in process (what `scene-llm run`
does).
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

PROFILE = Path(__file__).resolve().parents[1] / "config" / "fastdds_large_images.xml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(PROFILE))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import serialize_message

    from scene_llm_ros.data.synth import SynthConfig, generate_scene
    from scene_llm_ros.fusion.encoders import BuiltinPatchEncoder
    from scene_llm_ros.fusion.scene import SceneFusion
    from scene_llm_ros.msg import ScenePatches
    from scene_llm_ros.nodes import conversions as conv

    scene = generate_scene(args.seed, "scene9000_00", SynthConfig(
        num_frames=args.frames, noise=True, write_sens=False))
    fusion = SceneFusion(encoder=BuiltinPatchEncoder())
    for frame in scene.frames:
        fusion.integrate(frame)
    snapshot = fusion.snapshot()
    encoder = fusion.encoder.identity

    def timed(fn, repeats=args.repeats):
        times, result = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            result = fn()
            times.append((time.perf_counter() - start) * 1e3)
        return np.array(times), result

    in_process, _ = timed(fusion.snapshot)  # cached per scene version: what run shares
    build, msg = timed(lambda: conv.scene_patches_msg(snapshot, encoder))
    size = len(serialize_message(msg))
    rebuild, received = timed(lambda: conv.snapshot_from_patches(msg))
    assert np.array_equal(received.features, snapshot.features)

    rclpy.init()
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    sender, receiver = rclpy.create_node("patches_sender"), rclpy.create_node("patches_receiver")
    arrived = threading.Event()
    arrival = [0.0]

    def on_patches(_msg) -> None:
        arrival[0] = time.perf_counter()
        arrived.set()

    publisher = sender.create_publisher(ScenePatches, "scene/patches", qos)
    receiver.create_subscription(ScenePatches, "scene/patches", on_patches, qos)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(receiver)
    threading.Thread(target=executor.spin, daemon=True).start()
    while publisher.get_subscription_count() < 1:
        time.sleep(0.05)
    delivery = []
    for _ in range(args.repeats + 1):
        arrived.clear()
        start = time.perf_counter()
        publisher.publish(msg)
        if not arrived.wait(30):
            sys.stderr.write("a ScenePatches message was not delivered within 30 s\n")
            return 1
        delivery.append((arrival[0] - start) * 1e3)
    executor.shutdown()
    rclpy.shutdown()
    delivery = np.array(delivery[1:])  # the first one includes matching the reader

    rows = [("snapshot in process (scene-llm run)", in_process),
            ("build ScenePatches message", build),
            ("DDS publish -> callback", delivery),
            ("rebuild snapshot from message", rebuild)]
    transport = build + delivery + rebuild
    print(f"scene: {len(scene.frames)} frames 640x480, {len(snapshot.positions)} tokens x "
          f"{snapshot.features.shape[1]} (float16), {len(snapshot.points)} surface points, "
          f"keyframe {snapshot.keyframe.color.shape[1]}x{snapshot.keyframe.color.shape[0]}")
    print(f"serialized ScenePatches: {size / 1e6:.2f} MB")
    print(f"{'step':40s} {'median ms':>10s} {'p95 ms':>8s}")
    for name, times in rows:
        print(f"{name:40s} {np.median(times):10.2f} {np.percentile(times, 95):8.2f}")
    print(f"{'transport total (build + DDS + rebuild)':40s} {np.median(transport):10.2f} "
          f"{np.percentile(transport, 95):8.2f}")
    print(f"transport / in-process: {np.median(transport) / max(np.median(in_process), 1e-3):.0f}x"
          f" (paid once per scene version, at most patches_rate_hz times a second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
