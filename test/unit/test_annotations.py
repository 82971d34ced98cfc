"""Tests of the annotation formats: the real ScanQA val set and synthetic round trips."""
from __future__ import annotations

import json
import re

import pytest

from scene_llm_ros.data.annotations import (
    Multi3DReferRecord,
    ScanQARecord,
    ScanReferRecord,
    SQA3DAnswer,
    SQA3DRecord,
    read_multi3drefer,
    read_scan2cap,
    read_scanqa,
    read_scanrefer,
    read_sqa3d,
    scan2cap_references,
    write_multi3drefer,
    write_scan2cap,
    write_scanqa,
    write_scanrefer,
    write_sqa3d,
)
from scene_llm_ros.errors import DataFormatError


@pytest.fixture(scope="module")
def scanqa_val_path(shared_data):
    return shared_data / "scanqa" / "ScanQA_v1.0_val.json"


def test_real_scanqa_val_loads(scanqa_val_path):
    records = read_scanqa(scanqa_val_path)
    assert len(records) == 4675
    assert len({r.scene_id for r in records}) == 71
    assert all(re.fullmatch(r"val-scene\d{4}-\d+", r.question_id) for r in records)
    assert all(r.question_id.split("-")[1] == r.scene_id[:9] for r in records)
    first = records[0]
    assert first == ScanQARecord(
        scene_id="scene0011_00", question_id="val-scene0011-0",
        question="What color is the chair in the kitchen?", answers=["dark brown", "brown"],
        object_ids=list(range(4, 14)), object_names=["chair"] * 10)
    assert all(r.answers and len(r.object_ids) == len(r.object_names) for r in records)


def test_real_scanqa_round_trip_is_byte_identical(scanqa_val_path, tmp_path):
    records = read_scanqa(scanqa_val_path)
    out = tmp_path / "val.json"
    write_scanqa(out, records)
    assert out.read_bytes() == scanqa_val_path.read_bytes()
    assert read_scanqa(out) == records


def test_scanqa_test_split_without_answers(tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps([{"question": "Where?", "question_id": "test-scene0707-3",
                                 "scene_id": "scene0707_00"}]))
    (record,) = read_scanqa(path)
    assert record.answers is None and record.object_ids is None
    write_scanqa(tmp_path / "again.json", [record])
    assert (tmp_path / "again.json").read_text() == path.read_text()


def _scanrefer() -> list[ScanReferRecord]:
    return [ScanReferRecord("scene0000_00", "37", "bed", "0", "the bed is by the wall .",
                            ["the", "bed", "is", "by", "the", "wall", "."]),
            ScanReferRecord("scene0000_00", "37", "bed", "1", "a large bed .",
                            ["a", "large", "bed", "."]),
            ScanReferRecord("scene0000_00", "12", "trash_can", "0", "a small bin .",
                            ["a", "small", "bin", "."], extra={"note": 1})]


def test_scanrefer_and_scan2cap_round_trip(tmp_path):
    records = _scanrefer()
    write_scanrefer(tmp_path / "r.json", records)
    assert read_scanrefer(tmp_path / "r.json") == records
    first = json.loads((tmp_path / "r.json").read_text())[0]
    assert list(first) == ["scene_id", "object_id", "object_name", "ann_id", "description",
                           "token"]
    write_scan2cap(tmp_path / "c.json", records)
    assert (tmp_path / "c.json").read_bytes() == (tmp_path / "r.json").read_bytes()
    assert read_scan2cap(tmp_path / "c.json") == records


def test_scan2cap_references_keys():
    references = scan2cap_references(_scanrefer())
    assert references == {"scene0000_00|37|bed": ["the bed is by the wall .", "a large bed ."],
                          "scene0000_00|12|trash_can": ["a small bin ."]}
    tokens = scan2cap_references(_scanrefer(), from_tokens=True, max_len=3)
    assert tokens["scene0000_00|37|bed"] == ["sos the bed is eos", "sos a large bed eos"]


