"""One entry point for the official metrics of ScanRefer, Multi3DRefer, ScanQA, SQA3D, Scan2Cap.

:func:`evaluate` takes :class:`~scene_llm_ros.metrics.records.EvalRecord` items of any mix of
tasks and returns the metrics of the tasks present under stable names (``scanqa/cider``,
``scanrefer/acc@0.5/unique``, ``scan2cap/cider@0.5`` ...), plus every item's own scores.
Values are fractions as pycocoevalcap returns them (papers print them x100); CIDEr already
includes pycocoevalcap's factor 10.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from scene_llm_ros.metrics import ngram
from scene_llm_ros.metrics.grounding import IOU_THRESHOLDS, as_boxes, matched_f1, top1_iou
from scene_llm_ros.metrics.meteor import MeteorScorer, meteor_unavailable_reason
from scene_llm_ros.metrics.records import EvalRecord, MetricInputError, group_by_task
from scene_llm_ros.metrics.text import (
    SQA3D_QUESTION_TYPES,
    answer_match,
    clean_answer,
    clean_prediction,
    is_counting_question,
    sqa3d_question_type,
)
from scene_llm_ros.metrics.tokenize import ptb_tokenize

logger = logging.getLogger(__name__)

#: Multi3DRefer evaluation types, in the order its evaluator prints them.
MULTI3DREFER_TYPES = ("zt_w_d", "zt_wo_d", "st_w_d", "st_wo_d", "mt")


@dataclass
class EvaluationResult:
    """Metrics of one evaluation.

    :ivar metrics: metric name -> value; None when a metric could not be computed (see notes).
    :ivar per_question: one dict per record, in input order: ``task``, ``question_id`` and the
        record's own scores under the metric's short name (``em``, ``cider``, ``iou`` ...).
    :ivar counts: task -> number of records scored.
    :ivar notes: why a metric is missing or None.
    """

    metrics: dict[str, float | None] = field(default_factory=dict)
    per_question: list[dict[str, object]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _threshold_name(threshold: float) -> str:
    return f"{threshold:g}"


def _mean(values: Iterable[float]) -> float:
    return float(np.mean(list(values)))


def _all_or_none(records: Sequence[EvalRecord], attribute: str) -> bool:
    """True when every record sets ``attribute``; raise when only some do."""
    present = [getattr(r, attribute) is not None for r in records]
    if any(present) and not all(present):
        missing = records[present.index(False)]
        raise MetricInputError(f"{missing.task} question {missing.question_id!r}: {attribute} is "
                               f"missing while other {missing.task} records set it")
    return all(present)


class _CaptionScorer:
    """n-gram (and optionally METEOR) scores of tokenised captions, per item and corpus."""

    def __init__(self, *, use_meteor: bool, result: EvaluationResult) -> None:
        self.use_meteor = use_meteor
        self.meteor_reason = meteor_unavailable_reason() if use_meteor else None
        self.result = result
        self._meteor: MeteorScorer | None = None  # started on first use, shared by the tasks

    def close(self) -> None:
        """Stop METEOR's Java process if one was started."""
        if self._meteor is not None:
            self._meteor.close()
            self._meteor = None

    def score(self, predictions: list[str], references: list[list[str]]
              ) -> dict[str, ngram.CorpusScore | None]:
        scores: dict[str, ngram.CorpusScore | None] = {}
        for n, bleu_n in enumerate(ngram.bleu(predictions, references), start=1):
            scores[f"bleu-{n}"] = bleu_n
        scores["rouge-l"] = ngram.rouge_l(predictions, references)
        scores["cider"] = ngram.cider_d(predictions, references)
        if self.use_meteor:
            if self.meteor_reason is None:
                if self._meteor is None:
                    self._meteor = MeteorScorer()
                scores["meteor"] = self._meteor.score(predictions, references)
            else:
                scores["meteor"] = None
                if self.meteor_reason not in self.result.notes:
                    self.result.notes.append(self.meteor_reason)
                    logger.warning("METEOR skipped: %s", self.meteor_reason)
        return scores


