"""Train a checkpoint's segment answerer on ScanQA and SQA3D (the last stage).

The answerer (:mod:`scene_llm_ros.model.segment_answerer`) starts as a copy of the
checkpoint's segment listener and learns to classify each question into the answers that
occur at least ``min_answer_count`` times in the training split: cross-entropy against all
of a question's reference answers in that vocabulary, plus, for ScanQA questions whose object
has an overlapping segment, cross-entropy of the attention against that segment (ScanQA's
object localisation loss), and likewise of the anchor attention against the segment of the
question's second object when it is of another class (the nightstand the lamp stands on).
Segments are computed from the cached fused scenes exactly as the inference node computes
them. The rest of the checkpoint is untouched; the output is the
same checkpoint with ``segment_answerer/`` added::

    scene-llm train-answerer --config training/configs/segment_answerer.yaml \\
        --checkpoint runs/listener/final --data data/synth300 --out runs/answerer
"""
from __future__ import annotations

import collections
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from scene_llm_ros.embedded import resolve_model_path
from scene_llm_ros.metrics.text import clean_answer
from scene_llm_ros.model import SceneLlm
from scene_llm_ros.model.segment_answerer import SegmentAnswerer, answerer_question
from training import examples, templates
from training.checkpoints import TENSORBOARD_DIR, TRAINING_JSON
from training.dataset import SplitScenes
from training.epoch_stage import (
    EpochOptim,
    SegmentStageData,
    load_epoch_stage_config,
    train_in_epochs,
)
from training.errors import EmptyDatasetError, TrainingConfigError
from training.scene_cache import SceneTokenCache
from training.scene_segments import SceneSegments, checkpoint_scene_cache
from training.sources import read_source, source_available

#: The checkpoint with the answerer inside the run directory, and the run's summary.
FINAL_DIR = "final"
SUMMARY_JSON = "answerer.json"
SOURCES = ("scanqa", "sqa3d")
# Phrasings drawn per record; duplicates collapse (SQA3D varies its situation, ScanQA the
# instruction around the question).
_VARIANTS = 8


@dataclass
class AnswererData(SegmentStageData):
    """Questions to learn from.

    :ivar sources: which of ``scanqa`` and ``sqa3d`` to learn from.
    :ivar min_answer_count: answers rarer than this in the training split are not in the
        vocabulary (questions with none of their answers in it teach nothing).
    :ivar min_focus_iou: a ScanQA object whose best segment overlaps it less gives no
        attention target.
    """

    sources: list[str] = field(default_factory=lambda: list(SOURCES))
    min_answer_count: int = 2
    min_focus_iou: float = 0.25

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown or not self.sources:
            raise TrainingConfigError(f"data.sources must be a non-empty subset of "
                                      f"{list(SOURCES)}, got {self.sources}")
        if self.min_answer_count < 1:
            raise TrainingConfigError("data.min_answer_count must be >= 1")


@dataclass
class AnswererOptim(EpochOptim):
    """The shared epoch schedule, a gradient-norm clip and the attention loss weight."""

    lr: float = 1e-3
    epochs: int = 12
    grad_clip: float = 1.0
    focus_weight: float = 0.5


@dataclass
class AnswererTrainingConfig:
    """The whole run (``training/configs/segment_answerer.yaml``)."""

    seed: int = 0
    data: AnswererData = field(default_factory=AnswererData)
    optim: AnswererOptim = field(default_factory=AnswererOptim)
    out_dir: str = "runs/answerer"
    log_every: int = 25


_SECTIONS = {"data": AnswererData, "optim": AnswererOptim}


def load_answerer_config(path: str | Path, **overrides: Any) -> AnswererTrainingConfig:
    """Read and validate the YAML file; ``overrides`` (``root``, ``out_dir``, ``epochs``)
    replace its values when not None.

    :raises TrainingConfigError: naming the problem.
    """
    return load_epoch_stage_config(path, AnswererTrainingConfig, _SECTIONS, **overrides)


