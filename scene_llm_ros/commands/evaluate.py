"""`scene-llm evaluate`: replay a rosbag through the fusion and inference nodes, ask every
question through AskScene like a planner, and report the official metrics.

    scene-llm evaluate --bag /tmp/scene9000_00_bag \\
        --questions /tmp/synth/annotations/ScanQA_v1.0_val.json \\
        --out /tmp/eval --as-fast-as-possible
    scene-llm evaluate --bag robot.mcap --questions questions.jsonl --checkpoint runs/x/final \\
        --out /tmp/eval --rate 0.5 --color-topic /camera/color/image_raw \\
        --depth-topic /camera/aligned_depth_to_color/image_raw --tf-parent odom
    scene-llm evaluate --bag bag --questions ScanRefer_filtered_val.json --scene-id scene0011_00 \\
        --gt-scene scans/scene0011_00 --gt-transform T_bag_mesh.txt --checkpoint M --out /tmp/e

The nodes run in this process over real ROS topics (reliable QoS, a private namespace). Poses
are computed from the bag (TF chain or ``--pose-topic``) at every image stamp and published
as PoseStamped on the fusion node's ``pose`` topic next to the bag's own image bytes.

Writes OUT/report.json (keys metrics, questions, ingest, timing, run), OUT/report.md,
OUT/topdown.png and OUT/grounding/<question id>.png. Exit status 0 when the evaluation ran,
whatever the scores; 1 with a message when it could not (unreadable bag, no RGB-D topics, no
poses, unusable questions or model, nothing fused); 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

_LOG = logging.getLogger(__name__)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` verb."""
    from scene_llm_ros.evaluation.questions import FORMATS

    parser = subparsers.add_parser(
        "evaluate", help="replay a bag through the nodes, ask questions, report metrics",
        description="Start fusion_node and inference_node, replay a posed RGB-D rosbag over "
                    "ROS topics, ask every question of a ScanQA/ScanRefer/SQA3D/Multi3DRefer/"
                    "JSONL file through AskScene, and write the official metrics, a report "
                    "and pictures.")
    parser.add_argument("--bag", type=Path, required=True, help="rosbag2 directory or file "
                                                                "(mcap or sqlite3)")
    parser.add_argument("--questions", type=Path, required=True, nargs="+",
                        help="question files (several may be mixed, e.g. ScanQA and ScanRefer)")
    parser.add_argument("--out", type=Path, required=True, help="report directory")
    parser.add_argument("--checkpoint", type=Path,
                        help="model directory (SceneLlm.save_pretrained layout; default: the "
                             "embedded model)")
    replay = parser.add_argument_group("replay")
    speed = replay.add_mutually_exclusive_group()
    speed.add_argument("--rate", type=_positive, default=1.0,
                       help="play at this multiple of the recorded speed (default 1.0)")
    speed.add_argument("--as-fast-as-possible", action="store_true",
                       help="publish each frame as soon as the fusion node has integrated or "
                            "dropped the previous ones (back-pressure: nothing is dropped for "
                            "speed)")
    replay.add_argument("--color-topic")
    replay.add_argument("--depth-topic")
    replay.add_argument("--info-topic")
    replay.add_argument("--pose-topic", help="PoseStamped/Odometry topic (default: TF, else the "
                                             "only pose topic)")
    replay.add_argument("--tf-parent", default="map", help="scene frame of the TF chain "
                                                           "(default map)")
    replay.add_argument("--tf-child", help="frame posed by TF (default: the colour image frame)")
    replay.add_argument("--params", type=Path, help="ROS params file with fusion_node and "
                                                    "inference_node sections")
    replay.add_argument("--namespace", help="namespace of the nodes (default: a unique one)")
    replay.add_argument("--fusion-timeout", type=_positive, default=300.0,
                        help="seconds to wait for fusion to finish after the replay")
    questions = parser.add_argument_group("questions")
    questions.add_argument("--questions-format", choices=FORMATS,
                           help="format of --questions (default: detected)")
    questions.add_argument("--sqa3d-annotations", type=Path,
                           help="SQA3D annotations file (default: next to the questions)")
    questions.add_argument("--scene-id", help="ask only this scene's questions (needed when "
                                              "the file covers several scenes)")
    questions.add_argument("--limit", type=int, help="ask at most this many questions of "
                                                     "each file")
    questions.add_argument("--gt-scene", type=Path,
                           help="ScanNet-format scene (aggregation + segs + mesh) giving the "
                                "ground-truth boxes of grounding questions")
    questions.add_argument("--gt-transform", type=Path,
                           help="4x4 T_bag_mesh (16 numbers) when the bag's scene frame is not "
                                "the mesh frame")
    questions.add_argument("--max-new-tokens", type=int, default=0,
                           help="answer length limit (0 = the node's max_new_tokens)")
    questions.add_argument("--question-timeout", type=_positive, default=120.0,
                           help="seconds one question may take")
    questions.add_argument("--no-meteor", action="store_true",
                           help="skip METEOR (it starts a Java process)")
    parser.set_defaults(func=run)


