"""`scene-llm align-encoder`: train the built-in patch encoder on object words (stage 0).

Example::

    scene-llm align-encoder --config training/configs/encoder_alignment.yaml \\
        --data data/synth300 --out runs/encoder
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

_LOG = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``align-encoder`` verb."""
    parser = subparsers.add_parser(
        "align-encoder", help="train the built-in patch encoder on object words (stage 0)",
        description="Teach the built-in 2D patch encoder the words of the objects each patch "
                    "shows (labels from lifting frames onto the annotated mesh, words from "
                    "class names and ScanRefer/Scan2Cap descriptions). Writes OUT/"
                    "patch_encoder/, which the LLM stages load with model.tiny.patch_encoder: "
                    "{type: builtin, path: OUT/patch_encoder}.")
    parser.add_argument("--config", type=Path, required=True, help="alignment YAML file")
    parser.add_argument("--data", type=Path, help="dataset root (overrides data.root)")
    parser.add_argument("--extra-data", type=Path, nargs="+",
                        help="more dataset roots whose training scenes it also learns from "
                             "(overrides data.extra_roots)")
    parser.add_argument("--out", type=Path, help="run directory (overrides out_dir)")
    parser.add_argument("--epochs", type=int, help="passes over the frames (overrides "
                                                   "optim.epochs)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Align as ``args`` say; return the exit status."""
    from training.encoder_alignment import ENCODER_DIR, align_encoder, load_alignment_config

    config = load_alignment_config(args.config, root=args.data, out_dir=args.out,
                                   epochs=args.epochs, extra_roots=args.extra_data)
    summary = align_encoder(config)
    for split, metrics in summary["metrics"].items():
        print(f"{split}: patch class accuracy {metrics['patch_class_accuracy']:.3f}, "
              f"loss {metrics['loss']:.4f} ({metrics['patches']} patches)")
    print(f"encoder -> {Path(config.out_dir) / ENCODER_DIR}")
    return 0
