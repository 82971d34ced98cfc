"""Instruction examples from the official annotations: one builder per source.

A builder turns one annotation record into an :class:`InstructionSample` (question, answer,
task, referred objects), choosing its phrasing from ``variant``: None gives phrasing 0 (what
offline evaluation and a robot user send), any other value a deterministic pick. Records
whose objects are not in the scene are skipped (builders return None).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scene_llm_ros.data import annotations as ann
from scene_llm_ros.evaluation.questions import clean_description
from training import templates
from training.objects import ObjectBox


@dataclass(frozen=True)
class InstructionSample:
    """One training or evaluation item.

    :ivar sample_id: unique within a dataset (source, record key, repeat).
    :ivar task: the model task (``qa``, ``ground``, ``caption``, ``situated`` or ``""``).
    :ivar answer: target text; each referred object's name is followed by ``<ground>``.
    :ivar situation: SQA3D situation (task ``situated``).
    :ivar object_ids: the objects of the answer's ``<ground>`` tokens, in order.
    :ivar point_object_id: the object whose box centre is the prompt point (captioning).
    """

    sample_id: str
    scene_id: str
    source: str
    task: str
    question: str
    answer: str
    situation: str | None = None
    object_ids: tuple[int, ...] = ()
    point_object_id: int | None = None


Objects = dict[int, ObjectBox]


def _pick(options: Sequence[str], variant: str | None, *, canonical: int = 0) -> str:
    """The phrasing of training variant ``variant``, or option ``canonical`` outside training
    (``variant`` None)."""
    return options[canonical] if variant is None else \
        options[templates.choose(options, variant)]


def from_scanqa(record: ann.ScanQARecord, objects: Objects, variant: str | None
                ) -> InstructionSample | None:
    """A ``qa`` example answered with the first (most frequent) reference answer."""
    if not record.answers:
        return None
    question = _pick(templates.QA_PHRASINGS, variant).format(question=record.question.strip())
    return InstructionSample(f"scanqa:{record.question_id}", record.scene_id, "scanqa", "qa",
                             question, record.answers[0].strip())


def from_sqa3d(record: ann.SQA3DRecord, objects: Objects, variant: str | None
               ) -> InstructionSample | None:
    """A ``situated`` example; the situation phrasing varies over SQA3D's alternatives."""
    if not record.answers:
        return None
    situation = _pick([record.situation, *record.alternative_situation], variant)
    return InstructionSample(f"sqa3d:{record.question_id}", record.scene_id, "sqa3d",
                             "situated", record.question.strip(),
                             record.answers[0].answer.strip(), situation=situation.strip())


def from_scanrefer(record: ann.ScanReferRecord, objects: Objects, variant: str | None
                   ) -> InstructionSample | None:
    """A ``ground`` example: description in, ``name <ground>`` out."""
    object_id = int(record.object_id)
    if object_id not in objects:
        return None
    question = _pick(templates.GROUND_PHRASINGS, variant,
                     canonical=templates.GROUND_REQUEST).format(
        description=clean_description(record.description))
    return InstructionSample(
        f"scanrefer:{record.scene_id}|{record.object_id}|{record.ann_id}", record.scene_id,
        "scanrefer", "ground", question, templates.grounding_answer([record.object_name]),
        object_ids=(object_id,))


def from_multi3drefer(record: ann.Multi3DReferRecord, objects: Objects, variant: str | None
                      ) -> InstructionSample | None:
    """A ``ground`` example with zero, one or several ``<ground>`` tokens."""
    if any(object_id not in objects for object_id in record.object_ids):
        return None
    question = _pick(templates.MULTI_GROUND_PHRASINGS, variant).format(
        description=clean_description(record.description))
    names = [record.object_name] * len(record.object_ids)
    return InstructionSample(
        f"multi3drefer:{record.scene_id}|{record.ann_id}", record.scene_id, "multi3drefer",
        "ground", question, templates.grounding_answer(names),
        object_ids=tuple(record.object_ids))


def from_scan2cap(record: ann.ScanReferRecord, objects: Objects, variant: str | None
                  ) -> InstructionSample | None:
    """A ``caption`` example prompted by a point at the object's box centre.

    The caption grounds the object at its first mention, so the answer yields the box the
    Scan2Cap metrics need; captions that never name the object carry no ``<ground>``.
    """
    object_id = int(record.object_id)
    if object_id not in objects:
        return None
    caption, grounded = templates.grounded_caption(record.description, record.object_name)
    return InstructionSample(
        f"scan2cap:{record.scene_id}|{record.object_id}|{record.object_name}|{record.ann_id}",
        record.scene_id, "scan2cap", "caption", _pick(templates.CAPTION_PHRASINGS, variant),
        caption, object_ids=(object_id,) if grounded else (), point_object_id=object_id)


def from_scene(scene_id: str, objects: Objects, variant: str | None
               ) -> InstructionSample | None:
    """A scene caption listing the scene's objects by count (alignment stage)."""
    if not objects:
        return None
    answer = templates.scene_caption([objects[i].label for i in sorted(objects)])
    return InstructionSample(f"scene_caption:{scene_id}", scene_id, "scene_caption", "",
                             _pick(templates.SCENE_PHRASINGS, variant), answer)


Builder = Callable[[object, Objects, "str | None"], "InstructionSample | None"]
BUILDERS: dict[str, Builder] = {
    "scanqa": from_scanqa, "sqa3d": from_sqa3d, "scanrefer": from_scanrefer,
    "multi3drefer": from_multi3drefer, "scan2cap": from_scan2cap, "scene_caption": from_scene,
}


def record_scene_id(record) -> str:
    """The scene a record (or a bare scene id, for scene captions) is about."""
    return record if isinstance(record, str) else record.scene_id
