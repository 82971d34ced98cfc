"""Write an :class:`~scene_llm_ros.metrics.evaluate.EvaluationResult` as report.json + report.md."""
from __future__ import annotations

import json
from pathlib import Path

from scene_llm_ros.metrics.evaluate import EvaluationResult


def result_to_json(result: EvaluationResult) -> dict[str, object]:
    """The JSON document of ``result``: metrics, counts, notes and per-question scores."""
    return {"metrics": dict(result.metrics), "counts": dict(result.counts),
            "notes": list(result.notes), "per_question": list(result.per_question)}


def markdown_table(result: EvaluationResult) -> str:
    """A short markdown table: one row per metric, value x100 as papers print it.

    CIDEr already carries pycocoevalcap's factor 10, so x100 gives the usual "CIDEr 80.1".
    """
    lines = ["| metric | value (x100) |", "| --- | ---: |"]
    for name, value in result.metrics.items():
        shown = "n/a" if value is None else f"{100.0 * value:.2f}"
        lines.append(f"| {name} | {shown} |")
    counts = ", ".join(f"{task} {count}" for task, count in result.counts.items())
    lines += ["", f"Items scored: {counts}."]
    lines += [f"Note: {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_report(result: EvaluationResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (created if missing).

    :return: the paths of the two files.
    :raises ValueError: when a metric value is NaN or infinite (not representable in JSON).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(result_to_json(result), indent=2, allow_nan=False) + "\n",
                         encoding="utf-8")
    markdown_path.write_text(markdown_table(result), encoding="utf-8")
    return json_path, markdown_path
