"""`scene-llm eval-offline`: answer a split's questions with a checkpoint, score them with the
official metrics, and plot the training curves.

Example::

    scene-llm eval-offline --checkpoint runs/stage3/final --data /tmp/synth --split test \\
        --out runs/stage3/eval --logs runs/stage1 runs/stage2 runs/stage3

Writes ``report.json`` and ``report.md`` (metrics), ``predictions.jsonl`` (every answer with
its boxes) and ``training_curves.png``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

_LOG = logging.getLogger(__name__)


def _tasks(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval-offline`` verb."""
    parser = subparsers.add_parser(
        "eval-offline",
        help="score a checkpoint on a split with the official metrics",
        description="Fuse the split's scenes (cached), ask every ScanQA/SQA3D/ScanRefer/"
                    "Multi3DRefer/Scan2Cap item through SceneLlm.answer, and write the "
                    "official metrics and the training curves.")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="model directory (SceneLlm.save_pretrained layout)")
    parser.add_argument("--data", type=Path, required=True, help="dataset root (ScanNet layout)")
    parser.add_argument("--split", default="val", help="split to evaluate (default val)")
    parser.add_argument("--out", type=Path, required=True, help="report directory")
    parser.add_argument("--tasks", type=_tasks,
                        default=("scanqa", "sqa3d", "scanrefer", "multi3drefer", "scan2cap"),
                        help="comma-separated subset of scanqa,sqa3d,scanrefer,multi3drefer,"
                             "scan2cap")
    parser.add_argument("--limit", type=int, help="at most this many items per task")
    parser.add_argument("--max-new-tokens", type=int, default=48,
                        help="answer length limit (default 48)")
    parser.add_argument("--annotations", type=Path, help="annotation folder "
                                                         "(default DATA/annotations)")
    parser.add_argument("--cache-dir", type=Path,
                        help="scene-token cache (default DATA/scene_token_cache)")
    parser.add_argument("--logs", type=Path, nargs="*",
                        help="runs whose TensorBoard curves to plot (default: the "
                             "checkpoint's run)")
    parser.add_argument("--no-refine", action="store_true",
                        help="score the model's raw boxes instead of refining them on the "
                             "fused surface as the inference node does")
    parser.add_argument("--no-meteor", action="store_true",
                        help="skip METEOR (it starts a Java process)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate as ``args`` say; return the exit status."""
    from scene_llm_ros.fusion.config import FusionConfig
    from scene_llm_ros.metrics import evaluate, write_report
    from scene_llm_ros.model import SceneLlm
    from training.checkpoints import fusion_settings
    from training.curves import plot_training_curves
    from training.dataset import SplitScenes
    from training.evaluation import OfflineEvaluator, run_offline_evaluation
    from training.scene_cache import FrameSelection, SceneTokenCache

    model = SceneLlm.from_pretrained(args.checkpoint)
    settings = fusion_settings(args.checkpoint)
    if settings is None:
        _LOG.warning("%s has no training.json; fusing with default settings and the model's "
                     "scene-token settings %s", args.checkpoint, model.config.scene_tokens)
        fusion, frames = dataclasses.replace(FusionConfig(), **model.config.scene_tokens), {}
    else:
        fusion, frames = settings
    cache = SceneTokenCache(args.cache_dir or args.data / "scene_token_cache",
                            encoder=model.patch_encoder, fusion=fusion,
                            frames=FrameSelection(int(frames.get("every_nth", 1)),
                                                  frames.get("max_frames")))
    scenes = SplitScenes.discover(args.data, args.split)
    evaluator = OfflineEvaluator(model, scenes, cache, max_new_tokens=args.max_new_tokens,
                                 refine=not args.no_refine)
    result_run = run_offline_evaluation(evaluator,
                                        annotations_dir=args.annotations or
                                        args.data / "annotations",
                                        split=args.split, tasks=args.tasks, limit=args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "predictions.jsonl", "w", encoding="utf-8") as stream:
        for prediction in result_run.predictions:
            stream.write(json.dumps(prediction) + "\n")
    if not result_run.records:
        _LOG.error("nothing to score: %s", "; ".join(result_run.notes))
        return 1
    result = evaluate(result_run.records, meteor=not args.no_meteor)
    result.notes.extend(result_run.notes)
    if args.no_refine:
        result.notes.append("boxes are the model's raw predictions (--no-refine)")
    json_path, markdown_path = write_report(result, args.out)
    logs = args.logs if args.logs else [args.checkpoint]
    png = plot_training_curves({Path(p).name if Path(p).name not in ("final", "tensorboard")
                                else Path(p).parent.name: p for p in logs},
                               args.out / "training_curves.png")
    if png is None:
        _LOG.warning("no TensorBoard logs found for %s; no training curves", logs)
    _LOG.info("wrote %s, %s%s\n%s", json_path, markdown_path, f", {png}" if png else "",
              markdown_path.read_text(encoding="utf-8"))
    return 0
