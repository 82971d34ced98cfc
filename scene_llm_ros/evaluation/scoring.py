"""Score the answers with the official metrics (:func:`scene_llm_ros.metrics.evaluate`)."""
from __future__ import annotations

from collections.abc import Sequence

from scene_llm_ros.evaluation.answers import AskResult
from scene_llm_ros.evaluation.questions import EvalQuestion
from scene_llm_ros.metrics import EvalRecord, EvaluationResult, evaluate


def eval_record(question: EvalQuestion, result: AskResult) -> EvalRecord | None:
    """The metrics' record of one answered question, None when it is not scored.

    A failed request scores as an empty answer with no boxes: a planner would have got
    nothing either.
    """
    benchmark = question.benchmark
    if not benchmark:
        return None
    answer = result.answer if result.success else ""
    if benchmark in ("scanqa", "sqa3d"):
        return EvalRecord(benchmark, question.id, prediction=answer,
                          references=question.references,
                          question=question.raw_question)
    boxes = result.boxes() if result.success else None
    return EvalRecord(benchmark, question.id, pred_boxes=boxes, gt_boxes=question.gt_boxes,
                      unique=question.unique if benchmark == "scanrefer" else None,
                      eval_type=question.eval_type if benchmark == "multi3drefer" else None)


def score(questions: Sequence[EvalQuestion], results: Sequence[AskResult], *,
          meteor: bool = True) -> tuple[EvaluationResult | None, dict[str, dict[str, object]]]:
    """Metrics of the scored questions and each question's own scores.

    :param meteor: compute ScanQA's METEOR (starts a Java process; None without Java).
    :return: the evaluation (None when no question is scored) and question id -> scores.
    :raises MetricInputError: when a record cannot be scored (the message names it).
    """
    records = [r for q, a in zip(questions, results, strict=True)
               if (r := eval_record(q, a)) is not None]
    if not records:
        return None, {}
    result = evaluate(records, meteor=meteor)
    per_question = {}
    for row in result.per_question:
        per_question[str(row["question_id"])] = {k: v for k, v in row.items()
                                                 if k not in ("task", "question_id")}
    return result, per_question