def _score_answers(task: str, records: Sequence[EvalRecord], result: EvaluationResult,
                   captions: _CaptionScorer | None) -> list[dict[str, object]]:
    """ScanQA / SQA3D: EM and EM-R (and for ScanQA the caption metrics) of cleaned answers."""
    predictions = [clean_prediction(r.prediction) for r in records]
    references = [[clean_answer(a) for a in r.references] for r in records]
    matches = [answer_match(p, refs) for p, refs in zip(predictions, references, strict=True)]
    rows = [{"em": m.em, "em_r": m.em_r} for m in matches]
    result.metrics[f"{task}/em"] = _mean(m.em for m in matches)
    result.metrics[f"{task}/em_r"] = _mean(m.em_r for m in matches)
    if task == "sqa3d" and _all_or_none(records, "question"):
        types = [sqa3d_question_type(r.question) for r in records]
        for question_type in SQA3D_QUESTION_TYPES:
            chosen = [m for m, t in zip(matches, types, strict=True) if t == question_type]
            if chosen:
                result.metrics[f"sqa3d/em/{question_type}"] = _mean(m.em for m in chosen)
                result.metrics[f"sqa3d/em_r/{question_type}"] = _mean(m.em_r for m in chosen)
        for row, question_type in zip(rows, types, strict=True):
            row["question_type"] = question_type
    if task == "scanqa" and _all_or_none(records, "question"):
        # Counting accuracy: EM on "how many" questions (answers are normalised, so "2" and
        # "two" agree).
        counting = [is_counting_question(r.question) for r in records]
        chosen = [m for m, c in zip(matches, counting, strict=True) if c]
        if chosen:
            result.metrics["scanqa/em/counting"] = _mean(m.em for m in chosen)
            result.metrics["scanqa/em_r/counting"] = _mean(m.em_r for m in chosen)
        for row, is_counting in zip(rows, counting, strict=True):
            row["counting"] = is_counting
    if captions is not None:
        scores = captions.score([ptb_tokenize(p) for p in predictions],
                                [[ptb_tokenize(a) for a in refs] for refs in references])
        for name, score in scores.items():
            result.metrics[f"{task}/{name}"] = None if score is None else score.value
            for index, row in enumerate(rows):
                row[name] = None if score is None else score.per_item[index]
    return rows


def _score_scanrefer(records: Sequence[EvalRecord], result: EvaluationResult
                     ) -> list[dict[str, object]]:
    ious = [top1_iou(as_boxes(r.pred_boxes, "pred_boxes"), as_boxes(r.gt_boxes, "gt_boxes"))
            for r in records]
    rows: list[dict[str, object]] = []
    for iou in ious:
        row: dict[str, object] = {"iou": iou}
        for k in IOU_THRESHOLDS:
            row[f"acc@{_threshold_name(k)}"] = float(iou >= k)
        rows.append(row)
    splits = {"": [True] * len(records)}
    if _all_or_none(records, "unique"):
        splits["/unique"] = [r.unique for r in records]
        splits["/multiple"] = [not r.unique for r in records]
    for suffix, selected in splits.items():
        for k in IOU_THRESHOLDS:
            name = f"acc@{_threshold_name(k)}"
            chosen = [row[name] for row, keep in zip(rows, selected, strict=True) if keep]
            if chosen:
                result.metrics[f"scanrefer/{name}{suffix}"] = _mean(chosen)
    return rows


def _score_multi3drefer(records: Sequence[EvalRecord], result: EvaluationResult
                        ) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for r in records:
        f1 = matched_f1(as_boxes(r.pred_boxes, "pred_boxes"), as_boxes(r.gt_boxes, "gt_boxes"))
        rows.append({f"f1@{_threshold_name(k)}": value for k, value in f1.items()})
    groups = {"": [True] * len(records)}
    if _all_or_none(records, "eval_type"):
        for r in records:
            if r.eval_type not in MULTI3DREFER_TYPES:
                raise MetricInputError(f"multi3drefer question {r.question_id!r}: eval_type "
                                       f"{r.eval_type!r} is not one of {MULTI3DREFER_TYPES}")
        for eval_type in MULTI3DREFER_TYPES:
            groups[f"/{eval_type}"] = [r.eval_type == eval_type for r in records]
    for suffix, selected in groups.items():
        for k in IOU_THRESHOLDS:
            name = f"f1@{_threshold_name(k)}"
            chosen = [row[name] for row, keep in zip(rows, selected, strict=True) if keep]
            if chosen:
                result.metrics[f"multi3drefer/{name}{suffix}"] = _mean(chosen)
    return rows


