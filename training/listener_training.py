"""Train a checkpoint's segment listener on referring expressions (after the LLM stages).

For every ScanRefer description (and single-target Multi3DRefer one) of the split, the
scene's object segments are computed from the cached fused scene exactly as the inference
node computes them (:class:`~scene_llm_ros.grounding.SnapshotGrounder`), and the listener
learns to pick the segment whose box overlaps the annotated box most (cross-entropy over the
segments; items whose best segment overlaps less than ``min_target_iou`` teach nothing and
are left out). Then the box completer (:mod:`training.box_completion`) learns the whole
object's box from its best segment, over the annotated objects of the same scenes. The LLM
and everything else in the checkpoint stay as they are; the output is the same checkpoint
with ``segment_listener/`` and ``box_completer/`` added::

    scene-llm train-listener --config training/configs/segment_listener.yaml \\
        --checkpoint runs/embedded/final --data data/synth300 --out runs/listener
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from scene_llm_ros.data import annotations as ann
from scene_llm_ros.embedded import resolve_model_path
from scene_llm_ros.model import SceneLlm
from scene_llm_ros.model.segment_listener import (
    ListenerShape,
    SegmentListener,
    SegmentListenerConfig,
)
from training import examples, templates
from training.box_completion import (
    BoxCompletionConfig,
    completion_accuracy,
    completion_examples,
    train_box_completer,
)
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
from training.scene_segments import SceneSegments, checkpoint_scene_cache, collate_segments
from training.sources import read_source, source_available

logger = logging.getLogger(__name__)

#: The checkpoint with the listener inside the run directory, and the run's summary.
FINAL_DIR = "final"
SUMMARY_JSON = "listener.json"
# Weight of the comparison's candidate loss beside the choice's: enough to settle the
# candidates on the described class, not so much that they compete with the choice.
_CANDIDATE_WEIGHT = 0.5
# Multi3DRefer records of one target (with or without distractors of its class).
_SINGLE_TARGET = ("st_w_d", "st_wo_d")


@dataclass
class ListenerData(SegmentStageData):
    """Referring expressions to learn from.

    :ivar multi3drefer: also learn from single-target Multi3DRefer descriptions.
    :ivar min_target_iou: items whose best segment overlaps the true box less are skipped.
    :ivar quarter_turns: each training item sees its room turned by a random number of
        quarter turns (270 rooms look like 1,080 to the listener; descriptions still hold).
    :ivar extra_roots: more datasets whose ``split`` descriptions the listener learns from
        too, over their rooms fused the way the checkpoint was trained (each root's own
        ``scene_token_cache``); the box completer and the held-out scores stay ``root``'s.
    :ivar fusion_workers: processes that fuse the extra roots' rooms not cached yet.
    """

    multi3drefer: bool = True
    min_target_iou: float = 0.25
    quarter_turns: bool = True
    extra_roots: list[str] = field(default_factory=list)
    fusion_workers: int = 1

    def __post_init__(self) -> None:
        if self.fusion_workers < 1:
            raise TrainingConfigError(f"data.fusion_workers must be >= 1, got "
                                      f"{self.fusion_workers}")


@dataclass
class ListenerOptim(EpochOptim):
    """The shared epoch schedule, a gradient-norm clip, and the listener's defaults."""

    lr: float = 1e-3
    epochs: int = 6
    grad_clip: float = 1.0


@dataclass
class ListenerTrainingConfig:
    """The whole run (``training/configs/segment_listener.yaml``)."""

    seed: int = 0
    data: ListenerData = field(default_factory=ListenerData)
    listener: ListenerShape = field(default_factory=ListenerShape)
    optim: ListenerOptim = field(default_factory=ListenerOptim)
    box_completion: BoxCompletionConfig = field(default_factory=BoxCompletionConfig)
    out_dir: str = "runs/listener"
    log_every: int = 25


_SECTIONS = {"data": ListenerData, "listener": ListenerShape, "optim": ListenerOptim,
             "box_completion": BoxCompletionConfig}


def load_listener_config(path: str | Path, **overrides: Any) -> ListenerTrainingConfig:
    """Read and validate the YAML file; ``overrides`` (``root``, ``out_dir``, ``epochs``,
    ``extra_roots``) replace its values when not None.

    :raises TrainingConfigError: naming the problem.
    """
    return load_epoch_stage_config(path, ListenerTrainingConfig, _SECTIONS, **overrides)


@dataclass(frozen=True)
class ReferringItem:
    """One description over one scene's segments.

    :ivar scene_id: the scene.
    :ivar part: which of the data's datasets the scene is in (0: the first).
    :ivar phrasings: token ids of the question in each training phrasing (the listener's
        first ``max_question_tokens``); the first is how evaluation and users ask it.
    :ivar ious: float (S,) IoU of each described segment's box with the true box.
    """

    scene_id: str
    phrasings: tuple[tuple[int, ...], ...]
    ious: np.ndarray
    part: int = 0