@dataclass(frozen=True)
class QuestionItem:
    """One question over one scene's segments.

    :ivar scene_id: the scene.
    :ivar source: ``scanqa`` or ``sqa3d``.
    :ivar phrasings: token ids of the question in each training phrasing; the first is how
        evaluation and users ask it.
    :ivar answers: vocabulary indices of its reference answers.
    :ivar focus: index of the segment the question is about, -1 when unknown.
    :ivar anchor: index of the segment of the other object the question involves, -1 when
        none or unknown.
    """

    scene_id: str
    source: str
    phrasings: tuple[tuple[int, ...], ...]
    answers: tuple[int, ...]
    focus: int
    anchor: int


def _records(data: AnswererData, split: str) -> list[tuple[str, Any]]:
    return [(source, record) for source in data.sources
            if source_available(data.annotations_path, source, split)
            for record in read_source(data.annotations_path, source, split)]


def _reference_answers(source: str, record) -> list[str]:
    if source == "scanqa":
        return list(record.answers or [])
    return [answer.answer for answer in record.answers]


def answer_vocabulary(data: AnswererData) -> list[str]:
    """The training split's answers seen at least ``min_answer_count`` times, most frequent
    first (ties alphabetically).

    Answers that are equal under the benchmarks' normalisation (:func:`clean_answer`: "1"
    and "one", "the door" and "door") count as one, once per question, written in their
    most common form.
    """
    counts: collections.Counter = collections.Counter()
    forms: dict[str, collections.Counter] = {}
    for source, record in _records(data, data.split):
        keys = set()
        # Sorted: the most common form of an answer is then the alphabetically first among
        # equals in every run, whatever the string hash seed.
        for answer in sorted({a.strip() for a in _reference_answers(source, record)}):
            key = clean_answer(answer)
            if key:
                keys.add(key)
                forms.setdefault(key, collections.Counter())[answer] += 1
        counts.update(keys)
    kept = sorted((key for key, n in counts.items() if n >= data.min_answer_count),
                  key=lambda key: (-counts[key], key))
    return [forms[key].most_common(1)[0][0] for key in kept]


class QuestionData:
    """The questions and segment features of one split."""

    def __init__(self, model: SceneLlm, scenes: SplitScenes, cache: SceneTokenCache,
                 data: AnswererData, split: str, *, answers: list[str],
                 max_segments: int, max_question_tokens: int) -> None:
        self.items: list[QuestionItem] = []
        #: Questions none of whose answers is in the vocabulary.
        self.unanswerable = 0
        index = {clean_answer(answer): i for i, answer in enumerate(answers)}
        by_scene: dict[str, list] = {}
        for source, record in _records(data, split):
            if record.scene_id in scenes.scene_dirs:
                by_scene.setdefault(record.scene_id, []).append((source, record))
        self.segments = SceneSegments(scenes, cache, sorted(by_scene)[:data.max_scenes],
                                      max_segments=max_segments, split=split)
        self.class_names = self.segments.class_names
        for scene_id in self.segments.features:
            objects = scenes.objects(scene_id)
            for source, record in by_scene[scene_id]:
                targets = sorted({index[a] for a in map(clean_answer,
                                                        _reference_answers(source, record))
                                  if a in index})
                if not targets:
                    self.unanswerable += 1
                    continue
                texts = _phrasings(source, record, objects)
                if not texts:
                    continue
                self.items.append(QuestionItem(
                    scene_id, source,
                    tuple(tuple(model.question_ids(text)[:max_question_tokens])
                          for text in texts),
                    tuple(targets), *self._attention_targets(source, record, objects,
                                                             data.min_focus_iou)))

    def _attention_targets(self, source: str, record, objects: dict, min_iou: float
                           ) -> tuple[int, int]:
        """The segments of the question's object and of its anchor: ScanQA's first object
        id, and its second when that is of another class (several ids of one class are the
        objects a count counts)."""
        ids = [i for i in (record.object_ids or []) if i in objects] if source == "scanqa" \
            else []
        focus = self._best_segment(record.scene_id, objects[ids[0]], min_iou) if ids else -1
        anchor = -1
        if len(ids) > 1 and objects[ids[1]].label != objects[ids[0]].label:
            anchor = self._best_segment(record.scene_id, objects[ids[1]], min_iou)
        return focus, anchor if anchor != focus else -1

    def _best_segment(self, scene_id: str, box, min_iou: float) -> int:
        ious = self.segments.ious(scene_id, box)
        return int(np.argmax(ious)) if ious.max() >= min_iou else -1

    def feature_rows(self) -> torch.Tensor:
        """float (N, F) every segment's features and relative colours, side by side."""
        return torch.from_numpy(np.concatenate([
            np.concatenate([scene.objects, scene.colours], axis=1)
            for scene in self.segments.features.values()]))

    def collate(self, items: list[QuestionItem], phrasing: list[int], answers: int
                ) -> tuple[torch.Tensor, ...]:
        """Padded (question ids, segments, pairs, segment mask, colours, answer
        distribution, focus, anchor) of a batch, each item asked in phrasing ``phrasing[i]``
        (modulo its phrasings)."""
        ids, segments, pairs, mask, colours = self.segments.collate(
            [item.scene_id for item in items],
            [item.phrasings[k % len(item.phrasings)]
             for item, k in zip(items, phrasing, strict=True)])
        target = torch.zeros(len(items), answers)
        for row, item in enumerate(items):
            target[row, list(item.answers)] = 1.0 / len(item.answers)
        focus = torch.tensor([item.focus for item in items])
        anchor = torch.tensor([item.anchor for item in items])
        return ids, segments, pairs, mask, colours, target, focus, anchor


