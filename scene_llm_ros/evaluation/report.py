"""The replay evaluation's report: ``report.json`` (a stable contract) and ``report.md``.

``report.json`` keys:

* ``metrics``: metric name -> number, the official metrics of the question types present
  (``scanqa/em``, ``scanrefer/acc@0.5`` ...; see :func:`scene_llm_ros.metrics.evaluate`).
  A metric that could not be computed (METEOR without Java) is left out and ``run.notes``
  says why.
* ``questions``: per question ``id``, ``question``, ``task``, ``answer``, ``references``,
  ``objects`` (predicted, with boxes), ``gt_boxes``, ``metrics``, ``latency_ms`` and more.
* ``ingest``: frames in the bag, published, received, integrated, dropped by reason.
* ``timing``: seconds per phase and question latencies.
* ``run``: what was evaluated (bag, topics, pose source, question file, checkpoint, mode).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scene_llm_ros.evaluation.answers import AskResult
from scene_llm_ros.evaluation.questions import EvalQuestion
from scene_llm_ros.metrics import EvaluationResult
from scene_llm_ros.metrics.report import markdown_table

REPORT_KEYS = ("metrics", "questions", "ingest", "timing")


def _round(values: Any, digits: int = 4) -> Any:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if isinstance(values, float):
        return round(values, digits) if math.isfinite(values) else None
    if isinstance(values, (list, tuple)):
        return [_round(v, digits) for v in values]
    if isinstance(values, dict):
        return {k: _round(v, digits) for k, v in values.items()}
    if isinstance(values, np.generic):
        return _round(values.item(), digits)
    return values


def question_entry(question: EvalQuestion, result: AskResult, scores: dict[str, object],
                   picture: str | None) -> dict[str, Any]:
    """One element of ``report.json``'s ``questions``."""
    objects = [{"id": o.id, "label": o.label, "score": round(o.score, 4),
                "center": _round(o.center), "size": _round(o.size),
                "box": _round(o.box), "roi": list(o.roi),
                "mask_pixels": int(np.count_nonzero(o.mask)) if o.mask is not None else 0}
               for o in result.objects]
    return {
        "id": question.id, "question": question.question,
        "task": question.benchmark or question.ask_task or "auto",
        "ask_task": question.ask_task, "answer": result.answer,
        "references": list(question.references), "objects": objects,
        "gt_boxes": None if question.gt_boxes is None else _round(question.gt_boxes),
        "gt_object_ids": None if question.object_ids is None else list(question.object_ids),
        "metrics": _round(dict(scores)), "latency_ms": round(result.latency_ms, 1),
        "stage_ms": _round(result.stage_ms, 1), "tokens_generated": result.tokens_generated,
        "success": result.success, "error_code": result.error_code, "message": result.message,
        "scene_version": result.scene_version, "picture": picture,
        "reference_stamp_ns": result.reference.stamp_ns if result.reference else None,
    }


def latency_summary(results: Sequence[AskResult]) -> dict[str, float | None]:
    """Mean, median, 90th percentile and maximum client latency, milliseconds."""
    latencies = np.array([r.latency_ms for r in results], np.float64)
    if not len(latencies):
        return {"mean": None, "median": None, "p90": None, "max": None}
    return {"mean": round(float(latencies.mean()), 1),
            "median": round(float(np.median(latencies)), 1),
            "p90": round(float(np.percentile(latencies, 90)), 1),
            "max": round(float(latencies.max()), 1)}


def build_report(*, evaluation: EvaluationResult | None, questions: list[dict[str, Any]],
                 ingest: dict[str, Any], timing: dict[str, Any],
                 run: dict[str, Any]) -> dict[str, Any]:
    """The ``report.json`` document (see the module docstring).

    :param evaluation: the metrics' result, None when no question was scored.
    """
    notes = list(run.get("notes", []))
    metrics: dict[str, float] = {}
    if evaluation is not None:
        for name, value in evaluation.metrics.items():
            if value is None or not math.isfinite(value):
                continue  # the notes say why (e.g. no Java for METEOR)
            metrics[name] = round(float(value), 6)
        notes += [n for n in evaluation.notes if n not in notes]
    counts = dict(evaluation.counts) if evaluation is not None else {}
    return {"metrics": metrics, "questions": questions, "ingest": _round(ingest),
            "timing": _round(timing, 3),
            "run": {**_round(run), "scored": counts, "notes": notes}}


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (ScanRefer ids contain ``|``)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(report: dict[str, Any], evaluation: EvaluationResult | None) -> str:
    run, ingest, timing = report["run"], report["ingest"], report["timing"]
    lines = [f"# Replay evaluation of {run.get('bag', '?')}", ""]
    lines += [f"- questions: {run.get('questions_file')} ({run.get('format')}, "
              f"{len(report['questions'])} asked, scene {run.get('scene_id') or '-'})",
              f"- model: {run.get('checkpoint')}",
              f"- topics: {run.get('topics')}; poses from {run.get('pose_source')}",
              f"- replay: {run.get('mode')}", ""]
    lines += ["## Metrics", ""]
    if evaluation is not None:
        lines.append(markdown_table(evaluation))
    else:
        lines += ["No question had references or ground-truth boxes: nothing scored.", ""]
    lines += ["## Ingest", "", "| counter | frames |", "| --- | ---: |"]
    for key in ("frames_in_bag", "skipped_by_reader", "published", "received", "integrated",
                "dropped", "pending", "lost_in_transport"):
        if key in ingest:
            value = ingest[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items()) or "0"
            lines.append(f"| {key} | {value} |")
    dropped = {k: v for k, v in ingest.get("dropped_by_reason", {}).items() if v}
    lines += ["", "Drops by reason: " + (", ".join(f"{k} {v}" for k, v in dropped.items())
                                          or "none") + ".", ""]
    lines += ["## Timing", "", "| phase | seconds |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in timing.items() if not isinstance(v, dict)]
    latency = timing.get("question_latency_ms", {})
    lines += ["", f"Question latency (ms): mean {latency.get('mean')}, median "
                  f"{latency.get('median')}, p90 {latency.get('p90')}, max {latency.get('max')}.",
              ""]
    lines += ["## Questions", "", "| id | task | answer | score | ms |",
              "| --- | --- | --- | --- | ---: |"]
    for q in report["questions"]:
        answer = q["answer"] if q["success"] else f"**{q['error_code']}**"
        answer = _cell(answer[:60])
        scores = q["metrics"]
        shown = next((f"{k} {scores[k]}" for k in ("iou", "f1@0.25", "em") if k in scores), "")
        lines.append(f"| {_cell(q['id'])} | {q['task']} | {answer} | {shown} | "
                     f"{q['latency_ms']} |")
    for note in run.get("notes", []):
        lines.append(f"\nNote: {note}")
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, report: dict[str, Any],
                 evaluation: EvaluationResult | None) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (created if missing).

    :return: the two paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    md_path.write_text(_markdown(report, evaluation), encoding="utf-8")
    return json_path, md_path
