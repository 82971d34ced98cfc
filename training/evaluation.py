"""Offline evaluation: the model answers a split's questions, the official metrics score them.

Questions are phrased by the same builders as training with phrasing 0 (the plain request a
user sends), scenes are fused by the same cache, and answers come from ``SceneLlm.answer``,
the inference node's call; predicted boxes are refined on the fused surface as the inference
engine refines them (``refine=False`` scores the model's raw boxes). Each task becomes
:class:`~scene_llm_ros.metrics.EvalRecord` items for :func:`scene_llm_ros.metrics.evaluate`.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from scene_llm_ros.data import annotations as ann
from scene_llm_ros.grounding import SnapshotGrounder
from scene_llm_ros.inference.answer_grounding import ground_answer
from scene_llm_ros.metrics import EvalRecord, scanqa_eval_records, sqa3d_eval_records
from scene_llm_ros.model import Answer, SceneLlm
from training import examples
from training.dataset import SplitScenes
from training.scene_cache import SceneTokenCache
from training.sources import read_source, source_available

logger = logging.getLogger(__name__)

#: Tasks in the order they are evaluated (metric task names).
EVAL_TASKS = ("scanqa", "sqa3d", "scanrefer", "multi3drefer", "scan2cap")


@dataclass
class EvalRun:
    """Records to score, the raw predictions and why items were left out."""

    records: list[EvalRecord] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _boxes(answer: Answer) -> np.ndarray:
    """float64 (N, 6) centre + size of the grounded objects, in ``<ground>`` order."""
    if not answer.objects:
        return np.zeros((0, 6))
    return np.stack([np.concatenate([o.center, o.size]) for o in answer.objects])


class OfflineEvaluator:
    """Answers questions of one split with a model.

    :param model: the model, in eval mode.
    :param scenes: the split's scenes.
    :param cache: scene tokens (same encoder and fusion settings as training).
    :param max_new_tokens: answer length limit (None: the model's default).
    :param refine: refine boxes on the fused surface, as the inference engine does.
    """

    def __init__(self, model: SceneLlm, scenes: SplitScenes, cache: SceneTokenCache, *,
                 max_new_tokens: int | None = None, refine: bool = True) -> None:
        self.model = model
        self.scenes = scenes
        self.cache = cache
        self.max_new_tokens = max_new_tokens
        self.refine = refine
        self._snapshots: dict = {}
        self._grounders: dict[str, SnapshotGrounder] = {}

    def _ask(self, sample: examples.InstructionSample, run: EvalRun) -> Answer:
        if sample.scene_id not in self._snapshots:
            self._snapshots[sample.scene_id] = self.cache.get(
                self.scenes.scene_dirs[sample.scene_id])
        objects = self.scenes.objects(sample.scene_id)
        points = (None if sample.point_object_id is None
                  else objects[sample.point_object_id].center[None, :])
        answer = self.model.answer(self._snapshots[sample.scene_id], sample.question,
                                   task=sample.task, prompt_points=points,
                                   situation=sample.situation,
                                   max_new_tokens=self.max_new_tokens,
                                   grounder=self._grounder(sample.scene_id))
        if self.refine:
            answer = self._refined(answer, sample)
        run.predictions.append({"task": sample.source, "id": sample.sample_id,
                                "scene_id": sample.scene_id, "question": sample.question,
                                "situation": sample.situation, "answer": answer.text,
                                "boxes": _boxes(answer).round(4).tolist()})
        return answer

    def _grounder(self, scene_id: str) -> SnapshotGrounder:
        """One grounder per scene: its segments serve the object tokens and the grounding."""
        if scene_id not in self._grounders:
            self._grounders[scene_id] = SnapshotGrounder(self._snapshots[scene_id])
        return self._grounders[scene_id]

    def _refined(self, answer: Answer, sample: examples.InstructionSample) -> Answer:
        """The answer with each box grounded on the fused surface (InferenceEngine's step)."""
        snapshot = self._snapshots[sample.scene_id]
        if not answer.objects or not len(snapshot.points):
            return answer
        grounded = ground_answer(self.model, self._grounder(sample.scene_id), answer.objects,
                                 question=sample.question, task=sample.task)
        objects = [dataclasses.replace(obj, label=label, center=geometry.center,
                                       size=geometry.size)
                   for obj, (label, geometry) in zip(answer.objects, grounded, strict=True)]
        return dataclasses.replace(answer, objects=objects)

    def _usable(self, task: str, records: list, limit: int | None, run: EvalRun,
                build: Callable) -> list[tuple]:
        """(record, phrasing-0 sample) pairs in the split's scenes, at most ``limit``."""
        pairs = []
        for record in records:
            if record.scene_id not in self.scenes.scene_dirs:
                continue
            sample = build(record, self.scenes.objects(record.scene_id), None)
            if sample is not None:
                pairs.append((record, sample))
        skipped = sum(r.scene_id in self.scenes.scene_dirs for r in records) - len(pairs)
        if skipped:
            run.notes.append(f"{task}: {skipped} items left out (no reference answer or "
                             f"object not in the scene)")
        return pairs[:limit] if limit is not None else pairs

    def evaluate_task(self, task: str, records: list, run: EvalRun, *,
                      limit: int | None = None) -> None:
        """Answer every usable item of ``task`` and add its records to ``run``."""
        handlers = {"scanqa": self._scanqa, "sqa3d": self._sqa3d,
                    "scanrefer": self._scanrefer, "multi3drefer": self._multi3drefer,
                    "scan2cap": self._scan2cap}
        handlers[task](records, run, limit)

    def _progress(self, pairs: list, task: str):
        return tqdm(pairs, desc=f"eval {task}", unit="q", leave=False)

    def _scanqa(self, records, run, limit) -> None:
        pairs = self._usable("scanqa", records, limit, run, examples.from_scanqa)
        answers = {r.question_id: self._ask(s, run).text
                   for r, s in self._progress(pairs, "scanqa")}
        if pairs:
            run.records += scanqa_eval_records([r for r, _ in pairs], answers)

    def _sqa3d(self, records, run, limit) -> None:
        pairs = self._usable("sqa3d", records, limit, run, examples.from_sqa3d)
        answers = {str(r.question_id): self._ask(s, run).text
                   for r, s in self._progress(pairs, "sqa3d")}
        if pairs:
            run.records += sqa3d_eval_records([r for r, _ in pairs], answers)

    def _scanrefer(self, records, run, limit) -> None:
        for record, sample in self._progress(
                self._usable("scanrefer", records, limit, run, examples.from_scanrefer),
                "scanrefer"):
            objects = self.scenes.objects(record.scene_id)
            target = objects[int(record.object_id)]
            if "eval_type" in record.extra:
                unique = record.extra["eval_type"] == "unique"
            else:  # ScanRefer: unique when no other object of the scene shares the class
                unique = sum(o.label == target.label for o in objects.values()) == 1
            boxes = _boxes(self._ask(sample, run))
            run.records.append(EvalRecord(
                "scanrefer", f"{record.scene_id}|{record.object_id}|{record.ann_id}",
                pred_boxes=boxes[:1], gt_boxes=target.box[None, :], unique=unique))

    def _multi3drefer(self, records, run, limit) -> None:
        pairs = self._usable("multi3drefer", records, limit, run, examples.from_multi3drefer)
        for index, (record, sample) in enumerate(self._progress(pairs, "multi3drefer")):
            objects = self.scenes.objects(record.scene_id)
            gt = (np.stack([objects[i].box for i in record.object_ids]) if record.object_ids
                  else np.zeros((0, 6)))
            # ann_id alone is not guaranteed unique in a scene; the position keeps ids unique.
            run.records.append(EvalRecord(
                "multi3drefer", f"{record.scene_id}|{record.ann_id}#{index}",
                pred_boxes=_boxes(self._ask(sample, run)), gt_boxes=gt,
                eval_type=record.eval_type))

    def _scan2cap(self, records, run, limit) -> None:
        # One caption per object, scored against all of the object's reference captions.
        references = ann.scan2cap_references(
            [r for r in records if r.scene_id in self.scenes.scene_dirs])
        first = {}
        for record in records:
            first.setdefault(f"{record.scene_id}|{record.object_id}|{record.object_name}",
                             record)
        for record, sample in self._progress(
                self._usable("scan2cap", list(first.values()), limit, run,
                             examples.from_scan2cap), "scan2cap"):
            key = f"{record.scene_id}|{record.object_id}|{record.object_name}"
            target = self.scenes.objects(record.scene_id)[int(record.object_id)]
            answer = self._ask(sample, run)
            boxes = _boxes(answer)
            # Scan2Cap scores a caption only through the box it belongs to; without one the
            # object counts as missed, as an unmatched detection does officially.
            run.records.append(EvalRecord(
                "scan2cap", key, prediction=answer.text if len(boxes) else None,
                references=tuple(references[key]), pred_boxes=boxes[:1] if len(boxes) else None,
                gt_boxes=target.box[None, :]))


def run_offline_evaluation(evaluator: OfflineEvaluator, *, annotations_dir, split: str,
                           tasks: tuple[str, ...] = EVAL_TASKS,
                           limit: int | None = None) -> EvalRun:
    """Evaluate ``tasks`` whose annotation files exist for ``split``.

    :param limit: at most this many items per task (None: all).
    :raises ValueError: for a task outside :data:`EVAL_TASKS`.
    :raises DataFormatError: when an annotation file exists but is malformed.
    """
    unknown = sorted(set(tasks) - set(EVAL_TASKS))
    if unknown:
        raise ValueError(f"unknown evaluation tasks {unknown}; expected some of "
                         f"{list(EVAL_TASKS)}")
    run = EvalRun()
    for task in tasks:
        if not source_available(annotations_dir, task, split):
            run.notes.append(f"{task}: not evaluated (no {split} annotation files)")
            logger.warning("%s: no %s annotation files under %s", task, split, annotations_dir)
            continue
        evaluator.evaluate_task(task, read_source(annotations_dir, task, split), run,
                                limit=limit)
    return run
