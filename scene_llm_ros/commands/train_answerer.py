"""`scene-llm train-answerer`: teach a checkpoint to answer short questions from segments.

Example::

    scene-llm train-answerer --config training/configs/segment_answerer.yaml \\
        --checkpoint runs/listener/final --data data/synth300 --out runs/answerer
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-answerer`` verb."""
    parser = subparsers.add_parser(
        "train-answerer", help="train a checkpoint's segment answerer on ScanQA and SQA3D",
        description="Train the segment answerer, which answers ScanQA and SQA3D questions "
                    "(tasks qa and situated) by classification over the training answers, "
                    "reading the object segments the inference node computes from the fused "
                    "scene. It starts from the checkpoint's segment listener. Writes "
                    "OUT/final/: the checkpoint with segment_answerer/ added, loadable by the "
                    "inference node.")
    parser.add_argument("--config", type=Path, required=True, help="answerer YAML file")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="checkpoint with a segment listener (its tokenizer and fusion "
                             "settings), or 'embedded'")
    parser.add_argument("--data", type=Path, help="dataset root (overrides data.root)")
    parser.add_argument("--out", type=Path, help="run directory (overrides out_dir)")
    parser.add_argument("--epochs", type=int, help="passes over the questions (overrides "
                                                   "optim.epochs)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; return the exit status."""
    from training.answerer_training import FINAL_DIR, load_answerer_config, train_answerer

    config = load_answerer_config(args.config, root=args.data, out_dir=args.out,
                                  epochs=args.epochs)
    summary = train_answerer(config, args.checkpoint)
    for split, metrics in summary["metrics"].items():
        scores = ", ".join(f"{name} {value:.3f}" for name, value in metrics.items()
                           if name not in ("items", "unanswerable"))
        print(f"{split}: {scores} ({metrics.get('items', 0)} questions, "
              f"{metrics['unanswerable']} with no answer in the vocabulary of "
              f"{summary['answers']})")
    print(f"checkpoint with answerer -> {Path(config.out_dir) / FINAL_DIR}")
    return 0
