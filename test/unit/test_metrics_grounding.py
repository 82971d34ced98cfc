"""ScanRefer Acc@k and Multi3DRefer F1@k, alone and through evaluate()."""
from __future__ import annotations

import numpy as np
import pytest

from scene_llm_ros.metrics import EvalRecord, MetricInputError, evaluate
from scene_llm_ros.metrics.grounding import as_boxes, matched_f1, top1_iou

UNIT = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def shifted(dx: float) -> list[float]:
    """A unit box moved along x: IoU with UNIT is (1 - dx) / (1 + dx)."""
    return [dx, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_top1_iou_uses_the_first_box_only():
    gt = as_boxes([UNIT], "gt")
    assert top1_iou(as_boxes([shifted(0.5), UNIT], "pred"), gt) == pytest.approx(1 / 3)
    assert top1_iou(as_boxes(None, "pred"), gt) == 0.0
    with pytest.raises(ValueError, match="exactly one ground-truth box"):
        top1_iou(as_boxes([UNIT], "pred"), as_boxes([UNIT, UNIT], "gt"))


def test_as_boxes_rejects_bad_shapes_and_values():
    assert as_boxes(UNIT, "b").shape == (1, 6)
    with pytest.raises(ValueError, match=r"pred must be \(N, 6\)"):
        as_boxes([[0, 0, 0]], "pred")
    with pytest.raises(ValueError, match="negative sizes"):
        as_boxes([[0, 0, 0, -1, 1, 1]], "pred")
    with pytest.raises(ValueError, match="non-finite"):
        as_boxes([[0, 0, np.nan, 1, 1, 1]], "pred")


def test_scanrefer_accuracy_with_unique_and_multiple_split():
    records = [
        EvalRecord("scanrefer", "q0", pred_boxes=[UNIT], gt_boxes=[UNIT], unique=True),
        # IoU 0.6/1.4 = 0.43: a hit at 0.25 only.
        EvalRecord("scanrefer", "q1", pred_boxes=[shifted(0.4)], gt_boxes=[UNIT], unique=False),
        EvalRecord("scanrefer", "q2", pred_boxes=[shifted(0.9)], gt_boxes=[UNIT], unique=False),
        EvalRecord("scanrefer", "q3", pred_boxes=None, gt_boxes=[UNIT], unique=False),
    ]
    metrics = evaluate(records).metrics
    assert metrics["scanrefer/acc@0.25"] == pytest.approx(2 / 4)
    assert metrics["scanrefer/acc@0.5"] == pytest.approx(1 / 4)
    assert metrics["scanrefer/acc@0.25/unique"] == 1.0
    assert metrics["scanrefer/acc@0.5/multiple"] == 0.0
    assert metrics["scanrefer/acc@0.25/multiple"] == pytest.approx(1 / 3)


def test_scanrefer_unique_flag_must_be_all_or_none():
    records = [EvalRecord("scanrefer", "q0", pred_boxes=[UNIT], gt_boxes=[UNIT], unique=True),
               EvalRecord("scanrefer", "q1", pred_boxes=[UNIT], gt_boxes=[UNIT])]
    with pytest.raises(MetricInputError, match="'q1': unique is missing"):
        evaluate(records)
    metrics = evaluate(records[1:]).metrics
    assert "scanrefer/acc@0.5/unique" not in metrics and metrics["scanrefer/acc@0.5"] == 1.0


def test_f1_uses_the_iou_maximising_matching():
    # p0 overlaps g0 best (IoU 0.82) and g1 (0.6); p1 overlaps g0 (0.6) and g1 (0.25). Greedy
    # p0-g0 would leave p1 with 0.25; the total-IoU matching is p0-g1 + p1-g0 (1.2 > 1.07).
    gt = as_boxes([UNIT, shifted(0.35)], "gt")
    pred = as_boxes([shifted(0.1), shifted(-0.25)], "pred")
    assert matched_f1(pred, gt) == {0.25: pytest.approx(1.0), 0.5: pytest.approx(1.0)}
    # An extra prediction: 2 TP / (3 predicted + 2 targets).
    f1_extra = matched_f1(np.vstack([pred, shifted(9.0)]), gt)
    assert f1_extra[0.5] == pytest.approx(4 / 5)
    # One good and one poor match: 2 * 1 / (2 + 2) at 0.5.
    far = matched_f1(as_boxes([UNIT, shifted(3.8)], "pred"), as_boxes([UNIT, shifted(3.0)], "gt"))
    assert far == {0.25: pytest.approx(0.5), 0.5: pytest.approx(0.5)}
    assert matched_f1(as_boxes(None, "pred"), gt) == {0.25: 0.0, 0.5: 0.0}


def test_zero_target_rule():
    none = as_boxes(None, "boxes")
    assert matched_f1(none, none) == {0.25: 1.0, 0.5: 1.0}
    assert matched_f1(as_boxes([UNIT], "pred"), none) == {0.25: 0.0, 0.5: 0.0}


def test_multi3drefer_by_eval_type():
    records = [
        EvalRecord("multi3drefer", "a", pred_boxes=None, gt_boxes=None, eval_type="zt_w_d"),
        EvalRecord("multi3drefer", "b", pred_boxes=[UNIT], gt_boxes=None, eval_type="zt_wo_d"),
        EvalRecord("multi3drefer", "c", pred_boxes=[UNIT], gt_boxes=[UNIT], eval_type="st_w_d"),
        EvalRecord("multi3drefer", "d", pred_boxes=[UNIT], gt_boxes=[UNIT, shifted(3)],
                   eval_type="mt"),
    ]
    result = evaluate(records)
    assert result.metrics["multi3drefer/f1@0.5"] == pytest.approx((1 + 0 + 1 + 2 / 3) / 4)
    assert result.metrics["multi3drefer/f1@0.5/zt_w_d"] == 1.0
    assert result.metrics["multi3drefer/f1@0.5/zt_wo_d"] == 0.0
    assert result.metrics["multi3drefer/f1@0.25/mt"] == pytest.approx(2 / 3)
    assert "multi3drefer/f1@0.5/st_wo_d" not in result.metrics  # no such questions
    assert result.per_question[3] == {"task": "multi3drefer", "question_id": "d",
                                      "f1@0.25": pytest.approx(2 / 3),
                                      "f1@0.5": pytest.approx(2 / 3)}
    bad = [EvalRecord("multi3drefer", "e", gt_boxes=[UNIT], eval_type="zt")]
    with pytest.raises(MetricInputError, match="eval_type 'zt' is not one of"):
        evaluate(bad)