def _resolve_checkpoint(checkpoint: Path | None) -> Path:
    from scene_llm_ros.evaluation import ReplayError, default_checkpoint

    checkpoint = checkpoint or default_checkpoint()
    if checkpoint is None:
        raise ReplayError("no model: pass --checkpoint DIR (a SceneLlm.save_pretrained "
                          "directory); this installation has no embedded default model")
    if not Path(checkpoint).is_dir():
        raise ReplayError(f"--checkpoint {checkpoint}: not a directory")
    return Path(checkpoint)


def run(args: argparse.Namespace) -> int:
    """Evaluate as ``args`` say; return the exit status."""
    from scene_llm_ros.evaluation import (
        QuestionFileError,
        attach_ground_truth,
        load_questions,
        plan_replay,
        read_transform,
        scene_boxes,
    )

    if args.gt_transform is not None and args.gt_scene is None:
        _LOG.error("--gt-transform needs --gt-scene")
        return 2
    if args.max_new_tokens < 0:
        _LOG.error("--max-new-tokens must be >= 0, got %d", args.max_new_tokens)
        return 2
    started = time.monotonic()
    timing: dict[str, object] = {}

    # Everything that can be checked without ROS is checked before the model loads.
    checkpoint = _resolve_checkpoint(args.checkpoint)
    question_sets = [load_questions(
        path, fmt=args.questions_format, sqa3d_annotations=args.sqa3d_annotations,
        scene_id=args.scene_id, limit=args.limit,
        default_scene=args.gt_scene.name if args.gt_scene else None)
        for path in args.questions]
    scenes = {s.scene_id for s in question_sets} - {None}
    if len(scenes) > 1:
        raise QuestionFileError(f"the question files are about different scenes {sorted(scenes)}"
                                "; pass --scene-id")
    gt = None
    if args.gt_scene is not None:
        T_bag_mesh = read_transform(args.gt_transform) if args.gt_transform else None
        gt = scene_boxes(args.gt_scene, T_bag_mesh)
    questions = attach_ground_truth([q for s in question_sets for q in s.questions], gt)
    phase = time.monotonic()
    plan = plan_replay(args.bag, color_topic=args.color_topic, depth_topic=args.depth_topic,
                       info_topic=args.info_topic, pose_topic=args.pose_topic,
                       tf_parent=args.tf_parent, tf_child=args.tf_child)
    timing["plan_s"] = time.monotonic() - phase
    _LOG.info("bag %s: %s, poses from %s (scene frame %s), %d of %d frames to replay",
              args.bag, plan.topics, plan.pose_source, plan.scene_frame, len(plan.frames),
              plan.frames_in_bag)

    ingest, surface, results = _replay_and_ask(args, checkpoint, plan, questions, timing)
    return _finish(args, checkpoint, question_sets, questions, plan, ingest, surface, results,
                   timing, started)


