"""Scoring answers with the official metrics and writing report.json / report.md."""
from __future__ import annotations

import json

import numpy as np
import pytest

from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.evaluation import (
    REPORT_KEYS,
    AskResult,
    EvalQuestion,
    PredictedObject,
    ReferenceCamera,
    build_report,
    score,
    write_report,
)
from scene_llm_ros.evaluation.report import latency_summary, question_entry

GT = np.array([[1.0, 1.0, 0.5, 1.0, 1.0, 1.0]])


def _answer(text="", boxes=(), latency_ms=100.0, success=True):
    objects = [PredictedObject(str(i), "chair", 0.9, np.array(b[:3], float), np.array(b[3:], float))
               for i, b in enumerate(boxes)]
    reference = ReferenceCamera(CameraIntrinsics(100.0, 100.0, 80.0, 60.0, 160, 120), np.eye(4),
                                1_000, "cam")
    if not success:
        return AskResult.failed("TIMEOUT", "too slow", latency_ms)
    return AskResult(True, "", "", text, objects, reference, "map", 7, 3, latency_ms,
                     {"total": latency_ms})


def _questions():
    return [
        EvalQuestion("qa1", "what colour?", "qa", "scanqa", references=("red", "dark red")),
        EvalQuestion("qa2", "how many?", "qa", "scanqa", references=("two",)),
        EvalQuestion("r1", "the chair", "ground", "scanrefer", gt_boxes=GT, unique=True),
        EvalQuestion("r2", "the other chair", "ground", "scanrefer", gt_boxes=GT, unique=False),
        EvalQuestion("m1", "the chairs", "ground", "multi3drefer", gt_boxes=np.zeros((0, 6)),
                     eval_type="zt_wo_d"),
        EvalQuestion("s1", "Situation: x\nQuestion: what is left?", "situated", "sqa3d",
                     references=("lamp",), raw_question="what is left?"),
        EvalQuestion("free", "describe", ""),
    ]


def test_scores_follow_the_official_definitions():
    questions = _questions()
    answers = [_answer("red"), _answer("three"),
               _answer(boxes=[[1.0, 1.0, 0.5, 1.0, 1.0, 1.0]]),  # exact box: IoU 1
               _answer(boxes=[[1.5, 1.0, 0.5, 1.0, 1.0, 1.0]]),  # half overlap: IoU 1/3
               _answer(), _answer(success=False), _answer("anything")]
    evaluation, per_question = score(questions, answers, meteor=False)
    metrics = evaluation.metrics
    assert metrics["scanqa/em"] == pytest.approx(0.5)
    assert metrics["scanrefer/acc@0.25"] == pytest.approx(1.0)
    assert metrics["scanrefer/acc@0.5"] == pytest.approx(0.5)
    assert metrics["scanrefer/acc@0.5/unique"] == pytest.approx(1.0)
    assert metrics["scanrefer/acc@0.5/multiple"] == pytest.approx(0.0)
    # Zero targets and nothing predicted: F1 = 1 (Multi3DRefer's rule).
    assert metrics["multi3drefer/f1@0.5"] == pytest.approx(1.0)
    assert metrics["sqa3d/em"] == 0.0  # the failed request scores as an empty answer
    assert "scanqa/meteor" not in metrics and "scanqa/cider" in metrics
    assert per_question["r2"]["iou"] == pytest.approx(1 / 3)
    assert "free" not in per_question and evaluation.counts["scanqa"] == 2
    assert score(questions[-1:], answers[-1:]) == (None, {})


def test_report_document_and_files(tmp_path):
    questions = _questions()[:3]
    answers = [_answer("red", latency_ms=10.0), _answer("two", latency_ms=30.0),
               _answer(boxes=[[1.0, 1.0, 0.5, 1.0, 1.0, 1.0]], latency_ms=20.0)]
    evaluation, per_question = score(questions, answers, meteor=False)
    evaluation.metrics["scanqa/meteor"] = None  # as without Java
    evaluation.notes.append("METEOR needs Java")
    entries = [question_entry(q, a, per_question.get(q.id, {}), None)
               for q, a in zip(questions, answers, strict=True)]
    timing = {"total_s": 1.23456, "question_latency_ms": latency_summary(answers)}
    ingest = {"frames_in_bag": 3, "published": 3, "received": 3, "integrated": 3, "dropped": 0,
              "dropped_by_reason": {"queue_full": 0}}
    report = build_report(evaluation=evaluation, questions=entries, ingest=ingest,
                          timing=timing, run={"bag": "b", "notes": []})
    assert set(REPORT_KEYS) <= set(report)
    assert "scanqa/meteor" not in report["metrics"]
    assert report["run"]["notes"] == ["METEOR needs Java"]
    assert report["run"]["scored"] == {"scanqa": 2, "scanrefer": 1}
    assert timing["question_latency_ms"] == {"mean": 20.0, "median": 20.0, "p90": 28.0,
                                             "max": 30.0}
    entry = report["questions"][2]
    assert entry["task"] == "scanrefer" and entry["gt_boxes"] == GT.tolist()
    assert entry["objects"][0]["box"] == [1.0, 1.0, 0.5, 1.0, 1.0, 1.0]
    assert entry["metrics"]["iou"] == 1.0 and entry["latency_ms"] == 20.0
    assert entry["reference_stamp_ns"] == 1_000

    json_path, md_path = write_report(tmp_path / "out", report, evaluation)
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(report))
    markdown = md_path.read_text()
    assert "| scanrefer/acc@0.25 | 100.00 |" in markdown
    assert "| integrated | 3 |" in markdown
    report["questions"][0]["id"] = "scene0|1|2"
    write_report(tmp_path / "out", report, None)
    markdown = md_path.read_text()
    assert "scene0\\|1\\|2" in markdown and "nothing scored" in markdown