def test_scanrefer_type_errors_name_file_record_field(tmp_path):
    path = tmp_path / "refer.json"
    good = {"scene_id": "scene0000_00", "object_id": "1", "object_name": "x", "ann_id": "0",
            "description": "d", "token": []}
    rows = [good, {**good, "object_id": 1}]
    path.write_text(json.dumps(rows))
    with pytest.raises(DataFormatError, match=r"refer\.json: record 1 field 'object_id'"):
        read_scanrefer(path)
    path.write_text(json.dumps([{**rows[0], "token": ["a", 2]}]))
    with pytest.raises(DataFormatError, match=r"refer\.json: record 0 field 'token' item 1"):
        read_scanrefer(path)
    path.write_text('[{"scene_id": ')
    with pytest.raises(DataFormatError, match=r"refer\.json.*invalid JSON"):
        read_scanrefer(path)


def test_multi3drefer_round_trip_and_validation(tmp_path):
    records = [Multi3DReferRecord("scene0000_00", [28, 29], "stool", 0, "the stools .", "mt",
                                  spatial=False, color=False, texture=False, shape=True),
               Multi3DReferRecord("scene0000_00", [], "piano", 1, "a piano .", "zt_wo_d",
                                  spatial=True, color=False, texture=False, shape=False,
                                  token=["a", "piano", "."])]
    path = tmp_path / "m3d.json"
    write_multi3drefer(path, records)
    assert read_multi3drefer(path) == records
    assert "token" not in json.loads(path.read_text())[0]
    data = json.loads(path.read_text())
    data[1]["eval_type"] = "multi"
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"m3d\.json: record 1 field 'eval_type'"):
        read_multi3drefer(path)
    data[1]["eval_type"] = "zt"
    data[0]["spatial"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"m3d\.json: record 0 field 'spatial'"):
        read_multi3drefer(path)


def _sqa3d() -> list[SQA3DRecord]:
    return [SQA3DRecord(220602000000, "scene0380_00", "I am sitting on the bed.",
                        ["I am resting on the bed."], "What is in front of me?", "what",
                        "other", [SQA3DAnswer("desk", "yes", 1)], (1.5, -0.25, 0.0),
                        (0.7071, 0.0, 0.0, 0.7071)),
            SQA3DRecord(220602000001, "scene0380_00", "I face the door.", [],
                        "Is the door open?", "is", "yes/no",
                        [SQA3DAnswer("no", "yes", 1), SQA3DAnswer("no", "maybe", 2)],
                        (0.0, 1.0, 0.0), (1.0, 0.0, 0.0, 0.0))]


def test_sqa3d_round_trip_and_official_layout(tmp_path):
    questions, annotations = tmp_path / "q.json", tmp_path / "a.json"
    write_sqa3d(questions, annotations, _sqa3d())
    assert read_sqa3d(questions, annotations) == _sqa3d()
    annotation = json.loads(annotations.read_text())["annotations"][0]
    assert annotation["rotation"] == {"_w": 0.7071, "_x": 0.0, "_y": 0.0, "_z": 0.7071}
    assert annotation["position"] == {"x": 1.5, "y": -0.25, "z": 0.0}
    assert annotation["answers"] == [{"answer": "desk", "answer_confidence": "yes",
                                      "answer_id": 1}]
    question = json.loads(questions.read_text())["questions"][1]
    assert question["question_id"] == 220602000001 and question["alternative_situation"] == []


def test_sqa3d_join_and_field_errors(tmp_path):
    questions, annotations = tmp_path / "q.json", tmp_path / "a.json"
    write_sqa3d(questions, annotations, _sqa3d()[:1])
    write_sqa3d(tmp_path / "q2.json", tmp_path / "a2.json", _sqa3d())
    with pytest.raises(DataFormatError, match=r"a\.json: no annotation for question_id "
                                              r"220602000001"):
        read_sqa3d(tmp_path / "q2.json", annotations)
    data = json.loads(annotations.read_text())
    data["annotations"][0]["rotation"].pop("_z")
    annotations.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"a\.json: annotation 0 field 'rotation'.*'_z'"):
        read_sqa3d(questions, annotations)
    annotations.write_text(json.dumps({"annotation": []}))
    with pytest.raises(DataFormatError, match=r"a\.json: top level lacks field 'annotations'"):
        read_sqa3d(questions, annotations)
