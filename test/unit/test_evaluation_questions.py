"""Question files of the replay evaluation: format detection, the five readers, scene choice."""
from __future__ import annotations

import json

import numpy as np
import pytest

from scene_llm_ros.data import annotations as ann
from scene_llm_ros.evaluation import QuestionFileError, detect_format, load_questions
from scene_llm_ros.evaluation.questions import sqa3d_annotations_path


def _scanqa(path, scenes=("scene0001_00",), answers=True):
    records = [ann.ScanQARecord(scene_id=s, question_id=f"val-{s}-{i}",
                                question=f"what is {i}?", answers=["a chair"] if answers else None,
                                object_ids=[3], object_names=["chair"])
               for s in scenes for i in range(2)]
    ann.write_scanqa(path, records)
    return path


def _jsonl(path, *objects):
    path.write_text("\n".join(json.dumps(o) for o in objects) + "\n")
    return path


def test_formats_are_detected_from_content(tmp_path):
    scanqa = _scanqa(tmp_path / "qa.json")
    ann.write_scanrefer(tmp_path / "refer.json", [ann.ScanReferRecord(
        "scene0001_00", "4", "chair", "0", "the chair by the door")])
    ann.write_multi3drefer(tmp_path / "m3d.json", [ann.Multi3DReferRecord(
        "scene0001_00", [1, 2], "chair", 0, "the chairs", "mt", False, False, False, False)])
    jsonl = _jsonl(tmp_path / "q.txt", {"id": "a", "question": "what?"})
    assert detect_format(scanqa) == "scanqa"
    assert detect_format(tmp_path / "refer.json") == "scanrefer"
    assert detect_format(tmp_path / "m3d.json") == "multi3drefer"
    assert detect_format(jsonl) == "jsonl"
    (tmp_path / "bad.json").write_text("[{\"foo\": 1}]")
    with pytest.raises(QuestionFileError, match="cannot tell the format"):
        detect_format(tmp_path / "bad.json")
    with pytest.raises(QuestionFileError, match="cannot read"):
        detect_format(tmp_path / "missing.json")


def test_scanqa_questions_and_scene_choice(tmp_path):
    path = _scanqa(tmp_path / "qa.json", scenes=("scene0001_00", "scene0002_00"))
    with pytest.raises(QuestionFileError, match="2 scenes .*--scene-id"):
        load_questions(path)
    chosen = load_questions(path, scene_id="scene0002_00")
    assert chosen.format == "scanqa" and chosen.scene_id == "scene0002_00"
    assert chosen.skipped_other_scenes == 2
    assert [q.id for q in chosen.questions] == ["val-scene0002_00-0", "val-scene0002_00-1"]
    q = chosen.questions[0]
    assert (q.benchmark, q.ask_task, q.references, q.object_ids) == (
        "scanqa", "qa", ("a chair",), (3,))
    # The --gt-scene folder name picks the scene only when the file has several.
    assert load_questions(path, default_scene="scene0001_00").scene_id == "scene0001_00"
    with pytest.raises(QuestionFileError, match="no questions of scene 'scene0009_00'"):
        load_questions(path, scene_id="scene0009_00")
    assert len(load_questions(path, scene_id="scene0001_00", limit=1).questions) == 1


def test_scanqa_test_split_is_asked_but_not_scored(tmp_path):
    questions = load_questions(_scanqa(tmp_path / "qa.json", answers=False)).questions
    assert all(q.benchmark == "" and q.ask_task == "qa" for q in questions)


def test_scanrefer_and_multi3drefer(tmp_path):
    ann.write_scanrefer(tmp_path / "refer.json", [
        ann.ScanReferRecord("scene0001_00", "4", "chair", "0", "the chair by the door",
                            extra={"eval_type": "multiple"}),
        ann.ScanReferRecord("scene0001_00", "4", "chair", "0", "the same id again")])
    refer = load_questions(tmp_path / "refer.json").questions
    assert [q.id for q in refer] == ["scene0001_00|4|0", "scene0001_00|4|0#1"]
    assert refer[0].object_ids == (4,) and refer[0].unique is False and refer[1].unique is None
    assert refer[0].grounding and refer[0].ask_task == "ground"
    # One object is asked for (a bare description may match several, or none).
    assert refer[0].question == "Find the chair by the door."
    ann.write_multi3drefer(tmp_path / "m3d.json", [ann.Multi3DReferRecord(
        "scene0001_00", [], "chair", 7, "no such chair", "zt_w_d", False, False, False, False)])
    (m3d,) = load_questions(tmp_path / "m3d.json").questions
    assert (m3d.benchmark, m3d.object_ids, m3d.eval_type) == ("multi3drefer", (), "zt_w_d")
    assert m3d.question == "no such chair"
    ann.write_scanrefer(tmp_path / "bad.json", [ann.ScanReferRecord(
        "scene0001_00", "four", "chair", "0", "x")])
    with pytest.raises(QuestionFileError, match="'four' .* not an integer"):
        load_questions(tmp_path / "bad.json")


