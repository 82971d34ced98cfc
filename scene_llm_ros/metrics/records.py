"""The per-question input of :func:`scene_llm_ros.metrics.evaluate.evaluate`, and its checks.

One :class:`EvalRecord` per question (ScanQA, SQA3D), per description (ScanRefer,
Multi3DRefer) or per ground-truth object (Scan2Cap). Builders join model predictions with the
official annotations read by :mod:`scene_llm_ros.data.annotations`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from scene_llm_ros.data.annotations import ScanQARecord, SQA3DRecord
from scene_llm_ros.errors import SceneLlmError
from scene_llm_ros.metrics.grounding import as_boxes

TASKS = ("scanrefer", "multi3drefer", "scanqa", "sqa3d", "scan2cap")


class MetricInputError(SceneLlmError, ValueError):
    """Records cannot be scored as given (the message names the task, question and field)."""


@dataclass(frozen=True)
class EvalRecord:
    """One scored item.

    :ivar task: one of :data:`TASKS`.
    :ivar question_id: unique within the task (Scan2Cap: ``scene_id|object_id|object_name``).
    :ivar prediction: the model's answer or caption; Scan2Cap: None when no predicted box was
        assigned to this object (it then scores 0).
    :ivar references: reference answers / captions (ScanQA, SQA3D, Scan2Cap).
    :ivar pred_boxes: (N, 6) predicted boxes, centre + full size, metres. ScanRefer uses the
        first; Scan2Cap takes the one box the caption was generated for.
    :ivar gt_boxes: (M, 6) ground-truth boxes: ScanRefer and Scan2Cap one, Multi3DRefer any
        number (zero for a zero-target description).
    :ivar unique: ScanRefer: the target is the only object of its class in the scene.
    :ivar eval_type: Multi3DRefer: ``zt_w_d``, ``zt_wo_d``, ``st_w_d``, ``st_wo_d`` or ``mt``.
    :ivar question: ScanQA and SQA3D: the question text, for ScanQA's counting accuracy and
        SQA3D's breakdown by question type.
    """

    task: str
    question_id: str
    prediction: str | None = None
    references: tuple[str, ...] = ()
    pred_boxes: ArrayLike | None = field(default=None, compare=False)
    gt_boxes: ArrayLike | None = field(default=None, compare=False)
    unique: bool | None = None
    eval_type: str | None = None
    question: str | None = None


def _fail(record: EvalRecord, message: str) -> MetricInputError:
    return MetricInputError(f"{record.task} question {record.question_id!r}: {message}")


def _check_text(record: EvalRecord, *, prediction_required: bool) -> None:
    if prediction_required and not isinstance(record.prediction, str):
        raise _fail(record, f"prediction must be a string, got {record.prediction!r}")
    if record.prediction is not None and not isinstance(record.prediction, str):
        raise _fail(record, f"prediction must be a string or None, got {record.prediction!r}")
    if isinstance(record.references, str) or len(record.references) == 0:
        raise _fail(record, f"needs a non-empty sequence of references, got {record.references!r}")
    for reference in record.references:
        if not isinstance(reference, str):
            raise _fail(record, f"reference {reference!r} is not a string")


def _boxes(record: EvalRecord, name: str) -> np.ndarray:
    try:
        return as_boxes(getattr(record, name), name)
    except ValueError as error:
        raise _fail(record, str(error)) from None


def check_record(record: EvalRecord) -> None:
    """Check that ``record`` carries what its task needs.

    :raises MetricInputError: naming the task, the question id and the bad field.
    """
    if record.task not in TASKS:
        raise _fail(record, f"unknown task {record.task!r}, expected one of {TASKS}")
    if not isinstance(record.question_id, str) or not record.question_id:
        raise _fail(record, "question_id must be a non-empty string")
    if record.task in ("scanqa", "sqa3d"):
        _check_text(record, prediction_required=True)
    elif record.task == "scan2cap":
        _check_text(record, prediction_required=False)
        if len(_boxes(record, "gt_boxes")) != 1:
            raise _fail(record, "Scan2Cap needs exactly one ground-truth box")
        if record.prediction is not None and len(_boxes(record, "pred_boxes")) != 1:
            raise _fail(record, "a Scan2Cap caption needs exactly one predicted box")
    elif record.task == "scanrefer":
        _boxes(record, "pred_boxes")
        if len(_boxes(record, "gt_boxes")) != 1:
            raise _fail(record, "ScanRefer needs exactly one ground-truth box")
        if record.unique is not None and not isinstance(record.unique, bool):
            raise _fail(record, f"unique must be a bool or None, got {record.unique!r}")
    else:  # multi3drefer
        _boxes(record, "pred_boxes")
        _boxes(record, "gt_boxes")


def group_by_task(records: Iterable[EvalRecord]) -> dict[str, list[EvalRecord]]:
    """Check every record and group them by task, in input order.

    :raises MetricInputError: on a bad record or a question id repeated within a task.
    """
    groups: dict[str, list[EvalRecord]] = {}
    seen: set[tuple[str, str]] = set()
    for record in records:
        if not isinstance(record, EvalRecord):
            raise MetricInputError(f"expected EvalRecord, got {type(record).__name__}")
        check_record(record)
        key = (record.task, record.question_id)
        if key in seen:
            raise _fail(record, "question id appears more than once")
        seen.add(key)
        groups.setdefault(record.task, []).append(record)
    if not groups:
        raise MetricInputError("no records to evaluate")
    return groups


def _join(task: str, ids: Sequence[str], predictions: Mapping[str, str]) -> None:
    unknown = sorted(set(predictions) - set(ids))
    if unknown:
        raise MetricInputError(f"{task}: {len(unknown)} prediction ids are not in the references, "
                               f"e.g. {unknown[:5]}")
    missing = [question_id for question_id in ids if question_id not in predictions]
    if missing:
        raise MetricInputError(f"{task}: {len(missing)} questions have no prediction, "
                               f"e.g. {missing[:5]}")


def scanqa_eval_records(annotations: Sequence[ScanQARecord],
                        predictions: Mapping[str, str]) -> list[EvalRecord]:
    """ScanQA records from the official annotations and {question_id: answer} predictions.

    :raises MetricInputError: when a prediction id is not an annotated question, a question has
        no prediction, or a question has no reference answers (the test split).
    """
    ids = [annotation.question_id for annotation in annotations]
    _join("scanqa", ids, predictions)
    records = []
    for annotation in annotations:
        if not annotation.answers:
            raise MetricInputError(f"scanqa question {annotation.question_id!r} has no reference "
                                   "answers (the test splits cannot be scored locally)")
        records.append(EvalRecord("scanqa", annotation.question_id,
                                  prediction=predictions[annotation.question_id],
                                  references=tuple(annotation.answers),
                                  question=annotation.question))
    return records


def sqa3d_eval_records(annotations: Sequence[SQA3DRecord],
                       predictions: Mapping[str, str]) -> list[EvalRecord]:
    """SQA3D records from the official annotations and {str(question_id): answer} predictions.

    :raises MetricInputError: when a prediction id is not an annotated question or a question
        has no prediction.
    """
    ids = [str(annotation.question_id) for annotation in annotations]
    _join("sqa3d", ids, predictions)
    return [EvalRecord("sqa3d", question_id, prediction=predictions[question_id],
                       references=tuple(answer.answer for answer in annotation.answers),
                       question=annotation.question)
            for question_id, annotation in zip(ids, annotations, strict=True)]
