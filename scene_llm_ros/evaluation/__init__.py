"""Replay evaluation without ROS: question files, ground-truth boxes, replay plans, scoring,
report and pictures. The ROS side (publishers, nodes, AskScene client) is
:mod:`scene_llm_ros.nodes.replay`; the command is ``scene-llm evaluate``."""
from __future__ import annotations

from pathlib import Path

from scene_llm_ros.embedded import EMBEDDED_MODEL_DIR
from scene_llm_ros.evaluation.answers import AskResult, PredictedObject, ReferenceCamera
from scene_llm_ros.evaluation.errors import GroundTruthError, QuestionFileError, ReplayError
from scene_llm_ros.evaluation.ground_truth import (
    SceneBoxes,
    attach_ground_truth,
    read_transform,
    scene_boxes,
)
from scene_llm_ros.evaluation.questions import (
    FORMATS,
    EvalQuestion,
    QuestionSet,
    detect_format,
    load_questions,
)
from scene_llm_ros.evaluation.replay_plan import (
    ReplayFrame,
    ReplayPlan,
    colour_images_at,
    iter_replay_frames,
    plan_replay,
)
from scene_llm_ros.evaluation.report import REPORT_KEYS, build_report, write_report
from scene_llm_ros.evaluation.scoring import score
from scene_llm_ros.fusion.encoders import MODEL_CONFIG_NAME


def default_checkpoint() -> Path | None:
    """The model evaluated when no ``--checkpoint`` is given: the embedded default model, or
    None when the package was installed without it."""
    return EMBEDDED_MODEL_DIR if (EMBEDDED_MODEL_DIR / MODEL_CONFIG_NAME).is_file() else None


__all__ = [
    "FORMATS", "REPORT_KEYS", "AskResult", "EvalQuestion", "GroundTruthError",
    "PredictedObject", "QuestionFileError", "QuestionSet", "ReferenceCamera", "ReplayError",
    "ReplayFrame", "ReplayPlan", "SceneBoxes", "attach_ground_truth", "build_report",
    "colour_images_at", "default_checkpoint", "detect_format", "iter_replay_frames",
    "load_questions", "plan_replay", "read_transform", "scene_boxes", "score", "write_report",
]
