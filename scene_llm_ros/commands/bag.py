"""`scene-llm bag`: convert a ScanNet-format scene into a rosbag2 bag.

Example::

    scene-llm bag data/scannet/scans/scene0000_00 /tmp/scene0000_00_bag --storage mcap --every-nth 5
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from scene_llm_ros.data.rosbag.messages import COLOR_ENCODINGS, DEPTH_ENCODINGS
from scene_llm_ros.data.rosbag.writer import STORAGES, write_bag
from scene_llm_ros.data.types import RGBDFrame
from scene_llm_ros.errors import DataFormatError

_LOG = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bag`` verb."""
    parser = subparsers.add_parser(
        "bag", help="convert a ScanNet-format scene to a rosbag2 bag",
        description="Write a scene's posed RGB-D frames (exported frames/ or <scene>.sens) to a "
                    "rosbag2 bag: colour and registered depth images, camera info, /tf, "
                    "/tf_static and a PoseStamped topic.")
    parser.add_argument("scene_dir", type=Path, help="scene folder, e.g. scans/scene0000_00")
    parser.add_argument("out_bag", type=Path, help="bag directory to create (must not exist)")
    parser.add_argument("--storage", choices=STORAGES, default="mcap")
    parser.add_argument("--fps", type=float, default=None,
                        help="stamp frame i at i / FPS (default: .sens stamps as recorded, "
                             "exported frames at 30 fps)")
    parser.add_argument("--color-encoding", choices=COLOR_ENCODINGS, default="rgb8")
    parser.add_argument("--depth-encoding", choices=DEPTH_ENCODINGS, default="16UC1")
    parser.add_argument("--every-nth", type=int, default=1, metavar="N",
                        help="keep every N-th frame (stamps keep the original spacing)")
    parser.set_defaults(func=run)


def _restamped(frames: Iterable[RGBDFrame], fps: float) -> Iterator[RGBDFrame]:
    # Stamp by the scene's own frame index so that --every-nth keeps real-time spacing.
    for frame in frames:
        index = frame.extras.get("frame_index")
        if index is None:
            raise DataFormatError(f"frame at {frame.stamp_ns} ns has no extras['frame_index'] "
                                  "to restamp with --fps")
        yield dataclasses.replace(frame, stamp_ns=round(index * 1e9 / fps))


def run(args: argparse.Namespace) -> int:
    """Convert ``args.scene_dir`` to ``args.out_bag``; return the exit status."""
    # Imported here so that `scene-llm --help` does not load the ScanNet readers.
    from scene_llm_ros.data.scannet import iter_scene_frames

    if args.every_nth < 1:
        _LOG.error("--every-nth must be >= 1, got %d", args.every_nth)
        return 2
    if args.fps is not None and not args.fps > 0:
        _LOG.error("--fps must be positive, got %s", args.fps)
        return 2
    if args.out_bag.exists():
        _LOG.error("%s exists already; choose a new bag directory", args.out_bag)
        return 1
    frames: Iterable[RGBDFrame] = iter_scene_frames(
        args.scene_dir, every_nth=args.every_nth, fps=args.fps or 30.0)
    if args.fps is not None:
        frames = _restamped(frames, args.fps)
    with tqdm(frames, desc=f"bag {args.scene_dir.name}", unit="frame") as progress:
        count = write_bag(progress, args.out_bag, storage=args.storage,
                          color_encoding=args.color_encoding,
                          depth_encoding=args.depth_encoding)
    if count == 0:
        _LOG.error("%s: no frames with a pose; %s is an empty bag", args.scene_dir, args.out_bag)
        return 1
    _LOG.info("wrote %d frames of %s to %s", count, args.scene_dir, args.out_bag)
    return 0