def _phrasings(source: str, record, objects: dict) -> list[str]:
    """The text the answerer reads for the record in each phrasing, the evaluation one
    first."""
    if source == "scanqa":
        build, count = examples.from_scanqa, len(templates.QA_PHRASINGS)
    else:
        build, count = examples.from_sqa3d, _VARIANTS
    texts = []
    for variant in [None, *(f"answerer-{k}" for k in range(2 * count))]:
        sample = build(record, objects, variant)
        if sample is None:
            return []
        text = answerer_question(sample.question, sample.situation)
        if text not in texts:
            texts.append(text)
    return texts


@torch.no_grad()
def answer_accuracy(answerer: SegmentAnswerer, data: QuestionData, *,
                    batch_size: int = 64) -> dict[str, float]:
    """Exact match of the top answer with any reference answer in the vocabulary, per
    source, asked in the evaluation phrasing; ``focus`` (``anchor``) is how often the
    attention picks the question's object (anchor) segment, over questions that have one."""
    answerer.eval()
    hits: dict[str, list[bool]] = {}
    attention_hits: dict[str, list[bool]] = {"focus": [], "anchor": []}
    answers = len(answerer.config.answers)
    for start in range(0, len(data.items), batch_size):
        chunk = data.items[start:start + batch_size]
        ids, segments, pairs, mask, colours, target, focus, anchor = data.collate(
            chunk, [0] * len(chunk), answers)
        logits, attention, anchor_attention = answerer(ids, segments, pairs, mask, colours)
        right = target.gather(1, logits.argmax(dim=-1, keepdim=True))[:, 0] > 0
        for item, hit in zip(chunk, right.tolist(), strict=True):
            hits.setdefault(item.source, []).append(hit)
        for name, logits_of, target_of in (("focus", attention, focus),
                                           ("anchor", anchor_attention, anchor)):
            known = target_of >= 0
            attention_hits[name] += (logits_of.argmax(dim=-1)[known]
                                     == target_of[known]).tolist()
    answerer.train()
    metrics: dict[str, float] = {"items": len(data.items)}
    metrics.update({f"{source}_em": float(np.mean(v)) for source, v in sorted(hits.items())})
    for name, hits_of in attention_hits.items():
        if hits_of:
            metrics[name] = float(np.mean(hits_of))
    return metrics


