"""`scene-llm synth`: generate a synthetic ScanNet-format dataset with annotations.

    scene-llm synth --out /tmp/synth20 --scenes 20 --seed 0
    scene-llm synth --out /tmp/tiny --scenes 2 --frames 10 --width 160 --height 120 --no-sens
"""
from __future__ import annotations

import argparse
import json
import logging

from scene_llm_ros.data.synth import SynthConfig, write_dataset
from scene_llm_ros.data.synth.config import SynthConfigError

_LOG = logging.getLogger(__name__)


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.8,0.1,0.1, got "
                                         f"{text!r}") from exc
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated ratios, got {text!r}")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` verb."""
    parser = subparsers.add_parser(
        "synth", help="generate synthetic ScanNet-format scenes with annotations",
        description="Generate furnished rooms, render posed RGB-D walks and write them with "
                    "ScanRefer/ScanQA/Scan2Cap/SQA3D/Multi3DRefer annotations.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--scenes", type=int, required=True, help="number of scenes")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    default = SynthConfig()
    parser.add_argument("--frames", type=int, default=default.num_frames,
                        help=f"frames per scene (default {default.num_frames})")
    parser.add_argument("--width", type=int, default=default.width, help="image width")
    parser.add_argument("--height", type=int, default=default.height, help="image height")
    parser.add_argument("--no-noise", action="store_true", help="render without sensor noise")
    parser.add_argument("--no-sens", action="store_true",
                        help="skip the .sens files (exported frames only)")
    parser.add_argument("--split-ratios", type=_ratios, default=default.split_ratios,
                        help="train,val,test fractions (default 0.8,0.1,0.1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the dataset described by ``args``; return the exit status."""
    from tqdm import tqdm

    if args.scenes < 1:
        raise SynthConfigError(f"--scenes must be at least 1, got {args.scenes}")
    config = SynthConfig(width=args.width, height=args.height, num_frames=args.frames,
                         noise=not args.no_noise, write_sens=not args.no_sens,
                         split_ratios=args.split_ratios)
    with tqdm(total=args.scenes, unit="scene", desc="synth") as bar:
        summary = write_dataset(args.out, config, scenes=args.scenes, seed=args.seed,
                                progress=lambda sid: (bar.set_postfix_str(sid), bar.update(1)))
    _LOG.info("splits: %s", {k: len(v) for k, v in summary["splits"].items()})
    _LOG.info("annotations: %s", json.dumps(summary["annotations"]))
    return 0
