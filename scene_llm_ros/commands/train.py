"""`scene-llm train`: run one training stage from its YAML config.

Examples::

    scene-llm train --config training/configs/stage1_alignment.yaml --data /tmp/synth \\
        --out runs/stage1
    scene-llm train --config training/configs/stage2_grounding.yaml --data /tmp/synth \\
        --init-from runs/stage1/final --out runs/stage2
    scene-llm train --config training/configs/stage2_grounding.yaml --out runs/stage2 --resume
    torchrun --nproc_per_node=2 -m training --config training/configs/stage1_alignment.yaml
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

_LOG = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` verb."""
    parser = subparsers.add_parser(
        "train", help="run a training stage (alignment, grounding, instruction tuning)",
        description="Train the scene LLM on ScanNet-format scenes with ScanRefer/ScanQA/"
                    "Scan2Cap/SQA3D/Multi3DRefer annotations, as the YAML config says. Under "
                    "torchrun every process runs this command and DDP joins them.")
    parser.add_argument("--config", type=Path, required=True, help="stage YAML file")
    parser.add_argument("--out", type=Path, help="run directory (overrides run.out_dir)")
    parser.add_argument("--data", type=Path, help="dataset root (overrides data.root)")
    parser.add_argument("--init-from", type=Path,
                        help="checkpoint to start from, e.g. the previous stage's final/")
    parser.add_argument("--encoder", type=Path,
                        help="a built-in patch encoder directory from `scene-llm align-encoder` "
                             "for a tiny model (sets model.tiny.patch_encoder)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides "
                                                      "optim.max_steps, and so the schedule)")
    parser.add_argument("--stop-after", type=int,
                        help="end after this many steps, keeping the schedule of max-steps "
                             "(continue later with --resume)")
    parser.add_argument("--seed", type=int, help="overrides seed")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest complete checkpoint of the run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; return the exit status."""
    from training.config import load_config
    from training.trainer import train

    overrides = {
        "run": {"out_dir": str(args.out) if args.out else None},
        "data": {"root": str(args.data) if args.data else None},
        "optim": {"max_steps": args.max_steps},
    }
    if args.init_from is not None:
        overrides["model"] = {"init": "checkpoint", "checkpoint": str(args.init_from)}
    config = load_config(args.config, overrides=overrides)
    if args.seed is not None:
        config.seed = args.seed
    if args.encoder is not None:
        config.model.tiny["patch_encoder"] = {"type": "builtin", "path": str(args.encoder)}
    result = train(config, resume=args.resume, stop_after=args.stop_after)
    if result.losses:
        _LOG.info("steps %d-%d, last loss %.4f, %.3f s/step, %.1f examples/s -> %s",
                  result.start_step, result.end_step, result.losses[-1],
                  result.seconds_per_step, result.examples_per_second, result.final_dir)
    return 0