def _attention_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of attention logits against target segments (-1: none)."""
    if (target >= 0).any():
        return F.cross_entropy(logits, target, ignore_index=-1)
    return logits.sum() * 0.0


def train_answerer(config: AnswererTrainingConfig, checkpoint_dir: str | Path) -> dict:
    """Train the answerer of the checkpoint; write ``OUT/final/`` (the checkpoint with the
    answerer), ``OUT/answerer.json`` (metrics) and TensorBoard logs.

    :raises TrainingConfigError: when the checkpoint has no segment listener or no
        ``training.json``.
    :raises EmptyDatasetError: when the split has no answerable question.
    """
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    checkpoint_dir = resolve_model_path(checkpoint_dir)
    model = SceneLlm.from_pretrained(checkpoint_dir)
    listener = model.segment_listener
    if listener is None:
        raise TrainingConfigError(f"{checkpoint_dir} has no segment listener; the answerer "
                                  "starts from it (run train-listener first)")
    data = config.data
    cache = checkpoint_scene_cache(model, checkpoint_dir, data.root, data.cache_dir)
    answers = answer_vocabulary(data)
    if not answers:
        raise EmptyDatasetError(f"no answer occurs {data.min_answer_count} times in split "
                                f"{data.split!r} of {data.annotations_path}")
    shape = {"max_segments": listener.config.max_segments,
             "max_question_tokens": listener.config.max_question_tokens, "answers": answers}
    train = QuestionData(model, SplitScenes.discover(data.root, data.split), cache, data,
                         data.split, **shape)
    if not train.items:
        raise EmptyDatasetError(f"no answerable question of split {data.split!r} under "
                                f"{data.root} is about a scene with segments")
    held_out = (QuestionData(model, SplitScenes.discover(data.root, data.eval_split), cache,
                             data, data.eval_split, **shape)
                if data.eval_split else None)
    answerer = SegmentAnswerer.from_listener(listener, answers).train()
    answerer.standardise_features(train.feature_rows())
    optim = config.optim
    out_dir = Path(config.out_dir)
    writer = SummaryWriter(str(out_dir / TENSORBOARD_DIR))
    start = time.perf_counter()
    held_out_metrics: dict[str, float] = {"items": 0}

    def batch_loss(chunk: list[QuestionItem]) -> tuple[torch.Tensor, dict[str, float]]:
        ids, segments, pairs, mask, colours, target, focus, anchor = train.collate(
            chunk, rng.integers(0, 1 << 16, len(chunk)).tolist(), len(answers))
        logits, attention, anchor_attention = answerer(ids, segments, pairs, mask, colours)
        answer_loss = F.cross_entropy(logits, target)
        focus_loss = _attention_loss(attention, focus)
        anchor_loss = _attention_loss(anchor_attention, anchor)
        return answer_loss + optim.focus_weight * (focus_loss + anchor_loss), \
            {"answer": answer_loss.item(), "focus": focus_loss.item(),
             "anchor": anchor_loss.item()}

    def after_epoch(step: int) -> None:
        nonlocal held_out_metrics
        if held_out is not None and held_out.items:
            held_out_metrics = answer_accuracy(answerer, held_out)
            for name, value in held_out_metrics.items():
                if name != "items":
                    writer.add_scalar(f"held_out/{name}", value, step)

    step = train_in_epochs(answerer, train.items, optim, grad_clip=optim.grad_clip, rng=rng,
                           writer=writer, log_every=config.log_every, desc="answerer",
                           batch_loss=batch_loss, after_epoch=after_epoch)
    writer.close()
    answerer.eval()
    model.set_segment_answerer(answerer)
    model.save_pretrained(out_dir / FINAL_DIR)
    shutil.copy2(checkpoint_dir / TRAINING_JSON, out_dir / FINAL_DIR / TRAINING_JSON)
    summary = {"checkpoint": str(checkpoint_dir), "steps": step,
               "seconds": round(time.perf_counter() - start, 1), "answers": len(answers),
               "config": asdict(config),
               "metrics": {data.split: {**answer_accuracy(answerer, train),
                                        "unanswerable": train.unanswerable}}}
    if held_out is not None:
        # The last epoch's scores are the final weights' scores.
        summary["metrics"][data.eval_split] = {**held_out_metrics,
                                               "unanswerable": held_out.unanswerable}
    (out_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=1) + "\n")
    return summary
