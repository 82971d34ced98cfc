"""METEOR through pycocoevalcap's jar, and the clear failure without Java."""
from __future__ import annotations

import shutil

import pytest

from scene_llm_ros.metrics import EvalRecord, evaluate
from scene_llm_ros.metrics import meteor as meteor_module
from scene_llm_ros.metrics.meteor import MeteorUnavailableError, meteor

needs_java = pytest.mark.skipif(shutil.which("java") is None,
                                reason="no Java runtime: METEOR cannot run")


@needs_java
def test_meteor_runs_on_a_small_set_of_two_tasks():
    unit = [0, 0, 0, 1, 1, 1]
    records = [
        EvalRecord("scanqa", "q1", prediction="brown wooden chair",
                   references=("brown chair", "wooden chair")),
        EvalRecord("scanqa", "q2", prediction="White", references=("white",)),
        EvalRecord("scanqa", "q3", prediction="on left of door", references=("left of bed",)),
        EvalRecord("scan2cap", "s|1|chair", prediction="a brown chair", references=(
            "the chair is brown", "a brown chair"), pred_boxes=[unit], gt_boxes=[unit]),
    ]
    result = evaluate(records)  # one Java process serves both tasks
    scores = [row["meteor"] for row in result.per_question[:3]]
    assert scores[1] == pytest.approx(1.0, abs=1e-3)  # "white" is perfect
    assert 0.0 < scores[2] < scores[0] < 1.0
    # METEOR pools its statistics over the corpus, so the score lies within the items' range.
    assert min(scores) <= result.metrics["scanqa/meteor"] <= max(scores)
    assert result.metrics["scan2cap/meteor@0.5"] == pytest.approx(1.0, abs=1e-3)
    assert result.notes == []


def test_without_java_meteor_fails_clearly(monkeypatch):
    monkeypatch.setattr(meteor_module.shutil, "which", lambda name: None)
    assert "Java runtime" in meteor_module.meteor_unavailable_reason()
    with pytest.raises(MeteorUnavailableError, match="'java' is not on PATH"):
        meteor(["a"], [["a"]])
    result = evaluate([EvalRecord("scanqa", "q", prediction="brown", references=("brown",))])
    assert result.metrics["scanqa/meteor"] is None
    assert any("Java runtime" in note for note in result.notes)
    assert result.metrics["scanqa/cider"] is not None
    assert "scanqa/meteor" not in evaluate(
        [EvalRecord("scanqa", "q", prediction="brown", references=("brown",))],
        meteor=False).metrics
