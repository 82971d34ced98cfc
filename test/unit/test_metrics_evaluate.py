"""evaluate(): ScanQA end to end against pycocoevalcap, SQA3D, Scan2Cap m@kIoU, report files."""
from __future__ import annotations

import contextlib
import io
import json
import random
import shutil

import pytest

from scene_llm_ros.data.annotations import SQA3DAnswer, SQA3DRecord, read_scanqa
from scene_llm_ros.metrics import (
    EvalRecord,
    MetricInputError,
    evaluate,
    scanqa_eval_records,
    sqa3d_eval_records,
    write_report,
)
from scene_llm_ros.metrics.text import clean_answer, clean_prediction

UNIT = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


@pytest.fixture(scope="module")
def scanqa_val(shared_data):
    return read_scanqa(shared_data / "scanqa" / "ScanQA_v1.0_val.json")


def noisy_answers(annotations, seed: int) -> dict[str, str]:
    """The first answer with a word dropped or replaced, or a capitalised/ punctuated copy."""
    rng = random.Random(seed)
    out = {}
    for annotation in annotations:
        words = annotation.answers[0].split()
        operation = rng.randrange(3)
        if operation == 0 and len(words) > 1:
            del words[rng.randrange(len(words))]
        elif operation == 1:
            words[rng.randrange(len(words))] = rng.choice(["table", "left", "2", "brown"])
        out[annotation.question_id] = " ".join(words).capitalize() + "."
    return out


@pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's PTBTokenizer needs Java")
def test_scanqa_matches_the_chat_scene_pipeline_on_pycocoevalcap(scanqa_val):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    predictions = noisy_answers(scanqa_val, seed=3)
    result = evaluate(scanqa_eval_records(scanqa_val, predictions), meteor=False)
    # The reference pipeline: clean, then Java PTB tokenisation, then pycocoevalcap's scorers.
    tokenizer = PTBTokenizer()
    res = tokenizer.tokenize({i: [{"caption": clean_prediction(predictions[a.question_id])}]
                              for i, a in enumerate(scanqa_val)})
    gts = tokenizer.tokenize({i: [{"caption": clean_answer(x)} for x in a.answers]
                              for i, a in enumerate(scanqa_val)})
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res)
    for n in range(4):
        assert result.metrics[f"scanqa/bleu-{n + 1}"] == pytest.approx(bleu[n], abs=1e-6)
    assert result.metrics["scanqa/rouge-l"] == pytest.approx(
        Rouge().compute_score(gts, res)[0], abs=1e-6)
    assert result.metrics["scanqa/cider"] == pytest.approx(
        Cider().compute_score(gts, res)[0], abs=1e-6)
    assert 0.3 < result.metrics["scanqa/em"] < result.metrics["scanqa/em_r"] < 1.0
    assert result.counts == {"scanqa": 4675}


def test_scanqa_builder_names_bad_ids(scanqa_val):
    predictions = {a.question_id: "brown" for a in scanqa_val}
    with pytest.raises(MetricInputError, match=r"1 prediction ids are not in the references.*"
                                               r"val-scene9999-0"):
        scanqa_eval_records(scanqa_val, {**predictions, "val-scene9999-0": "x"})
    del predictions["val-scene0011-0"]
    with pytest.raises(MetricInputError, match="1 questions have no prediction.*val-scene0011-0"):
        scanqa_eval_records(scanqa_val, predictions)


def test_sqa3d_em_by_question_type():
    def record(question_id, question, answer):
        return SQA3DRecord(question_id, "scene0000_00", "situation", [], question, "q", "a",
                           [SQA3DAnswer(answer, "yes", 1)], (0, 0, 0), (1, 0, 0, 0))

    annotations = [record(1, "What is on the table?", "lamp"),
                   record(2, "Is the door open?", "yes"),
                   record(3, "Where is the sink?", "left")]
    result = evaluate(sqa3d_eval_records(annotations, {"1": "a lamp", "2": "no", "3": "on left"}))
    assert result.metrics["sqa3d/em"] == pytest.approx(1 / 3)
    assert result.metrics["sqa3d/em_r"] == pytest.approx(2 / 3)
    assert result.metrics["sqa3d/em/what"] == 1.0
    assert result.metrics["sqa3d/em/is"] == 0.0
    assert result.metrics["sqa3d/em_r/others"] == 1.0
    assert "sqa3d/em/how" not in result.metrics
    assert result.per_question[2]["question_type"] == "others"


def test_scanqa_counting_accuracy_is_em_on_how_many_questions():
    records = [EvalRecord("scanqa", "1", prediction="2", references=("two",),
                          question="How many chairs are there?"),
               EvalRecord("scanqa", "2", prediction="three", references=("4", "four"),
                          question="What is the number of windows in the room?"),
               EvalRecord("scanqa", "3", prediction="brown", references=("brown",),
                          question="What color is the table?")]
    result = evaluate(records, meteor=False)
    assert result.metrics["scanqa/em"] == pytest.approx(2 / 3)
    assert result.metrics["scanqa/em/counting"] == 0.5
    assert [row["counting"] for row in result.per_question] == [True, True, False]
    without_questions = [EvalRecord("scanqa", r.question_id, prediction=r.prediction,
                                    references=r.references) for r in records]
    assert "scanqa/em/counting" not in evaluate(without_questions, meteor=False).metrics