class ReferringData:
    """The items and segment features of one split."""

    def __init__(self, model: SceneLlm, scenes: SplitScenes, cache: SceneTokenCache,
                 data: ListenerData, split: str, shape: ListenerShape) -> None:
        self.items: list[ReferringItem] = []
        self.skipped = 0
        by_scene: dict[str, list] = {}
        for record in _records(data, split):
            if record.scene_id in scenes.scene_dirs:
                by_scene.setdefault(record.scene_id, []).append(record)
        self.segments = SceneSegments(scenes, cache, sorted(by_scene)[:data.max_scenes],
                                      max_segments=shape.max_segments, split=split)
        #: The semantic map's classes (the segments' one-hot order).
        self.class_names = self.segments.class_names
        self._parts = [self.segments]
        for scene_id in self.segments.features:
            objects = scenes.objects(scene_id)
            for record in by_scene[scene_id]:
                samples = _phrasings(record, objects)
                if not samples:
                    continue
                ious = self.segments.ious(scene_id, objects[samples[0].object_ids[0]])
                if ious.max() < data.min_target_iou:
                    self.skipped += 1
                    continue
                self.items.append(ReferringItem(
                    scene_id, tuple(tuple(model.question_ids(s.question)
                                          [:shape.max_question_tokens]) for s in samples),
                    ious.astype(np.float32)))

    def join(self, other: ReferringData) -> None:
        """Learn from ``other``'s items too (another dataset's rooms, whose scene ids may be
        the same as these).

        :raises TrainingConfigError: when its segments are labelled with other classes.
        """
        if other.class_names != self.class_names:
            raise TrainingConfigError("the extra dataset's semantic map has other classes: "
                                      f"{other.class_names} vs {self.class_names}")
        part = len(self._parts)
        self._parts += other._parts
        self.items += [replace(item, part=part + item.part) for item in other.items]
        self.skipped += other.skipped

    def collate(self, items: list[ReferringItem], phrasing: list[int],
                quarter_turns: list[int] | None = None) -> tuple[torch.Tensor, ...]:
        """Padded (question ids, segments, pairs, segment mask, relative colours, target
        IoUs) of a batch, each item asked in phrasing ``phrasing[i]`` (modulo its
        phrasings), its room turned by ``quarter_turns[i]`` quarter turns when given."""
        ids, segments, pairs, mask, colours = collate_segments(
            [self._parts[item.part].features[item.scene_id] for item in items],
            len(self.class_names),
            [item.phrasings[k % len(item.phrasings)]
             for item, k in zip(items, phrasing, strict=True)], quarter_turns)
        ious = torch.zeros(mask.shape)
        for row, item in enumerate(items):
            ious[row, :len(item.ious)] = torch.from_numpy(item.ious)
        return ids, segments, pairs, mask, colours, ious


def _records(data: ListenerData, split: str) -> list:
    records = []
    if source_available(data.annotations_path, "scanrefer", split):
        records += read_source(data.annotations_path, "scanrefer", split)
    if data.multi3drefer and source_available(data.annotations_path, "multi3drefer", split):
        records += [r for r in read_source(data.annotations_path, "multi3drefer", split)
                    if r.eval_type in _SINGLE_TARGET and len(r.object_ids) == 1]
    return records


def _phrasings(record, objects: dict) -> list[examples.InstructionSample]:
    """The record asked in each training phrasing, the evaluation phrasing first."""
    if isinstance(record, ann.ScanReferRecord):
        build, count = examples.from_scanrefer, len(templates.GROUND_PHRASINGS)
    else:
        build, count = examples.from_multi3drefer, len(templates.MULTI_GROUND_PHRASINGS)
    first = build(record, objects, None)
    if first is None:
        return []
    variants = [build(record, objects, f"listener-{k}") for k in range(4 * count)]
    unique = {first.question: first}
    for sample in variants:
        unique.setdefault(sample.question, sample)
    return list(unique.values())


@torch.no_grad()
def selection_accuracy(listener: SegmentListener, data: ReferringData, *,
                       batch_size: int = 64) -> dict[str, float]:
    """How often the listener's pick overlaps the true box by 0.25 / 0.5 (segment boxes),
    asked in the evaluation phrasing; ``best`` is the same for the best segment."""
    listener.eval()
    picked, best = [], []
    for start in range(0, len(data.items), batch_size):
        chunk = data.items[start:start + batch_size]
        *inputs, ious = data.collate(chunk, [0] * len(chunk))
        choice = listener(*inputs).argmax(dim=-1)
        picked.append(ious.gather(1, choice[:, None])[:, 0].numpy())
        best.append(ious.max(dim=1).values.numpy())
    listener.train()
    if not picked:
        return {"items": 0}
    picked_iou, best_iou = np.concatenate(picked), np.concatenate(best)
    return {"items": len(picked_iou),
            "acc@0.25": float(np.mean(picked_iou >= 0.25)),
            "acc@0.5": float(np.mean(picked_iou >= 0.5)),
            "best@0.25": float(np.mean(best_iou >= 0.25)),
            "best@0.5": float(np.mean(best_iou >= 0.5))}


