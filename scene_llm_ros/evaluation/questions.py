"""Question files of the replay evaluation: ScanQA, ScanRefer, SQA3D, Multi3DRefer and JSONL.

Every format becomes a list of :class:`EvalQuestion`: the text sent through ``AskScene``, the
``AskScene`` task, the benchmark whose official metrics score it, and what scoring needs
(reference answers, ground-truth boxes or the object ids to look them up in a GT scene).

The simple JSONL format has one object per line::

    {"id": "q1", "question": "what colour is the bed?", "task": "qa", "answers": ["brown"]}
    {"id": "g1", "question": "the chair by the desk", "task": "ground",
     "box": [1.2, 0.4, 0.45, 0.5, 0.5, 0.9]}

``task`` is ``qa``, ``ground``, ``situated``, ``caption``, ``""`` (the model decides) or a
benchmark name (``scanqa``, ``scanrefer``, ``multi3drefer``, ``sqa3d``). ``box`` is centre +
full size in metres in the bag's scene frame, or a list of such boxes (several targets: scored
as Multi3DRefer). Optional keys: ``object_id`` / ``object_ids`` (boxes from ``--gt-scene``),
``scene_id``, ``situation``. A question without answers or boxes is asked and reported but
not scored.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from scene_llm_ros.data import annotations as ann
from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.evaluation.errors import QuestionFileError

_LOG = logging.getLogger(__name__)

#: Question file formats :func:`load_questions` reads.
FORMATS = ("scanqa", "scanrefer", "multi3drefer", "sqa3d", "jsonl")
#: Benchmarks whose official metrics score a question ("" = not scored).
BENCHMARKS = ("scanqa", "scanrefer", "multi3drefer", "sqa3d")
#: How a ScanRefer description is asked. The bare description is also how Multi3DRefer asks
#: for every matching object, where "none" is a right answer; ScanRefer refers to exactly
#: one object, and saying so stopped the embedded model answering "none" to 7.5 % of them.
SINGLE_OBJECT_REQUEST = "Find {description}."


def clean_description(text: str) -> str:
    """A description without surrounding whitespace or a final full stop."""
    return text.strip().rstrip(".").strip()
#: AskScene tasks (srv/AskScene TASK_* plus the model's "situated").
ASK_TASKS = ("", "qa", "ground", "caption", "situated")
GROUNDING_BENCHMARKS = ("scanrefer", "multi3drefer")

# JSONL task -> (AskScene task, benchmark when references are present).
_JSONL_TASKS = {
    "": ("", "scanqa"), "qa": ("qa", "scanqa"), "scanqa": ("qa", "scanqa"),
    "situated": ("situated", "sqa3d"), "sqa3d": ("situated", "sqa3d"),
    "ground": ("ground", "scanrefer"), "scanrefer": ("ground", "scanrefer"),
    "multi3drefer": ("ground", "multi3drefer"), "caption": ("caption", ""),
}


@dataclass(frozen=True)
class EvalQuestion:
    """One question of an evaluation.

    :ivar id: unique within the question set.
    :ivar question: the text sent as ``AskScene.question`` (SQA3D: situation + question).
    :ivar ask_task: the ``AskScene.task``.
    :ivar benchmark: one of :data:`BENCHMARKS`, or "" when the question is not scored.
    :ivar references: reference answers (ScanQA, SQA3D).
    :ivar gt_boxes: float64 (M, 6) ground-truth boxes, centre + full size, metres, bag scene
        frame; None until known (they may come from a GT scene later).
    :ivar object_ids: ScanNet object ids of the targets (GT scene lookup), None when unknown.
    :ivar unique: ScanRefer: the target is the only object of its class in the scene.
    :ivar eval_type: Multi3DRefer evaluation type.
    :ivar scene_id: the scene the question is about, None when the file does not say.
    :ivar raw_question: the question without situation (SQA3D question types, ScanQA
        counting accuracy).
    """

    id: str
    question: str
    ask_task: str
    benchmark: str = ""
    references: tuple[str, ...] = ()
    gt_boxes: np.ndarray | None = None
    object_ids: tuple[int, ...] | None = None
    unique: bool | None = None
    eval_type: str | None = None
    scene_id: str | None = None
    raw_question: str | None = None

    @property
    def grounding(self) -> bool:
        """Whether the answer is judged by its boxes (and gets a grounding picture)."""
        return self.benchmark in GROUNDING_BENCHMARKS or self.ask_task == "ground"


@dataclass(frozen=True)
class QuestionSet:
    """The questions of one file, restricted to one scene.

    :ivar format: the file format that was read (one of :data:`FORMATS`).
    :ivar scene_id: the scene kept, None when the file names no scene.
    :ivar skipped_other_scenes: questions of other scenes left out.
    """

    path: Path
    format: str
    questions: list[EvalQuestion]
    scene_id: str | None
    skipped_other_scenes: int = 0


def detect_format(path: str | Path) -> str:
    """The format of a question file, from its name and first record.

    :raises QuestionFileError: when the file is unreadable or matches no format.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        return "jsonl"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"{path}: cannot read the question file: {exc}") from exc
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return "jsonl"  # several objects, one per line
        if isinstance(data, dict) and "questions" in data:
            return "sqa3d"
        if isinstance(data, dict) and "annotations" in data:
            raise QuestionFileError(f"{path} is an SQA3D annotations file; pass the questions "
                                    "file (v1_balanced_questions_*.json) as --questions")
        return "jsonl"
    if not stripped.startswith("["):
        raise QuestionFileError(f"{path}: not JSON or JSONL (starts with {stripped[:20]!r})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QuestionFileError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    first = data[0] if data and isinstance(data[0], dict) else {}
    if {"eval_type", "object_ids", "description"} <= first.keys():
        return "multi3drefer"
    if {"description", "object_id", "ann_id"} <= first.keys():
        return "scanrefer"
    if {"question_id", "question"} <= first.keys():
        return "scanqa"
    raise QuestionFileError(f"{path}: cannot tell the format from the first record "
                            f"(keys {sorted(first)}); expected ScanQA, ScanRefer, Multi3DRefer, "
                            "SQA3D or JSONL, or pass --questions-format")


def sqa3d_annotations_path(questions_path: str | Path) -> Path:
    """SQA3D's annotations file next to its questions file (the official names)."""
    questions_path = Path(questions_path)
    name = questions_path.name.replace("_questions_", "_sqa_annotations_")
    return questions_path.with_name(name)


def _unique_ids(questions: list[EvalQuestion]) -> list[EvalQuestion]:
    """Make ids unique by suffixing repeats with ``#k`` (official files may repeat ann ids)."""
    seen: dict[str, int] = {}
    out = []
    for q in questions:
        count = seen.get(q.id, 0)
        seen[q.id] = count + 1
        out.append(q if count == 0 else replace(q, id=f"{q.id}#{count}"))
    return out


def _from_scanqa(path: Path) -> list[EvalQuestion]:
    questions = []
    for record in ann.read_scanqa(path):
        scored = bool(record.answers)
        questions.append(EvalQuestion(
            id=record.question_id, question=record.question, ask_task="qa",
            benchmark="scanqa" if scored else "", references=tuple(record.answers or ()),
            object_ids=tuple(record.object_ids) if record.object_ids else None,
            scene_id=record.scene_id, raw_question=record.question))
    return questions


def _from_scanrefer(path: Path) -> list[EvalQuestion]:
    questions = []
    for record in ann.read_scanrefer(path):
        try:
            object_id = int(record.object_id)
        except ValueError as exc:
            raise QuestionFileError(f"{path}: ScanRefer object_id {record.object_id!r} of "
                                    f"{record.scene_id} ann {record.ann_id} is not an "
                                    "integer") from exc
        # Some releases carry the unique/multiple split; otherwise the GT scene decides it.
        split = record.extra.get("eval_type")
        unique = {"unique": True, "multiple": False}.get(split) if isinstance(split, str) \
            else None
        questions.append(EvalQuestion(
            id=f"{record.scene_id}|{record.object_id}|{record.ann_id}",
            question=SINGLE_OBJECT_REQUEST.format(
                description=clean_description(record.description)),
            ask_task="ground", benchmark="scanrefer",
            object_ids=(object_id,), unique=unique, scene_id=record.scene_id))
    return questions


def _from_multi3drefer(path: Path) -> list[EvalQuestion]:
    return [EvalQuestion(id=f"{r.scene_id}|{r.ann_id}",
                         question=clean_description(r.description),
                         ask_task="ground", benchmark="multi3drefer",
                         object_ids=tuple(r.object_ids), eval_type=r.eval_type,
                         scene_id=r.scene_id)
            for r in ann.read_multi3drefer(path)]


def _from_sqa3d(path: Path, annotations: Path | None) -> list[EvalQuestion]:
    annotations = annotations or sqa3d_annotations_path(path)
    if not annotations.is_file():
        raise QuestionFileError(f"{path}: SQA3D questions need their annotations file; "
                                f"{annotations} does not exist (pass --sqa3d-annotations)")
    questions = []
    for record in ann.read_sqa3d(path, annotations):
        # AskScene has no situation field: state it in the question as the model's prompt
        # does ("Situation: ..." then "Question: ..."), so the tokens are the trained ones.
        text = f"Situation: {record.situation}\nQuestion: {record.question}"
        questions.append(EvalQuestion(
            id=str(record.question_id), question=text, ask_task="situated", benchmark="sqa3d",
            references=tuple(a.answer for a in record.answers), scene_id=record.scene_id,
            raw_question=record.question))
    return questions


def _boxes_field(value: Any, where: str) -> np.ndarray:
    try:
        boxes = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QuestionFileError(f"{where}: 'box' must be 6 numbers or a list of such, "
                                f"got {value!r}") from exc
    if boxes.shape == (6,):
        boxes = boxes.reshape(1, 6)
    if boxes.ndim != 2 or boxes.shape[1] != 6 or not np.all(np.isfinite(boxes)) \
            or np.any(boxes[:, 3:] < 0):
        raise QuestionFileError(f"{where}: 'box' must be [cx, cy, cz, sx, sy, sz] (metres, "
                                f"sizes >= 0) or a list of such, got {value!r}")
    return boxes


def _jsonl_question(obj: Any, where: str) -> EvalQuestion:
    if not isinstance(obj, dict):
        raise QuestionFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in ("id", "question"):
        if key not in obj:
            raise QuestionFileError(f"{where}: missing key {key!r}")
    if not isinstance(obj["question"], str) or not obj["question"].strip():
        raise QuestionFileError(f"{where}: 'question' must be a non-empty string")
    task = obj.get("task", "")
    if task not in _JSONL_TASKS:
        raise QuestionFileError(f"{where}: unknown task {task!r}; one of "
                                f"{sorted(_JSONL_TASKS)}")
    ask_task, benchmark = _JSONL_TASKS[task]
    answers = obj.get("answers")
    if isinstance(answers, str):
        answers = [answers]
    if answers is not None and (not isinstance(answers, list)
                                or not all(isinstance(a, str) for a in answers)):
        raise QuestionFileError(f"{where}: 'answers' must be a list of strings")
    boxes = _boxes_field(obj["box"], where) if obj.get("box") is not None else None
    object_ids = obj.get("object_ids", [obj["object_id"]] if "object_id" in obj else None)
    if object_ids is not None:
        try:
            object_ids = tuple(int(i) for i in object_ids)
        except (TypeError, ValueError) as exc:
            raise QuestionFileError(f"{where}: object ids must be integers, got "
                                    f"{object_ids!r}") from exc
    if ask_task == "ground":
        many = (boxes is not None and len(boxes) != 1) or (object_ids is not None
                                                           and len(object_ids) != 1)
        if task == "ground" and many:
            benchmark = "multi3drefer"
        if boxes is None and object_ids is None:
            benchmark = ""  # nothing to score against
    elif not answers:
        benchmark = ""
    question = obj["question"]
    raw = question
    if obj.get("situation"):
        question = f"Situation: {obj['situation']}\nQuestion: {question}"
    return EvalQuestion(id=str(obj["id"]), question=question, ask_task=ask_task,
                        benchmark=benchmark, references=tuple(answers or ()), gt_boxes=boxes,
                        object_ids=object_ids, eval_type=obj.get("eval_type"),
                        scene_id=obj.get("scene_id"), raw_question=raw)


def _from_jsonl(path: Path) -> list[EvalQuestion]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"{path}: cannot read the question file: {exc}") from exc
    questions, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{where}: invalid JSON: {exc.msg}") from exc
        question = _jsonl_question(obj, where)
        if question.id in seen:
            raise QuestionFileError(f"{where}: id {question.id!r} appears more than once")
        seen.add(question.id)
        questions.append(question)
    return questions