def test_sqa3d_needs_its_annotations_and_states_the_situation(tmp_path):
    questions = tmp_path / "v1_balanced_questions_val_scannetv2.json"
    assert sqa3d_annotations_path(questions).name == \
        "v1_balanced_sqa_annotations_val_scannetv2.json"
    record = ann.SQA3DRecord(
        question_id=5, scene_id="scene0001_00", situation="I sit on the bed.",
        alternative_situation=[], question="What is to my left?", question_type="What",
        answer_type="other", answers=[ann.SQA3DAnswer("lamp", "yes", 1)],
        position=(0.0, 0.0, 0.0), rotation=(1.0, 0.0, 0.0, 0.0))
    ann.write_sqa3d(questions, sqa3d_annotations_path(questions), [record])
    (q,) = load_questions(questions).questions
    assert q.id == "5" and q.benchmark == "sqa3d" and q.ask_task == "situated"
    assert q.question == "Situation: I sit on the bed.\nQuestion: What is to my left?"
    assert q.raw_question == "What is to my left?" and q.references == ("lamp",)
    sqa3d_annotations_path(questions).unlink()
    with pytest.raises(QuestionFileError, match="annotations file"):
        load_questions(questions)
    annotations_only = tmp_path / "v1_balanced_sqa_annotations_x.json"
    annotations_only.write_text('{"annotations": []}')
    with pytest.raises(QuestionFileError, match="annotations file; pass the questions"):
        load_questions(annotations_only)


def test_jsonl_tasks_boxes_and_errors(tmp_path):
    path = _jsonl(tmp_path / "q.jsonl",
                  {"id": "qa", "question": "colour of the bed?", "task": "qa", "answers": "red"},
                  {"id": "g", "question": "the bed", "task": "ground",
                   "box": [1, 2, 0.3, 2, 1.5, 0.6]},
                  {"id": "m", "question": "the chairs", "task": "ground",
                   "box": [[0, 0, 0, 1, 1, 1], [2, 0, 0, 1, 1, 1]]},
                  {"id": "o", "question": "the lamp", "task": "ground", "object_id": 9},
                  {"id": "s", "question": "what is ahead?", "task": "situated",
                   "situation": "I face the door.", "answers": ["door"]},
                  {"id": "free", "question": "describe the room"})
    by_id = {q.id: q for q in load_questions(path).questions}
    assert by_id["qa"].benchmark == "scanqa" and by_id["qa"].references == ("red",)
    assert by_id["g"].benchmark == "scanrefer"
    np.testing.assert_allclose(by_id["g"].gt_boxes, [[1, 2, 0.3, 2, 1.5, 0.6]])
    assert by_id["m"].benchmark == "multi3drefer" and by_id["m"].gt_boxes.shape == (2, 6)
    assert by_id["o"].object_ids == (9,) and by_id["o"].gt_boxes is None
    assert by_id["s"].question.startswith("Situation: I face the door.\nQuestion: ")
    assert by_id["s"].benchmark == "sqa3d"
    assert (by_id["free"].benchmark, by_id["free"].ask_task) == ("", "")

    bad = [({"id": "x"}, "missing key 'question'"),
           ({"id": "x", "question": "q", "task": "dance"}, "unknown task 'dance'"),
           ({"id": "x", "question": "q", "task": "ground", "box": [1, 2, 3]}, "'box' must be"),
           ({"id": "x", "question": "q", "task": "ground", "box": [0, 0, 0, -1, 1, 1]},
            "sizes >= 0"),
           ({"id": "x", "question": "q", "answers": [1]}, "list of strings")]
    for obj, message in bad:
        with pytest.raises(QuestionFileError, match=message):
            load_questions(_jsonl(tmp_path / "bad.jsonl", obj))
    with pytest.raises(QuestionFileError, match="line 2: id 'a' appears more than once"):
        load_questions(_jsonl(tmp_path / "dup.jsonl", {"id": "a", "question": "q"},
                              {"id": "a", "question": "r"}))
    (tmp_path / "broken.jsonl").write_text('{"id": "a", "question": "q"}\n{oops\n')
    with pytest.raises(QuestionFileError, match="line 2: invalid JSON"):
        load_questions(tmp_path / "broken.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(QuestionFileError, match="no questions to ask"):
        load_questions(tmp_path / "empty.jsonl")
