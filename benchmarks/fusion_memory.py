"""Fusion memory while the camera revisits a room it already covered, measured in one run.

    . tools/env.sh && python benchmarks/fusion_memory.py [--frames 150] [--revisits 3]

Generates a synthetic 640x480 walk through a room (the first loop), fuses it with SceneFusion
(TSDF + keyframe patches with the built-in encoder), then replays the same frames with later
stamps ``--revisits`` more times, as a robot driving the same loop again would. After each loop
it prints the process RSS (``VmRSS`` of ``/proc/self/status``), the scene's own counters
(``memory_bytes``, ``tsdf_voxels``, ``patch_tokens``, keyframes), and finally the ratio of the
last loop's RSS to the first loop's. The issue's target: within 10 %.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time

from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import BuiltinPatchEncoder
from scene_llm_ros.fusion.scene import SceneFusion

_MIB = 1024 * 1024


def proc_status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"/proc/self/status has no {field!r} field")


def rss_bytes() -> int:
    """Resident set size after a garbage collection (so dead Python objects do not count)."""
    gc.collect()
    return proc_status_bytes("VmRSS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames of the first loop")
    parser.add_argument("--revisits", type=int, default=3, help="loops after the first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tolerance", type=float, default=0.10,
                        help="largest allowed growth of RSS from the first to the last loop")
    args = parser.parse_args()
    out = sys.stdout
    run_start = time.perf_counter()

    t0 = time.perf_counter()
    scene = generate_scene(args.seed, "scene9000_00", SynthConfig(
        width=640, height=480, num_frames=args.frames, noise=True, write_sens=False))
    frames = scene.frames
    out.write(f"generated {len(frames)} frames 640x480 in {time.perf_counter() - t0:.1f} s "
              "(frames stay in memory for the whole run, so they are part of every RSS below)\n")

    before = rss_bytes()
    fusion = SceneFusion(FusionConfig(), encoder=BuiltinPatchEncoder())
    # A later loop starts one frame period after the previous one ended, so stamps only grow.
    period_ns = frames[1].stamp_ns - frames[0].stamp_ns if len(frames) > 1 else 33_333_333
    loop_ns = frames[-1].stamp_ns - frames[0].stamp_ns + period_ns

    header = (f"{'loop':>4} {'frames':>7} {'s':>6} {'RSS MiB':>8} {'vs loop 1':>9} "
              f"{'scene MiB':>9} {'tsdf_voxels':>12} {'patch_tokens':>12} {'keyframes':>9}\n")
    out.write(f"RSS before SceneFusion was built: {before / _MIB:.1f} MiB\n\n{header}")
    rss = []
    for loop in range(1 + args.revisits):
        t0 = time.perf_counter()
        for frame in frames:
            fusion.integrate(dataclasses.replace(frame,
                                                 stamp_ns=frame.stamp_ns + loop * loop_ns))
        elapsed = time.perf_counter() - t0
        rss.append(rss_bytes())
        stats = fusion.stats
        out.write(f"{loop + 1:>4} {stats['frames_integrated']:>7} {elapsed:>6.1f} "
                  f"{rss[-1] / _MIB:>8.1f} {(rss[-1] - rss[0]) / _MIB:>+9.1f} "
                  f"{stats['memory_bytes'] / _MIB:>9.1f} {stats['tsdf_voxels']:>12} "
                  f"{stats['patch_tokens']:>12} {stats['keyframes']:>9}\n")

    ratio = rss[-1] / rss[0]
    out.write(f"\nRSS last / first loop: {ratio:.3f}  (target <= {1 + args.tolerance:.2f}: "
              f"{'met' if ratio <= 1 + args.tolerance else 'NOT met'})\n")
    # The frames and libraries dominate the process; the fusion's own growth is stricter.
    share = [(value - before) / _MIB for value in (rss[0], rss[-1])]
    out.write(f"RSS grown since SceneFusion was built (encoder, TSDF, patch memory): "
              f"{share[0]:.1f} MiB after loop 1, {share[1]:.1f} MiB after loop "
              f"{len(rss)}; ratio {share[1] / share[0]:.3f}\n" if share[0] > 0 else
              "RSS did not grow while fusing the first loop\n")
    out.write(f"peak RSS (VmHWM) {proc_status_bytes('VmHWM') / _MIB:.1f} MiB\n")
    out.write(f"total run time {time.perf_counter() - run_start:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