def load_questions(path: str | Path, *, fmt: str | None = None,
                   sqa3d_annotations: str | Path | None = None,
                   scene_id: str | None = None, default_scene: str | None = None,
                   limit: int | None = None) -> QuestionSet:
    """Read a question file and keep the questions of one scene.

    :param path: ScanQA, ScanRefer, Multi3DRefer or SQA3D questions file in the official format,
        or a JSONL file (see the module docstring).
    :param fmt: one of :data:`FORMATS`; None detects it (:func:`detect_format`).
    :param sqa3d_annotations: SQA3D annotations file (default: next to the questions file).
    :param scene_id: keep only this scene's questions. When None and the file covers several
        scenes, it is an error (a bag holds one scene).
    :param default_scene: the scene to keep when ``scene_id`` is None and the file covers
        several scenes (e.g. the ``--gt-scene`` folder's name).
    :param limit: keep at most this many questions (after the scene filter).
    :return: the questions in file order.
    :raises QuestionFileError: on an unreadable or malformed file, an unknown format, several
        scenes without ``scene_id``, or no question left.
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise QuestionFileError(f"unknown question format {fmt!r}; one of {FORMATS}")
    readers = {"scanqa": _from_scanqa, "scanrefer": _from_scanrefer,
               "multi3drefer": _from_multi3drefer, "jsonl": _from_jsonl,
               "sqa3d": lambda p: _from_sqa3d(p, Path(sqa3d_annotations)
                                              if sqa3d_annotations else None)}
    try:
        questions = readers[fmt](path)
    except QuestionFileError:
        raise
    except DataFormatError as exc:  # the annotation readers name file, record and field
        raise QuestionFileError(f"{exc} (read as {fmt})") from exc
    questions = _unique_ids(questions)
    if scene_id is None and default_scene is not None \
            and len({q.scene_id for q in questions if q.scene_id}) > 1:
        scene_id = default_scene
    questions, kept_scene, skipped = _one_scene(path, questions, scene_id)
    if limit is not None:
        questions = questions[:max(0, limit)]
    if not questions:
        raise QuestionFileError(f"{path}: no questions to ask")
    _LOG.info("%s: %d %s questions%s", path, len(questions), fmt,
              f" of {kept_scene}" if kept_scene else "")
    return QuestionSet(path, fmt, questions, kept_scene, skipped)


def _one_scene(path: Path, questions: Sequence[EvalQuestion], scene_id: str | None
               ) -> tuple[list[EvalQuestion], str | None, int]:
    scenes = sorted({q.scene_id for q in questions if q.scene_id})
    if scene_id is not None:
        if scenes and scene_id not in scenes:
            shown = ", ".join(scenes[:10]) + (" ..." if len(scenes) > 10 else "")
            raise QuestionFileError(f"{path}: no questions of scene {scene_id!r}; its scenes: "
                                    f"{shown}")
        kept = [q for q in questions if q.scene_id in (None, scene_id)]
        return kept, scene_id, len(questions) - len(kept)
    if len(scenes) > 1:
        shown = ", ".join(scenes[:10]) + (" ..." if len(scenes) > 10 else "")
        raise QuestionFileError(f"{path} has questions of {len(scenes)} scenes ({shown}); a bag "
                                "shows one: choose it with --scene-id")
    return list(questions), scenes[0] if scenes else None, 0