def scan2cap_records():
    references = ("the chair is brown", "a brown wooden chair")
    return [
        EvalRecord("scan2cap", "s|1|chair", prediction="the chair is brown",
                   references=references, pred_boxes=[UNIT], gt_boxes=[UNIT]),
        # Same caption but the box overlaps 0.43 with the object: counted at 0.25 only.
        EvalRecord("scan2cap", "s|2|chair", prediction="the chair is brown",
                   references=references, pred_boxes=[[0.4, 0, 0, 1, 1, 1]], gt_boxes=[UNIT]),
        EvalRecord("scan2cap", "s|3|table", prediction=None,
                   references=("a white table", "the table is white"), gt_boxes=[UNIT]),
        EvalRecord("scan2cap", "s|4|lamp", prediction="a lamp",
                   references=("a tall lamp",), pred_boxes=[UNIT], gt_boxes=[UNIT]),
    ]


def test_scan2cap_scores_count_only_well_placed_boxes():
    result = evaluate(scan2cap_records(), meteor=False)
    rows = result.per_question
    unmasked = evaluate([r for r in scan2cap_records() if r.question_id != "s|3|table"]
                        + [EvalRecord("scan2cap", "s|3|table", prediction="a white table",
                                      references=("a white table", "the table is white"),
                                      pred_boxes=[UNIT], gt_boxes=[UNIT])], meteor=False)
    # The same caption scores the same before masking (df comes from the references only).
    assert rows[0]["cider@0.25"] == rows[1]["cider@0.25"] > 0
    assert rows[1]["cider@0.5"] == 0.0 and rows[2]["cider@0.25"] == 0.0
    assert rows[1]["iou"] == pytest.approx(0.6 / 1.4)
    cider_05 = result.metrics["scan2cap/cider@0.5"]
    assert cider_05 == pytest.approx((rows[0]["cider@0.5"] + rows[3]["cider@0.5"]) / 4)
    assert result.metrics["scan2cap/cider@0.25"] > cider_05
    assert unmasked.per_question[0]["cider@0.5"] == pytest.approx(rows[0]["cider@0.5"])
    for name in ("bleu-4", "rouge-l"):
        assert 0 < result.metrics[f"scan2cap/{name}@0.5"] < 1


def test_scan2cap_needs_one_box_per_caption():
    bad = EvalRecord("scan2cap", "s|1|chair", prediction="a chair", references=("a chair",),
                     pred_boxes=None, gt_boxes=[UNIT])
    with pytest.raises(MetricInputError, match=r"scan2cap question 's\|1\|chair': a Scan2Cap "
                                               "caption needs exactly one predicted box"):
        evaluate([bad])


def test_bad_records_are_named():
    good = EvalRecord("scanqa", "q1", prediction="brown", references=("brown",))
    with pytest.raises(MetricInputError, match="'q1': question id appears more than once"):
        evaluate([good, good])
    with pytest.raises(MetricInputError, match="unknown task 'vqa'"):
        evaluate([EvalRecord("vqa", "q1", prediction="a", references=("a",))])
    with pytest.raises(MetricInputError, match="'q2': prediction must be a string"):
        evaluate([EvalRecord("scanqa", "q2", prediction=None, references=("a",))])
    with pytest.raises(MetricInputError, match="'q3': needs a non-empty sequence of references"):
        evaluate([EvalRecord("scanqa", "q3", prediction="a", references=())])
    with pytest.raises(MetricInputError, match=r"'q4': gt_boxes must be \(N, 6\)"):
        evaluate([EvalRecord("scanrefer", "q4", pred_boxes=[UNIT], gt_boxes=[[0, 0, 0]])])
    with pytest.raises(MetricInputError, match="no records"):
        evaluate([])


def test_mixed_tasks_and_report_files(tmp_path):
    records = [EvalRecord("scanrefer", "r1", pred_boxes=[UNIT], gt_boxes=[UNIT]),
               EvalRecord("scanqa", "q1", prediction="Brown.", references=("brown", "tan")),
               EvalRecord("scanrefer", "r2", pred_boxes=None, gt_boxes=[UNIT])]
    result = evaluate(records, meteor=False)
    assert [row["question_id"] for row in result.per_question] == ["r1", "q1", "r2"]
    assert result.metrics["scanrefer/acc@0.5"] == 0.5
    assert result.metrics["scanqa/em"] == 1.0
    json_path, markdown_path = write_report(result, tmp_path / "out")
    document = json.loads(json_path.read_text())
    assert document["metrics"] == result.metrics
    assert document["counts"] == {"scanrefer": 2, "scanqa": 1}
    assert len(document["per_question"]) == 3
    markdown = markdown_path.read_text()
    assert "| scanrefer/acc@0.5 | 50.00 |" in markdown
    assert "| scanqa/em | 100.00 |" in markdown