def _score_scan2cap(records: Sequence[EvalRecord], result: EvaluationResult,
                    captions: _CaptionScorer, *, sos_eos: bool) -> list[dict[str, object]]:
    """Scan2Cap m@kIoU: an object's caption score counts only when its box has IoU >= k.

    Every ground-truth object is one record; objects without a prediction, or whose predicted
    box overlaps too little, count as 0, and the mean runs over all objects. CIDEr's document
    frequencies come from all objects' references, as in Scan2Cap's corpus.
    """
    def wrap(text: str) -> str:
        # Scan2Cap scores "sos <caption> eos" on both sides; an empty caption is "sos eos".
        return (f"sos {text} eos" if text else "sos eos") if sos_eos else text

    ious = [0.0 if r.prediction is None else
            top1_iou(as_boxes(r.pred_boxes, "pred_boxes"), as_boxes(r.gt_boxes, "gt_boxes"))
            for r in records]
    predictions = [wrap(ptb_tokenize(r.prediction or "")) for r in records]
    references = [[wrap(ptb_tokenize(c)) for c in r.references] for r in records]
    scores = captions.score(predictions, references)
    wanted = ("bleu-4", "rouge-l", "cider", "meteor")
    rows: list[dict[str, object]] = [{"iou": iou} for iou in ious]
    for name in wanted:
        if name not in scores:
            continue
        score = scores[name]
        for k in IOU_THRESHOLDS:
            key = f"{name}@{_threshold_name(k)}"
            if score is None:
                result.metrics[f"scan2cap/{key}"] = None
                continue
            masked = [s if iou >= k else 0.0 for s, iou in zip(score.per_item, ious, strict=True)]
            result.metrics[f"scan2cap/{key}"] = _mean(masked)
            for row, value in zip(rows, masked, strict=True):
                row[key] = value
    return rows


def evaluate(records: Iterable[EvalRecord], *, meteor: bool = True,
             scan2cap_sos_eos: bool = True) -> EvaluationResult:
    """Score records of any of the five tasks with each benchmark's official definition.

    * ``scanrefer/acc@0.25``, ``acc@0.5`` (+ ``/unique``, ``/multiple`` when every record has
      ``unique``): share of descriptions whose predicted box has IoU >= k with the target.
    * ``multi3drefer/f1@0.25``, ``f1@0.5`` (+ ``/<eval_type>``): mean per-description F1 after
      Hungarian matching; a zero-target description scores 1 only if nothing is predicted.
    * ``scanqa/em``, ``em_r``, ``bleu-1`` .. ``bleu-4``, ``rouge-l``, ``meteor``, ``cider``: on
      cleaned answers (:func:`~scene_llm_ros.metrics.text.clean_answer`), PTB-tokenised.
    * ``sqa3d/em``, ``em_r`` (+ ``/<question type>`` when every record has ``question``).
    * ``scan2cap/<metric>@0.25``, ``@0.5`` for bleu-4, rouge-l, meteor, cider: per-object
      scores counted only when the caption's box has IoU >= k, averaged over all objects.

    :param records: the items; question ids must be unique within a task.
    :param meteor: compute METEOR (Java). Without a Java runtime the METEOR metrics are None
        and ``notes`` says why; False leaves them out.
    :param scan2cap_sos_eos: wrap Scan2Cap captions in ``sos ... eos`` as Scan2Cap does; pass
        False when the references already carry them.
    :return: the metrics, per-question scores, counts and notes.
    :raises MetricInputError: naming the task, question and field of the first bad record.
    """
    records = list(records)
    groups = group_by_task(records)
    result = EvaluationResult()
    captions = _CaptionScorer(use_meteor=meteor, result=result)
    scorers: dict[str, Callable[[Sequence[EvalRecord]], list[dict[str, object]]]] = {
        "scanrefer": lambda rs: _score_scanrefer(rs, result),
        "multi3drefer": lambda rs: _score_multi3drefer(rs, result),
        "scanqa": lambda rs: _score_answers("scanqa", rs, result, captions),
        "sqa3d": lambda rs: _score_answers("sqa3d", rs, result, None),
        "scan2cap": lambda rs: _score_scan2cap(rs, result, captions, sos_eos=scan2cap_sos_eos),
    }
    rows_by_record: dict[tuple[str, str], dict[str, object]] = {}
    try:
        for task, task_records in groups.items():
            result.counts[task] = len(task_records)
            for record, row in zip(task_records, scorers[task](task_records), strict=True):
                rows_by_record[(task, record.question_id)] = {
                    "task": task, "question_id": record.question_id, **row}
    finally:
        captions.close()
    result.per_question = [rows_by_record[(r.task, r.question_id)] for r in records]
    return result