def _replay_and_ask(args, checkpoint, plan, questions, timing):
    """Run the nodes, replay, wait for fusion, ask; return (ingest, surface, results)."""
    from tqdm import tqdm

    from scene_llm_ros.evaluation import iter_replay_frames
    from scene_llm_ros.nodes.replay import EvaluationSession

    phase = time.monotonic()
    inference_params = {"request_timeout_s": float(args.question_timeout)}
    with EvaluationSession(checkpoint=checkpoint, scene_frame=plan.scene_frame,
                           namespace=args.namespace, params_file=args.params,
                           inference_params=inference_params) as session:
        timing["setup_s"] = time.monotonic() - phase
        _LOG.info("nodes up in %s (%.1f s); replaying %s", session.namespace,
                  timing["setup_s"], "as fast as possible" if args.as_fast_as_possible
                  else f"at x{args.rate:g} the recorded speed")
        with tqdm(total=len(plan.frames), desc="replay", unit="frame") as bar:
            replayed = session.replay(
                iter_replay_frames(plan), rate=None if args.as_fast_as_possible else args.rate,
                on_frame=lambda n: bar.update(n - bar.n))
        timing["replay_s"] = replayed["seconds"]
        phase = time.monotonic()
        fused = session.wait_until_fused(replayed["published"], args.fusion_timeout)
        timing["fusion_wait_s"] = time.monotonic() - phase
        if not fused:
            _LOG.warning("fusion did not account for every replayed frame (see ingest "
                         "'pending' in the report); asking anyway")
        counters = session.ingest()
        surface = session.surface()
        phase = time.monotonic()
        results = []
        for question in tqdm(questions, desc="questions", unit="q"):
            results.append(session.ask(question.question, task=question.ask_task,
                                       max_new_tokens=args.max_new_tokens,
                                       timeout_s=args.question_timeout))
        timing["questions_s"] = time.monotonic() - phase
    done = counters["integrated"] + counters["dropped"]
    ingest = {"frames_in_bag": plan.frames_in_bag, "skipped_by_reader": dict(plan.skipped),
              "published": replayed["published"], **counters,
              "pending": max(0, replayed["published"] - done),
              "lost_in_transport": max(0, replayed["published"] - counters["received"]),
              "stalls": replayed["stalls"],
              "fusion_finished": fused, "mode": replayed["mode"]}
    return ingest, surface, results


def _finish(args, checkpoint, question_sets, questions, plan, ingest, surface, results, timing,
            started) -> int:
    """Score, draw and write the report; return the exit status."""
    from scene_llm_ros.evaluation import build_report, score, write_report
    from scene_llm_ros.evaluation.report import latency_summary, question_entry

    phase = time.monotonic()
    evaluation, per_question = score(questions, results, meteor=not args.no_meteor)
    timing["metrics_s"] = time.monotonic() - phase
    phase = time.monotonic()
    pictures = _draw(args.out, plan, questions, results, surface, per_question)
    timing["pictures_s"] = time.monotonic() - phase
    timing["total_s"] = time.monotonic() - started
    timing["replay_fps"] = (ingest["published"] / timing["replay_s"]
                            if timing.get("replay_s") else None)
    timing["question_latency_ms"] = latency_summary(results)
    entries = [question_entry(q, r, per_question.get(q.id, {}), pictures.get(q.id))
               for q, r in zip(questions, results, strict=True)]
    failed = sum(not r.success for r in results)
    notes = []
    if failed:
        codes = sorted({r.error_code for r in results if not r.success})
        notes.append(f"{failed} of {len(results)} questions got no answer ({', '.join(codes)}); "
                     "they score as empty answers")
    empty = sum(1 for q, r in zip(questions, results, strict=True)
                if q.benchmark in ("scanqa", "sqa3d") and not (r.answer if r.success else ""))
    if empty:
        notes.append(f"{empty} scored answers are empty; the official EM-R (refined EM) counts "
                     "an empty answer as contained in every reference")
    skipped = sum(s.skipped_other_scenes for s in question_sets)
    if skipped:
        notes.append(f"{skipped} questions of other scenes skipped")
    # questions_file / format name the first file (one-file reports keep their shape);
    # questions_files / formats list them all.
    run_info = {"bag": str(args.bag), "storage": plan.storage, "topics": plan.topics,
                "pose_source": plan.pose_source, "scene_frame": plan.scene_frame,
                "questions_file": str(args.questions[0]), "format": question_sets[0].format,
                "questions_files": [str(p) for p in args.questions],
                "formats": [s.format for s in question_sets],
                "scene_id": next((s.scene_id for s in question_sets if s.scene_id), None),
                "checkpoint": str(checkpoint),
                "gt_scene": str(args.gt_scene) if args.gt_scene else None,
                "mode": ingest["mode"], "notes": notes}
    report = build_report(evaluation=evaluation, questions=entries, ingest=ingest,
                          timing=timing, run=run_info)
    json_path, md_path = write_report(args.out, report, evaluation)
    _print_summary(report, json_path)
    if ingest["integrated"] == 0:
        _LOG.error("the fusion node integrated none of the %d replayed frames (drops: %s); the "
                   "answers mean nothing (report in %s)", ingest["published"],
                   {k: v for k, v in ingest["dropped_by_reason"].items() if v}, args.out)
        return 1
    return 0


