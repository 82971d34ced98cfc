"""`scene-llm fuse`: fuse a posed RGB-D rosbag offline into a saved scene.

Example::

    scene-llm fuse --bag /tmp/scene9000_00_bag --out /tmp/scene9000_00_fused \\
        --gt-scene /tmp/synth/scans/scene9000_00
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scene_llm_ros.errors import InvalidFrameError

_LOG = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fuse`` verb."""
    parser = subparsers.add_parser(
        "fuse", help="fuse a posed RGB-D rosbag into a saved scene (TSDF + 3D patch memory)",
        description="Read colour, depth, camera info and poses from a rosbag2 bag, fuse every "
                    "frame with the same core the fusion node runs, and save the scene.")
    parser.add_argument("--bag", type=Path, required=True, help="rosbag2 directory or file")
    parser.add_argument("--out", type=Path, required=True, help="scene directory to write")
    parser.add_argument("--color-topic")
    parser.add_argument("--depth-topic")
    parser.add_argument("--info-topic")
    parser.add_argument("--pose-topic", help="PoseStamped/Odometry topic (default: TF)")
    parser.add_argument("--tf-parent", default="map", help="scene frame for TF lookups")
    parser.add_argument("--voxel-size", type=float, default=0.04, help="TSDF voxel, metres")
    parser.add_argument("--encoder", default="builtin",
                        help="patch encoder: 'builtin' (initial weights), a built-in encoder or "
                             "model checkpoint directory, or a Hugging Face vision model directory")
    parser.add_argument("--gt-scene", type=Path, default=None,
                        help="ScanNet-format scene whose mesh the fused surface is scored on")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fuse ``args.bag`` into ``args.out``; return the exit status."""
    from scene_llm_ros.data.rosbag import RGBDBagReader
    from scene_llm_ros.fusion.accuracy import surface_accuracy
    from scene_llm_ros.fusion.config import FusionConfig
    from scene_llm_ros.fusion.encoders import load_patch_encoder
    from scene_llm_ros.fusion.lifting import backproject
    from scene_llm_ros.fusion.scene import SceneFusion

    reader = RGBDBagReader(args.bag, color_topic=args.color_topic, depth_topic=args.depth_topic,
                           info_topic=args.info_topic, pose_topic=args.pose_topic,
                           pose_source="topic" if args.pose_topic else None,
                           tf_parent=args.tf_parent)
    _LOG.info("reading %s: %s (poses from %s)", args.bag, reader.resolved_topics,
              reader.pose_source)
    encoder = load_patch_encoder(args.encoder)
    fusion = SceneFusion(FusionConfig(voxel_size_m=args.voxel_size), encoder=encoder,
                         scene_frame=args.tf_parent)
    observed: list[np.ndarray] = []
    rejected = 0
    integrate_ms, patch_ms = [], []
    start = time.perf_counter()
    for frame in tqdm(reader, total=len(reader), desc="fusing", unit="frame"):
        try:
            result = fusion.integrate(frame)
        except InvalidFrameError as exc:
            rejected += 1
            _LOG.debug("frame at %d ns rejected: %s", frame.stamp_ns, exc)
            continue
        integrate_ms.append(result.integrate_ms)
        if result.keyframe:
            patch_ms.append(result.patch_ms)
        if args.gt_scene is not None:
            observed.append(backproject(frame.depth, frame.intrinsics, frame.T_world_cam,
                                        stride=16))
    elapsed = time.perf_counter() - start
    version = fusion.save(args.out)
    stats = fusion.stats
    summary = {"bag": str(args.bag), "topics": reader.resolved_topics, "reader": reader.stats,
               "rejected": rejected, **stats, "scene_version": version,
               "seconds": round(elapsed, 2),
               "integrate_ms_mean": round(float(np.mean(integrate_ms)), 2) if integrate_ms
               else None,
               "keyframe_patch_ms_mean": round(float(np.mean(patch_ms)), 2) if patch_ms
               else None}
    if args.gt_scene is not None and observed:
        from scene_llm_ros.data.scannet import load_scene

        gt = load_scene(args.gt_scene)
        points, _ = fusion.point_cloud()
        accuracy = surface_accuracy(points, gt.mesh.vertices, gt.mesh.faces,
                                    np.concatenate(observed))
        summary["surface"] = {k: round(v, 4) if isinstance(v, float) else v
                              for k, v in vars(accuracy).items()}
    (Path(args.out) / "fuse_summary.json").write_text(json.dumps(summary, indent=2))
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0
