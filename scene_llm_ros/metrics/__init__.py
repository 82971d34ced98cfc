"""Official metrics of ScanRefer, Multi3DRefer, ScanQA, SQA3D and Scan2Cap (no ROS).

``evaluate`` scores a list of ``EvalRecord``; ``write_report`` writes report.json and report.md.
The caption metrics (BLEU, ROUGE-L, CIDEr-D) and the PTB tokeniser are native Python equal to
pycocoevalcap's; METEOR runs pycocoevalcap's Java scorer.
"""
from scene_llm_ros.metrics.evaluate import EvaluationResult, evaluate
from scene_llm_ros.metrics.records import (
    EvalRecord,
    MetricInputError,
    scanqa_eval_records,
    sqa3d_eval_records,
)
from scene_llm_ros.metrics.report import write_report

__all__ = ["EvalRecord", "EvaluationResult", "MetricInputError", "evaluate",
           "scanqa_eval_records", "sqa3d_eval_records", "write_report"]
