"""`scene-llm train-listener`: teach a checkpoint which segment a description means.

Example::

    scene-llm train-listener --config training/configs/segment_listener.yaml \\
        --checkpoint runs/embedded/final --data data/synth300 --out runs/listener
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-listener`` verb."""
    parser = subparsers.add_parser(
        "train-listener", help="train a checkpoint's segment listener on referring expressions",
        description="Train the segment listener that picks the object segment a description "
                    "refers to (ScanRefer and single-target Multi3DRefer), over the segments "
                    "the inference node computes from the fused scene. Writes OUT/final/: the "
                    "checkpoint with segment_listener/ added, loadable by the inference node.")
    parser.add_argument("--config", type=Path, required=True, help="listener YAML file")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="trained scene LLM checkpoint (its tokenizer and fusion settings)")
    parser.add_argument("--data", type=Path, help="dataset root (overrides data.root)")
    parser.add_argument("--extra-data", type=Path, nargs="+",
                        help="more dataset roots whose training descriptions it also learns "
                             "from (overrides data.extra_roots)")
    parser.add_argument("--out", type=Path, help="run directory (overrides out_dir)")
    parser.add_argument("--epochs", type=int, help="passes over the descriptions (overrides "
                                                   "optim.epochs)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; return the exit status."""
    from training.listener_training import FINAL_DIR, load_listener_config, train_listener

    config = load_listener_config(args.config, root=args.data, out_dir=args.out,
                                  epochs=args.epochs, extra_roots=args.extra_data)
    summary = train_listener(config, args.checkpoint)
    for split, metrics in summary["metrics"].items():
        if metrics.get("items"):
            print(f"{split}: picked segment Acc@0.25 {metrics['acc@0.25']:.3f}, Acc@0.5 "
                  f"{metrics['acc@0.5']:.3f} (best segment {metrics['best@0.25']:.3f} / "
                  f"{metrics['best@0.5']:.3f}; {metrics['items']} items, {metrics['skipped']} "
                  f"without an overlapping segment)")
    for split, boxes in summary["box_completion"].items():
        if boxes["segment"].get("objects"):
            print(f"{split}: object boxes Acc@0.25 / Acc@0.5 from the best segment "
                  f"{boxes['segment']['acc@0.25']:.3f} / {boxes['segment']['acc@0.5']:.3f}, "
                  f"completed {boxes['completed']['acc@0.25']:.3f} / "
                  f"{boxes['completed']['acc@0.5']:.3f} ({boxes['segment']['objects']} "
                  f"objects)")
    print(f"checkpoint with listener -> {Path(config.out_dir) / FINAL_DIR}")
    return 0