def _train_completion(config: ListenerTrainingConfig, model: SceneLlm, train: tuple,
                      held_out: tuple) -> dict:
    """Give the model a box completer fitted on the training scenes' objects (when the
    config enables it); return the held-out and training box accuracies of segment boxes
    and completed boxes."""
    settings = config.box_completion
    if not settings.enabled:
        return {}
    examples = completion_examples(train[0].segments, train[1], settings.min_iou)
    completer = train_box_completer(settings, examples, list(train[0].class_names),
                                    seed=config.seed)
    model.set_box_completer(completer)
    metrics = {config.data.split: {"segment": completion_accuracy(None, examples),
                                   "completed": completion_accuracy(completer, examples)}}
    if held_out[0] is not None:
        examples = completion_examples(held_out[0].segments, held_out[1], settings.min_iou)
        metrics[config.data.eval_split] = {"segment": completion_accuracy(None, examples),
                                           "completed": completion_accuracy(completer,
                                                                            examples)}
    return metrics


def train_listener(config: ListenerTrainingConfig, checkpoint_dir: str | Path) -> dict:
    """Train the listener of the checkpoint; write ``OUT/final/`` (the checkpoint with the
    listener), ``OUT/listener.json`` (metrics) and TensorBoard logs.

    :raises EmptyDatasetError: when the split has no usable referring expression.
    """
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    checkpoint_dir = resolve_model_path(checkpoint_dir)
    model = SceneLlm.from_pretrained(checkpoint_dir)
    data = config.data
    cache = checkpoint_scene_cache(model, checkpoint_dir, data.root, data.cache_dir)
    shape = config.listener
    train_scenes = SplitScenes.discover(data.root, data.split)
    train = ReferringData(model, train_scenes, cache, data, data.split, shape)
    for root in data.extra_roots:
        extra = replace(data, root=root, annotations_dir=None, cache_dir=None)
        extra_scenes = SplitScenes.discover(root, data.split)
        extra_cache = checkpoint_scene_cache(model, checkpoint_dir, root, None)
        extra_cache.fill(list(extra_scenes.scene_dirs.values()), workers=data.fusion_workers,
                         desc=f"fuse {Path(root).name}")
        train.join(ReferringData(model, extra_scenes, extra_cache, extra, data.split, shape))
    if not train.items:
        raise EmptyDatasetError(f"no referring expression of split {data.split!r} under "
                                f"{data.root} has a segment overlapping its object")
    held_out_scenes = SplitScenes.discover(data.root, data.eval_split) if data.eval_split \
        else None
    held_out = (ReferringData(model, held_out_scenes, cache, data, data.eval_split, shape)
                if held_out_scenes is not None else None)
    listener = SegmentListener(SegmentListenerConfig(
        **asdict(shape), vocab_size=len(model.tokenizer), class_names=list(train.class_names)))
    optim = config.optim
    out_dir = Path(config.out_dir)
    writer = SummaryWriter(str(out_dir / TENSORBOARD_DIR))
    start = time.perf_counter()
    held_out_metrics = {"items": 0}

    def batch_loss(chunk: list[ReferringItem]) -> tuple[torch.Tensor, dict[str, float]]:
        phrasing = rng.integers(0, 1 << 16, len(chunk)).tolist()
        turns = rng.integers(0, 4, len(chunk)).tolist() if data.quarter_turns else None
        *inputs, ious = train.collate(chunk, phrasing, turns)
        scores, candidates = listener.logits(*inputs)
        target = ious.argmax(dim=1)
        choice = F.cross_entropy(scores, target)
        candidate = F.cross_entropy(candidates, target)
        loss = choice + _CANDIDATE_WEIGHT * candidate
        return loss, {"listener": choice.item(), "candidates": candidate.item()}

    def after_epoch(step: int) -> None:
        nonlocal held_out_metrics
        if held_out is not None and held_out.items:
            held_out_metrics = selection_accuracy(listener, held_out)
            writer.add_scalar("held_out/acc@0.25", held_out_metrics["acc@0.25"], step)
            writer.add_scalar("held_out/acc@0.5", held_out_metrics["acc@0.5"], step)

    step = train_in_epochs(listener, train.items, optim, grad_clip=optim.grad_clip, rng=rng,
                           writer=writer, log_every=config.log_every, desc="listener",
                           batch_loss=batch_loss, after_epoch=after_epoch)
    writer.close()
    listener.eval()
    model.set_segment_listener(listener)
    completion = _train_completion(config, model, (train, train_scenes),
                                   (held_out, held_out_scenes))
    model.save_pretrained(out_dir / FINAL_DIR)
    shutil.copy2(checkpoint_dir / TRAINING_JSON, out_dir / FINAL_DIR / TRAINING_JSON)
    summary = {"checkpoint": str(checkpoint_dir), "steps": step,
               "seconds": round(time.perf_counter() - start, 1),
               "config": asdict(config),
               "metrics": {data.split: {**selection_accuracy(listener, train),
                                        "skipped": train.skipped}},
               "box_completion": completion}
    if held_out is not None:
        # The last epoch's scores are the final weights' scores.
        summary["metrics"][data.eval_split] = {**held_out_metrics, "skipped": held_out.skipped}
    (out_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=1) + "\n")
    return summary
