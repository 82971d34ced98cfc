"""Language annotations on ScanNet scenes: ScanRefer, Scan2Cap, ScanQA, SQA3D and Multi3DRefer.

Each format is a dataclass with a JSON reader that checks every field's type (errors name the
file, the record index and the field) and a deterministic writer using the official key names in
the official key order. Keys a record has beyond the official ones are kept in ``extra`` and
written back after them.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from scene_llm_ros.data.scannet.jsonio import is_type, load_json, require_key
from scene_llm_ros.errors import DataFormatError

logger = logging.getLogger(__name__)

MULTI3DREFER_EVAL_TYPES = ("zt_w_d", "zt_wo_d", "st_w_d", "st_wo_d", "mt")


@dataclass(frozen=True)
class _Field:
    """How one dataclass attribute is stored in JSON."""

    key: str
    types: tuple[type, ...]
    item_types: tuple[type, ...] | None = None  # set for lists
    optional: bool = False  # optional fields are None when absent and not written when None


@dataclass
class ScanReferRecord:
    """One ScanRefer description (also the record format of Scan2Cap captions).

    ``object_id`` and ``ann_id`` are strings in the official files.
    """

    scene_id: str
    object_id: str
    object_name: str
    ann_id: str
    description: str
    token: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _FIELDS = {"scene_id": _Field("scene_id", (str,)), "object_id": _Field("object_id", (str,)),
               "object_name": _Field("object_name", (str,)), "ann_id": _Field("ann_id", (str,)),
               "description": _Field("description", (str,)),
               "token": _Field("token", (list,), (str,), optional=True)}


#: Scan2Cap uses ScanRefer's files and records unchanged.
Scan2CapRecord = ScanReferRecord


@dataclass
class ScanQARecord:
    """One ScanQA question; ``question_id`` looks like ``train-scene0000-0``.

    The test split has no ``answers`` (and ``test_wo_obj`` no objects): those fields are None.
    """

    scene_id: str
    question_id: str
    question: str
    answers: list[str] | None = None
    object_ids: list[int] | None = None
    object_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # The official files list keys alphabetically.
    _FIELDS = {"answers": _Field("answers", (list,), (str,), optional=True),
               "object_ids": _Field("object_ids", (list,), (int,), optional=True),
               "object_names": _Field("object_names", (list,), (str,), optional=True),
               "question": _Field("question", (str,)),
               "question_id": _Field("question_id", (str,)),
               "scene_id": _Field("scene_id", (str,))}


@dataclass
class Multi3DReferRecord:
    """One Multi3DRefer description, which may refer to zero, one or many objects.

    ``eval_type`` is ``zt`` (zero targets), ``st_w_d``/``st_wo_d`` (single target with/without
    distractors of the same class) or ``mt`` (multiple targets). ``ann_id`` is kept as given
    (an int in the released files).
    """

    scene_id: str
    object_ids: list[int]
    object_name: str
    ann_id: int | str
    description: str
    eval_type: str
    spatial: bool
    color: bool
    texture: bool
    shape: bool
    token: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _FIELDS = {"scene_id": _Field("scene_id", (str,)),
               "object_name": _Field("object_name", (str,)),
               "ann_id": _Field("ann_id", (int, str)),
               "description": _Field("description", (str,)),
               "object_ids": _Field("object_ids", (list,), (int,)),
               "eval_type": _Field("eval_type", (str,)),
               "spatial": _Field("spatial", (bool,)), "color": _Field("color", (bool,)),
               "texture": _Field("texture", (bool,)), "shape": _Field("shape", (bool,)),
               "token": _Field("token", (list,), (str,), optional=True)}


@dataclass
class SQA3DAnswer:
    """One answer of an SQA3D question (VQA-style)."""

    answer: str
    answer_confidence: str
    answer_id: int


@dataclass
class SQA3DRecord:
    """One SQA3D question joined with its annotation on ``question_id``.

    :ivar position: (x, y, z) of the agent in the scan frame, metres.
    :ivar rotation: agent orientation quaternion as (w, x, y, z) (JSON keys ``_w _x _y _z``).
    """

    question_id: int
    scene_id: str
    situation: str
    alternative_situation: list[str]
    question: str
    question_type: str
    answer_type: str
    answers: list[SQA3DAnswer]
    position: tuple[float, float, float]
    rotation: tuple[float, float, float, float]
    question_extra: dict[str, Any] = field(default_factory=dict)
    annotation_extra: dict[str, Any] = field(default_factory=dict)


_SQA3D_QUESTION_FIELDS = {
    "question_id": _Field("question_id", (int,)), "scene_id": _Field("scene_id", (str,)),
    "situation": _Field("situation", (str,)),
    "alternative_situation": _Field("alternative_situation", (list,), (str,)),
    "question": _Field("question", (str,))}
_SQA3D_ANNOTATION_FIELDS = {
    "question_id": _Field("question_id", (int,)), "scene_id": _Field("scene_id", (str,)),
    "question_type": _Field("question_type", (str,)),
    "answer_type": _Field("answer_type", (str,)), "answers": _Field("answers", (list,), (dict,)),
    "position": _Field("position", (dict,)), "rotation": _Field("rotation", (dict,))}
_SQA3D_ANSWER_FIELDS = {"answer": _Field("answer", (str,)),
                        "answer_confidence": _Field("answer_confidence", (str,)),
                        "answer_id": _Field("answer_id", (int,))}
_POSITION_KEYS = ("x", "y", "z")
_ROTATION_KEYS = ("_w", "_x", "_y", "_z")

_Record = TypeVar("_Record")


def _parse_fields(obj: Any, specs: dict[str, _Field], path: Path, where: str) -> dict[str, Any]:
    """Check ``obj`` against ``specs``; return attribute values plus ``extra`` (unknown keys)."""
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: {where} is a {type(obj).__name__}, expected an object")
    values: dict[str, Any] = {}
    for attribute, spec in specs.items():
        if spec.optional and obj.get(spec.key) is None:
            values[attribute] = None
            continue
        value = require_key(obj, spec.key, spec.types, path, where)
        if spec.item_types is not None:
            for index, item in enumerate(value):
                if not is_type(item, spec.item_types):
                    raise DataFormatError(
                        f"{path}: {where} field {spec.key!r} item {index} is {item!r} "
                        f"({type(item).__name__}), expected "
                        f"{' or '.join(t.__name__ for t in spec.item_types)}")
            value = list(value)
        values[attribute] = value
    known = {spec.key for spec in specs.values()}
    values["extra"] = {k: v for k, v in obj.items() if k not in known}
    return values


def _to_json(record: Any, specs: dict[str, _Field], extra: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute, spec in specs.items():
        value = getattr(record, attribute)
        if value is None and spec.optional:
            continue
        out[spec.key] = value
    out.update(extra)
    return out


def _load_list(path: Path, container_key: str | None = None) -> list:
    data = load_json(path)
    if container_key is not None:
        data = require_key(data, container_key, list, path, "top level")
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: expected a JSON list of records, got "
                              f"{type(data).__name__}")
    return data


def _read_flat(path: str | Path, cls: type[_Record]) -> list[_Record]:
    path = Path(path)
    records = []
    for index, obj in enumerate(_load_list(path)):
        records.append(cls(**_parse_fields(obj, cls._FIELDS, path, f"record {index}")))
    return records


def _write_json(path: str | Path, data: Any) -> None:
    # Default separators and ensure_ascii reproduce the official ScanQA files byte for byte.
    Path(path).write_text(json.dumps(data), encoding="utf-8")


def _write_flat(path: str | Path, records: Iterable[Any]) -> None:
    _write_json(path, [_to_json(r, type(r)._FIELDS, r.extra) for r in records])


def read_scanrefer(path: str | Path) -> list[ScanReferRecord]:
    """Read a ScanRefer file (``ScanRefer_filtered_{train,val}.json``).

    :param path: JSON list of records.
    :return: the records in file order.
    :raises DataFormatError: naming the file, record index and field on a malformed record.
    """
    return _read_flat(path, ScanReferRecord)


def write_scanrefer(path: str | Path, records: Iterable[ScanReferRecord]) -> None:
    """Write ScanRefer (or Scan2Cap) records as a JSON list in the official key order."""
    _write_flat(path, records)


read_scan2cap = read_scanrefer
write_scan2cap = write_scanrefer


def scan2cap_references(records: Iterable[ScanReferRecord], *, from_tokens: bool = False,
                        max_len: int | None = None) -> dict[str, list[str]]:
    """Reference captions keyed like Scan2Cap's evaluation: ``scene_id|object_id|object_name``.

    :param records: ScanRefer-format records.
    :param from_tokens: build each caption as Scan2Cap's evaluation does, from the first
        ``max_len`` tokens wrapped in ``sos`` ... ``eos``; otherwise use ``description``.
    :param max_len: token limit when ``from_tokens`` (None = all tokens).
    :return: key -> captions in record order.
    :raises ValueError: when ``from_tokens`` is set and a record has no tokens.
    """
    references: dict[str, list[str]] = {}
    for record in records:
        key = f"{record.scene_id}|{record.object_id}|{record.object_name}"
        if from_tokens:
            if record.token is None:
                raise ValueError(f"record {key} ann {record.ann_id} has no tokens")
            caption = "sos " + " ".join(record.token[:max_len]) + " eos"
        else:
            caption = record.description
        references.setdefault(key, []).append(caption)
    return references


def read_scanqa(path: str | Path) -> list[ScanQARecord]:
    """Read a ScanQA file (``ScanQA_v1.0_{train,val,test_w_obj,test_wo_obj}.json``).

    :raises DataFormatError: naming the file, record index and field on a malformed record.
    """
    return _read_flat(path, ScanQARecord)


def write_scanqa(path: str | Path, records: Iterable[ScanQARecord]) -> None:
    """Write ScanQA records exactly as the official files are laid out."""
    _write_flat(path, records)


def read_multi3drefer(path: str | Path) -> list[Multi3DReferRecord]:
    """Read a Multi3DRefer file (``multi3drefer_{train,val}.json``).

    :raises DataFormatError: naming the file, record index and field on a malformed record or
        an ``eval_type`` outside :data:`MULTI3DREFER_EVAL_TYPES`.
    """
    records = _read_flat(path, Multi3DReferRecord)
    for index, record in enumerate(records):
        if record.eval_type not in MULTI3DREFER_EVAL_TYPES:
            raise DataFormatError(f"{path}: record {index} field 'eval_type' is "
                                  f"{record.eval_type!r}, expected one of "
                                  f"{MULTI3DREFER_EVAL_TYPES}")
    return records


def write_multi3drefer(path: str | Path, records: Iterable[Multi3DReferRecord]) -> None:
    """Write Multi3DRefer records as a JSON list in the official key order."""
    _write_flat(path, records)


def read_sqa3d(questions_path: str | Path,
               annotations_path: str | Path) -> list[SQA3DRecord]:
    """Read SQA3D's question and annotation files and join them on ``question_id``.

    Expected layout (v1 balanced files): ``{"questions": [{question_id, scene_id, situation,
    alternative_situation, question}]}`` and ``{"annotations": [{question_id, scene_id,
    question_type, answer_type, answers: [{answer, answer_confidence, answer_id}],
    position: {x, y, z}, rotation: {_w, _x, _y, _z}}]}``; other top-level keys are ignored.

    :return: records in the order of the questions file.
    :raises DataFormatError: naming the file, record index and field on a malformed record, or
        the question id when a question has no annotation (or the two disagree on the scene).
    """
    questions_path, annotations_path = Path(questions_path), Path(annotations_path)
    annotations: dict[int, dict[str, Any]] = {}
    for index, obj in enumerate(_load_list(annotations_path, "annotations")):
        where = f"annotation {index}"
        values = _parse_fields(obj, _SQA3D_ANNOTATION_FIELDS, annotations_path, where)
        values["answers"] = [
            SQA3DAnswer(**{k: v for k, v in _parse_fields(
                answer, _SQA3D_ANSWER_FIELDS, annotations_path,
                f"{where} answer {i}").items() if k != "extra"})
            for i, answer in enumerate(values["answers"])]
        values["position"] = _numbers(values["position"], _POSITION_KEYS, annotations_path,
                                      f"{where} field 'position'")
        values["rotation"] = _numbers(values["rotation"], _ROTATION_KEYS, annotations_path,
                                      f"{where} field 'rotation'")
        if values["question_id"] in annotations:
            raise DataFormatError(f"{annotations_path}: {where} repeats question_id "
                                  f"{values['question_id']}")
        annotations[values["question_id"]] = values
    records = []
    for index, obj in enumerate(_load_list(questions_path, "questions")):
        question = _parse_fields(obj, _SQA3D_QUESTION_FIELDS, questions_path,
                                 f"question {index}")
        annotation = annotations.get(question["question_id"])
        if annotation is None:
            raise DataFormatError(f"{annotations_path}: no annotation for question_id "
                                  f"{question['question_id']} (question {index} of "
                                  f"{questions_path})")
        if annotation["scene_id"] != question["scene_id"]:
            raise DataFormatError(f"{annotations_path}: question_id {question['question_id']} "
                                  f"is in {annotation['scene_id']} but {questions_path} says "
                                  f"{question['scene_id']}")
        records.append(SQA3DRecord(
            question_id=question["question_id"], scene_id=question["scene_id"],
            situation=question["situation"],
            alternative_situation=question["alternative_situation"],
            question=question["question"], question_type=annotation["question_type"],
            answer_type=annotation["answer_type"], answers=annotation["answers"],
            position=annotation["position"], rotation=annotation["rotation"],
            question_extra=question["extra"], annotation_extra=annotation["extra"]))
    return records


def _numbers(obj: dict[str, Any], keys: Sequence[str], path: Path, where: str) -> tuple:
    values = []
    for key in keys:
        if key not in obj or not is_type(obj[key], float):
            raise DataFormatError(f"{path}: {where} needs a number at key {key!r}, got "
                                  f"{obj.get(key)!r}")
        values.append(float(obj[key]))
    return tuple(values)


def write_sqa3d(questions_path: str | Path, annotations_path: str | Path,
                records: Sequence[SQA3DRecord]) -> None:
    """Write SQA3D records as a questions file and an annotations file (see :func:`read_sqa3d`)."""
    questions, annotations = [], []
    for record in records:
        questions.append({**_to_json(record, _SQA3D_QUESTION_FIELDS, {}),
                          **record.question_extra})
        annotation = {key: getattr(record, key) for key in ("question_id", "scene_id",
                                                             "question_type", "answer_type")}
        annotation["answers"] = [{f.name: getattr(a, f.name) for f in fields(a)}
                                 for a in record.answers]
        annotation["position"] = dict(zip(_POSITION_KEYS, map(float, record.position), strict=True))
        annotation["rotation"] = dict(zip(_ROTATION_KEYS, map(float, record.rotation), strict=True))
        annotations.append({**annotation, **record.annotation_extra})
    _write_json(questions_path, {"questions": questions})
    _write_json(annotations_path, {"annotations": annotations})