def _draw(out_dir: Path, plan, questions, results, surface, per_question) -> dict[str, str]:
    """topdown.png and grounding/<id>.png; return question id -> picture path (relative)."""
    from scene_llm_ros.evaluation import colour_images_at
    from scene_llm_ros.evaluation.pictures import (
        LabelledBox,
        draw_grounding,
        draw_topdown,
        picture_name,
    )

    out_dir = Path(out_dir)
    # Pictures of an earlier run into the same folder would pass for this run's.
    for stale in (out_dir / "grounding").glob("*.png"):
        stale.unlink()
    # A question grounds when it asks to or when its answer came with objects anyway.
    grounding = [(i, q, r) for i, (q, r) in enumerate(zip(questions, results, strict=True))
                 if q.grounding or r.objects]
    predicted, truth, seen_truth = [], [], set()
    for i, q, r in grounding:
        predicted += [LabelledBox(o.box, f"Q{i}") for o in r.objects[:1]]
        for j, box in enumerate([] if q.gt_boxes is None else q.gt_boxes):
            key = q.object_ids[j] if q.object_ids and j < len(q.object_ids) else (i, j)
            if key not in seen_truth:
                seen_truth.add(key)
                truth.append(LabelledBox(box, f"Q{i}"))
    points, colors, voxel_size_m = surface
    draw_topdown(out_dir / "topdown.png", points, colors, predicted=predicted,
                 ground_truth=truth, voxel_size_m=voxel_size_m,
                 title=f"{plan.bag.name}: fused map, {len(grounding)} grounding questions "
                       "(Qn = question n; green truth, red dashed first prediction)")
    stamps = {r.reference.stamp_ns for _, _, r in grounding if r.reference is not None}
    images = colour_images_at(plan.bag, plan.topics["color"], stamps)
    pictures = {}
    for i, q, r in grounding:
        scores = per_question.get(q.id, {})
        caption = ", ".join(f"{k} {v:.2f}" for k, v in scores.items()
                            if isinstance(v, float) and k in ("iou", "f1@0.25", "f1@0.5"))
        name = f"{picture_name(q.id)}.png"
        image = images.get(r.reference.stamp_ns) if r.reference is not None else None
        draw_grounding(out_dir / "grounding" / name, image, r, question=f"Q{i}: {q.question}",
                       gt_boxes=q.gt_boxes, caption=caption)
        pictures[q.id] = f"grounding/{name}"
    return pictures


def _print_summary(report: dict, json_path: Path) -> None:
    out = sys.stdout
    for q in report["questions"]:
        answer = q["answer"] if q["success"] else f"[{q['error_code']}] {q['message']}"
        out.write(f"{q['id']} ({q['task']}): {q['question'][:70]!r}\n    -> {answer[:100]!r}")
        if q.get("references"):
            out.write(f"  (expected {' / '.join(map(repr, q['references'][:3]))})")
        scores = {k: v for k, v in q["metrics"].items() if k in ("em", "iou") and v is not None}
        out.write("".join(f"  {k} {v:.2f}" for k, v in scores.items()) + "\n")
        for obj in q["objects"]:
            out.write(f"       [{obj['id']}] {obj['label']} {obj['score']:.2f} centre "
                      f"{obj['center']} size {obj['size']}\n")
    ingest = report["ingest"]
    out.write(f"ingest: {ingest['published']} published, {ingest['received']} received, "
              f"{ingest['integrated']} integrated, {ingest['dropped']} dropped\n")
    out.write("metrics: " + json.dumps(report["metrics"], indent=None) + "\n")
    out.write(f"timing: total {report['timing']['total_s']} s; report: {json_path}\n")
