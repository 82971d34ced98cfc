"""Fusion core vs bare Open3D on the same frames, measured side by side in one run.

    . tools/env.sh && python benchmarks/fusion_core.py [--frames 300] [--seed 7]

Generates a synthetic 640x480 sequence, then integrates the same frames (a) with a bare Open3D
VoxelBlockGrid at the same voxel size and (b) with SceneFusion (TSDF + keyframe patches with the
embedded model's encoder, whose patch classes also fill the semantic map), each on float metres
and on the camera's uint16/uint8 formats, and prints per-frame costs, their ratios, keyframe
patch cost, and the fused surface's accuracy against the ground-truth mesh. The same encoder
architecture without a class head runs beside it, so the semantic map's own cost (per keyframe
and per snapshot) is measured too. The issue's targets are printed beside them.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import open3d as o3d
import open3d.core as o3c

from scene_llm_ros.data.depth import depth_to_uint16
from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.fusion.accuracy import surface_accuracy
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import BuiltinPatchEncoder, PatchEncoder, load_patch_encoder
from scene_llm_ros.fusion.lifting import backproject
from scene_llm_ros.fusion.scene import SceneFusion


def bare_open3d_ms(frames, voxel_size: float, depth_max: float, *, sensor_formats: bool
                   ) -> list[float]:
    """Per-frame ms of Open3D alone. ``sensor_formats``: uint16 mm depth and uint8 colour
    prepared outside the timer (the best case: a camera's own 16UC1/rgb8), else float inputs
    converted inside it."""
    grid = o3d.t.geometry.VoxelBlockGrid(
        ("tsdf", "weight", "color"), (o3c.float32, o3c.float32, o3c.float32),
        ((1), (1), (3)), voxel_size, 16, 4000, o3c.Device("CPU:0"))
    prepared = [(np.nan_to_num(f.depth * 1000.0).round().astype(np.uint16), f.color)
                for f in frames] if sensor_formats else None
    scale = 1000.0 if sensor_formats else 1.0
    times = []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        if sensor_formats:
            depth, color = prepared[i]
        else:
            depth = np.nan_to_num(frame.depth, nan=0.0)
            color = frame.color.astype(np.float32) / 255.0
        depth_image = o3d.t.geometry.Image(o3c.Tensor(depth))
        color_image = o3d.t.geometry.Image(o3c.Tensor(color))
        intrinsic = o3c.Tensor(frame.intrinsics.matrix, o3c.float64)
        extrinsic = o3c.Tensor(np.linalg.inv(frame.T_world_cam), o3c.float64)
        blocks = grid.compute_unique_block_coordinates(depth_image, intrinsic, extrinsic, scale,
                                                       depth_max, 4.0)
        grid.integrate(blocks, depth_image, color_image, intrinsic, extrinsic, scale, depth_max,
                       4.0)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _run_scene_fusion(config: FusionConfig, frames, encoder: PatchEncoder) -> tuple:
    """SceneFusion over ``frames``: the fusion, ms per frame, keyframe patch ms, non-keyframe
    ms."""
    fusion = SceneFusion(config, encoder=encoder)
    total_ms, patch_ms, non_key = [], [], []
    for frame in frames:
        start = time.perf_counter()
        result = fusion.integrate(frame)
        elapsed = (time.perf_counter() - start) * 1e3
        total_ms.append(elapsed)
        if result.keyframe:
            patch_ms.append(result.patch_ms)
        else:
            non_key.append(elapsed)
    return fusion, total_ms, patch_ms, non_key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    t0 = time.perf_counter()
    scene = generate_scene(args.seed, "scene9000_00", SynthConfig(num_frames=args.frames))
    frames = scene.frames
    out = sys.stdout
    out.write(f"generated {len(frames)} frames 640x480 in {time.perf_counter() - t0:.1f} s\n")

    config = FusionConfig()
    bare_float = bare_open3d_ms(frames, config.voxel_size_m, config.depth_max_m,
                                sensor_formats=False)
    bare = bare_open3d_ms(frames, config.voxel_size_m, config.depth_max_m, sensor_formats=True)
    # Like for like: SceneFusion gets the camera's own formats (uint16 mm depth, as a 16UC1
    # message gives them) against bare Open3D on them, and float metres against float.
    sensor_frames = [dataclasses.replace(f, depth=depth_to_uint16(f.depth)) for f in frames]
    encoder = load_patch_encoder("embedded")
    unclassified = BuiltinPatchEncoder(encoder.config)  # same network, no class head
    fusion, total_ms, patch_ms, non_key = _run_scene_fusion(config, sensor_frames, encoder)
    _, _, _, non_key_float = _run_scene_fusion(config, frames, encoder)
    plain, _, plain_patch_ms, _ = _run_scene_fusion(config, sensor_frames, unclassified)
    snapshots, snapshot_ms = {}, {}
    for name, core in (("semantic", fusion), ("plain", plain)):
        start = time.perf_counter()
        snapshots[name] = core.snapshot()
        snapshot_ms[name] = (time.perf_counter() - start) * 1e3
    classified = float(np.mean(snapshots["semantic"].point_classes != -1))

    observed = np.concatenate([backproject(f.depth, f.intrinsics, f.T_world_cam, stride=16)
                               for f in frames])
    points, _ = fusion.point_cloud()
    accuracy = surface_accuracy(points, scene.mesh.vertices, scene.mesh.faces, observed)

    def row(name, value, target=""):
        out.write(f"{name:<52} {value:>10}   {target}\n")

    row("bare Open3D, float inputs, ms/frame (median)", f"{np.median(bare_float):.1f}")
    row("bare Open3D, uint16/uint8 ready, ms/frame (median)", f"{np.median(bare):.1f}")
    row("SceneFusion non-keyframe, float inputs, ms/frame", f"{np.median(non_key_float):.1f}")
    row("ratio to bare Open3D, float inputs",
        f"{np.median(non_key_float) / np.median(bare_float):.2f}x")
    row("SceneFusion non-keyframe, uint16/uint8, ms/frame", f"{np.median(non_key):.1f}")
    row("ratio to bare Open3D, uint16/uint8 (non-keyframe)",
        f"{np.median(non_key) / np.median(bare):.2f}x", "target <= 1.3x")
    row("SceneFusion all frames, ms/frame (mean)", f"{np.mean(total_ms):.1f}")
    row("SceneFusion throughput, frames/s", f"{1e3 / np.mean(total_ms):.1f}",
        "target >= 10")
    row("keyframes", f"{len(patch_ms)}")
    row("keyframe patch update, ms (median / p95)",
        f"{np.median(patch_ms):.0f} / {np.percentile(patch_ms, 95):.0f}", "target < 50")
    row("  of which semantic map, ms (median, vs no class head)",
        f"{np.median(patch_ms) - np.median(plain_patch_ms):.1f}")
    row("snapshot with / without semantic map, ms",
        f"{snapshot_ms['semantic']:.0f} / {snapshot_ms['plain']:.0f}")
    row("surface points with a class", f"{classified:.3f}")
    row("semantic map memory, MiB",
        f"{(fusion.stats['memory_bytes'] - plain.stats['memory_bytes']) / 2**20:.1f}")
    row("surface median error, m",
        f"{accuracy.median_error_m:.4f}", f"target <= {1.5 * config.voxel_size_m:.3f}")
    row("surface completeness at 5 cm", f"{accuracy.completeness:.3f}", "target >= 0.90")
    row("patch tokens / TSDF voxels",
        f"{fusion.stats['patch_tokens']} / {fusion.stats['tsdf_voxels']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
