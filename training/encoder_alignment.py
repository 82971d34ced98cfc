"""Stage 0 of the embedded model: align the built-in patch encoder with object words.

Fusion pools encoder features into voxels outside autograd and the scene tokens are cached,
so the LLM stages cannot train the encoder. This stage trains it on its own, on the 2D
frames the fusion node would see: every patch predicts the words of the objects it shows
(:mod:`training.patch_targets`) through a linear head that is thrown away afterwards, and
the class of the object it mostly shows through a linear head the encoder keeps. The result
is an encoder directory the LLM stages load (``patch_encoder: {type: builtin, path: DIR}``)
and carry inside their checkpoints::

    scene-llm align-encoder --config training/configs/encoder_alignment.yaml \\
        --data data/synth300 --out runs/encoder
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from scene_llm_ros.data.scannet import iter_scene_frames
from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from training.checkpoints import TENSORBOARD_DIR
from training.config import OptimConfig
from training.dataset import SplitScenes
from training.epoch_stage import EpochOptim, load_epoch_stage_config
from training.errors import EmptyDatasetError, TrainingConfigError
from training.patch_targets import (
    SceneObjectLookup,
    WordVocabulary,
    build_vocabulary,
    descriptions_by_object,
    patch_targets,
    pixel_objects,
)
from training.schedule import lr_at
from training.sources import read_source, source_available

logger = logging.getLogger(__name__)

#: The encoder directory inside the run directory, and the run's summary.
ENCODER_DIR = "patch_encoder"
SUMMARY_JSON = "alignment.json"
#: Every n-th pixel is lifted to find what the patches show.
_PIXEL_STEP = 4
#: ``optim.mixed_precision`` values: float32 throughout, or bfloat16 autocast.
MIXED_PRECISIONS = ("none", "bf16")


@dataclass
class AlignmentData:
    """Frames to align on.

    :ivar root: dataset root (ScanNet layout with ``annotations/``).
    :ivar split: training split; ``eval_split`` is only reported, never selected on.
    :ivar every_nth_frame: as the LLM stages fuse, so the encoder sees the same views.
    :ivar max_frames: frames per scene (None: all).
    :ivar vocabulary_min_count: description words used fewer times are left out.
    :ivar extra_roots: more datasets whose ``split`` scenes the encoder learns from too
        (more rooms to tell classes apart in; the words and classes are ``root``'s).
    """

    root: str = ""
    split: str = "train"
    eval_split: str | None = "test"
    annotations_dir: str | None = None
    every_nth_frame: int = 2
    max_frames: int | None = None
    vocabulary_min_count: int = 5
    extra_roots: list[str] = field(default_factory=list)

    @property
    def annotations_path(self) -> Path:
        return Path(self.annotations_dir) if self.annotations_dir else Path(self.root) / \
            "annotations"


@dataclass
class AlignmentOptim(EpochOptim):
    """The shared epoch schedule and the precision of the forward pass.

    :ivar mixed_precision: ``"bf16"`` runs the encoder's forward pass under bfloat16
        autocast (the weights, their gradients and the loss stay float32): on a CPU with
        AMX or AVX512-BF16 a step takes half the time (benchmarks/training_steps.py);
        on one without, it is slower. ``"none"``: float32 throughout.
    """

    mixed_precision: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise TrainingConfigError(f"optim.mixed_precision must be one of "
                                      f"{list(MIXED_PRECISIONS)}, got {self.mixed_precision!r}")


@dataclass
class AlignmentConfig:
    """The whole stage (``training/configs/encoder_alignment.yaml``)."""

    seed: int = 0
    data: AlignmentData = field(default_factory=AlignmentData)
    encoder: BuiltinEncoderConfig = field(default_factory=BuiltinEncoderConfig)
    optim: AlignmentOptim = field(default_factory=AlignmentOptim)
    out_dir: str = "runs/encoder"
    log_every: int = 10


_SECTIONS = {"data": AlignmentData, "encoder": BuiltinEncoderConfig, "optim": AlignmentOptim}


def load_alignment_config(path: str | Path, **overrides: Any) -> AlignmentConfig:
    """Read and validate the YAML file; ``overrides`` (``root``, ``out_dir``, ``epochs``,
    ``extra_roots``) replace its values when not None.

    :raises TrainingConfigError: naming the problem.
    """
    return load_epoch_stage_config(path, AlignmentConfig, _SECTIONS, **overrides)


@dataclass
class PatchFrames:
    """Frames of a split resized to the encoder's input, with their patch targets.

    :ivar images: uint8 (N, h, w, 3).
    :ivar targets: float16 (N, rows, cols, V).
    :ivar weights: float32 (N, rows, cols) labelled share of each cell (0: ignored).
    :ivar classes: int64 (N, rows, cols) index into ``class_names`` of the object covering
        most of each cell, -1 for none.
    """

    images: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    classes: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    @staticmethod
    def joined(parts: list[PatchFrames]) -> PatchFrames:
        """The frames of ``parts`` one after another (labelled with the same classes), copied
        once however many parts there are."""
        first = parts[0]
        if any(part.class_names != first.class_names or
               part.targets.shape[1:] != first.targets.shape[1:] for part in parts):
            raise ValueError("frames to join must share classes, grid and vocabulary")
        return PatchFrames(*(np.concatenate([getattr(part, name) for part in parts])
                             for name in ("images", "targets", "weights", "classes")),
                           first.class_names)


def _descriptions(data: AlignmentData, split: str) -> dict[tuple[str, int], list[str]]:
    records = []
    for source in ("scanrefer", "scan2cap"):
        if source_available(data.annotations_path, source, split):
            records += read_source(data.annotations_path, source, split)
    return descriptions_by_object(records)


def collect_frames(data: AlignmentData, split: str, encoder: BuiltinEncoderConfig,
                   vocabulary: WordVocabulary | None = None,
                   class_names: list[str] | None = None, *, max_scenes: int | None = None
                   ) -> tuple[PatchFrames, WordVocabulary]:
    """Lift every selected frame of the split's scenes and label its patches.

    :param vocabulary: the training vocabulary (None builds it from this split).
    :param class_names: the training classes (None: this split's); other classes get -1.
    :raises EmptyDatasetError: when no frame could be labelled.
    """
    scenes = SplitScenes.discover(data.root, split)
    descriptions = _descriptions(data, split)
    lookups = {}
    scene_ids = list(scenes.scene_dirs)[:max_scenes]
    for scene_id in tqdm(scene_ids, desc=f"label {split} scenes", unit="scene", leave=False):
        lookups[scene_id] = SceneObjectLookup(scenes.scene_dirs[scene_id])
    if vocabulary is None:
        vocabulary = build_vocabulary(
            (label for lookup in lookups.values() for label in lookup.labels.values()),
            (d for texts in descriptions.values() for d in texts),
            min_count=data.vocabulary_min_count)
    if class_names is None:
        class_names = sorted({label for lookup in lookups.values()
                              for label in lookup.labels.values()})
    class_index = {name: i for i, name in enumerate(class_names)}
    grid = (encoder.image_height // encoder.patch_size, encoder.image_width // encoder.patch_size)
    images, targets, weights, classes = [], [], [], []
    for scene_id in tqdm(scene_ids, desc=f"lift {split} frames", unit="scene", leave=False):
        lookup = lookups[scene_id]
        profiles = {oid: vocabulary.profile(label, descriptions.get((scene_id, oid), []))
                    for oid, label in lookup.labels.items()}
        frames = iter_scene_frames(scenes.scene_dirs[scene_id], every_nth=data.every_nth_frame,
                                   align=True)
        for frame in itertools.islice(frames, data.max_frames):
            ids = pixel_objects(frame, lookup, step=_PIXEL_STEP)
            target, weight, dominant = patch_targets(ids, grid, profiles, len(vocabulary))
            if not weight.any():
                continue
            images.append(cv2.resize(frame.color, (encoder.image_width, encoder.image_height),
                                     interpolation=cv2.INTER_AREA))
            targets.append(target.astype(np.float16))
            weights.append(weight)
            classes.append(np.vectorize(
                lambda o, labels=lookup.labels: class_index.get(labels.get(int(o), ""), -1),
                otypes=[np.int64])(dominant))
    if not images:
        raise EmptyDatasetError(f"no frame of the {split} split could be labelled")
    return PatchFrames(np.stack(images), np.stack(targets), np.stack(weights),
                       np.stack(classes), class_names), vocabulary


class AlignmentHeads(nn.Module):
    """Patch features -> word logits (trained with the encoder, then discarded) and class
    logits (kept with the encoder as its patch classifier)."""

    def __init__(self, feature_dim: int, vocabulary_size: int, num_classes: int) -> None:
        super().__init__()
        self.words = nn.Linear(feature_dim, vocabulary_size)
        self.classes = nn.Linear(feature_dim, num_classes)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.words(features), self.classes(features)


def alignment_loss(word_logits: torch.Tensor, class_logits: torch.Tensor,
                   targets: torch.Tensor, classes: torch.Tensor, weights: torch.Tensor
                   ) -> torch.Tensor:
    """Binary cross-entropy over the vocabulary plus cross-entropy over the classes (of the
    object covering most of the cell), each cell weighted by its labelled share."""
    weights = weights * (classes >= 0)
    per_cell = nn.functional.binary_cross_entropy_with_logits(
        word_logits, targets, reduction="none").mean(dim=-1)
    per_cell = per_cell + nn.functional.cross_entropy(
        class_logits.flatten(0, -2), classes.clamp_min(0).flatten(),
        reduction="none").view_as(per_cell)
    return (per_cell * weights).sum() / weights.sum().clamp_min(1e-6)


@torch.inference_mode()
def evaluate_patches(encoder: BuiltinPatchEncoder, heads: AlignmentHeads, frames: PatchFrames,
                     *, batch_size: int = 64) -> dict[str, float]:
    """Loss and patch class accuracy (cells more than half labelled)."""
    encoder.net.eval()
    losses, correct, counted = 0.0, 0, 0
    for start in range(0, len(frames), batch_size):
        part = slice(start, start + batch_size)
        word_logits, class_logits = heads(encoder.net(encoder.preprocess(frames.images[part])))
        weights = torch.from_numpy(frames.weights[part])
        classes = torch.from_numpy(frames.classes[part])
        targets = torch.from_numpy(frames.targets[part].astype(np.float32))
        losses += float(alignment_loss(word_logits, class_logits, targets, classes, weights)) \
            * float((weights * (classes >= 0)).sum())
        scored = (classes >= 0) & (weights > 0.5)
        correct += int((class_logits.argmax(dim=-1)[scored] == classes[scored]).sum())
        counted += int(scored.sum())
    total_weight = float((frames.weights * (frames.classes >= 0)).sum())
    return {"loss": losses / max(total_weight, 1e-6),
            "patch_class_accuracy": correct / max(counted, 1), "patches": counted}


def align_encoder(config: AlignmentConfig) -> dict[str, Any]:
    """Train the built-in encoder as the config says; return the summary it writes.

    Writes ``<out>/patch_encoder/`` (the encoder, atomically), ``<out>/alignment.json``
    (config, vocabulary, held-out metrics) and ``<out>/tensorboard/``.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    train_frames, vocabulary = collect_frames(config.data, config.data.split, config.encoder)
    if config.data.extra_roots:
        train_frames = PatchFrames.joined([train_frames] + [
            collect_frames(replace(config.data, root=root, annotations_dir=None),
                           config.data.split, config.encoder, vocabulary,
                           train_frames.class_names)[0]
            for root in config.data.extra_roots])
    eval_frames = None
    if config.data.eval_split:
        eval_frames, _ = collect_frames(config.data, config.data.eval_split, config.encoder,
                                        vocabulary, train_frames.class_names)
    logger.info("aligning on %d frames, %d words (%.0f s to label)", len(train_frames),
                len(vocabulary), time.monotonic() - started)
    encoder = BuiltinPatchEncoder(config.encoder, seed=config.seed)
    heads = AlignmentHeads(config.encoder.feature_dim, len(vocabulary),
                           len(train_frames.class_names))
    parameters = list(encoder.net.parameters()) + list(heads.parameters())
    train_probe = _subset(train_frames, 400, rng)
    before = evaluate_patches(encoder, heads, train_probe)
    optim = config.optim
    optimizer = torch.optim.AdamW(parameters, lr=optim.lr, weight_decay=optim.weight_decay)
    steps_per_epoch = math.ceil(len(train_frames) / optim.batch_size)
    total = steps_per_epoch * optim.epochs
    from torch.utils.tensorboard import SummaryWriter

    schedule = OptimConfig(lr=optim.lr, warmup_steps=min(optim.warmup_steps, total),
                           max_steps=total, min_lr_ratio=optim.min_lr_ratio)
    writer = SummaryWriter(str(out_dir / TENSORBOARD_DIR))
    bar = tqdm(total=total, desc="align encoder", unit="step")
    step = 0
    encoder.net.train()
    for _ in range(optim.epochs):
        for batch in np.array_split(rng.permutation(len(train_frames)), steps_per_epoch):
            flip = rng.random() < 0.5  # mirror images with their target grids
            images = train_frames.images[batch][:, :, ::-1] if flip else \
                train_frames.images[batch]
            targets = train_frames.targets[batch].astype(np.float32)
            weights = train_frames.weights[batch]
            classes = train_frames.classes[batch]
            if flip:
                targets, weights, classes = (a[:, :, ::-1] for a in (targets, weights, classes))
            lr = lr_at(step, schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast("cpu", dtype=torch.bfloat16,
                                enabled=optim.mixed_precision == "bf16"):
                word_logits, class_logits = heads(encoder.net(encoder.preprocess(
                    np.ascontiguousarray(images))))
            loss = alignment_loss(word_logits.float(), class_logits.float(),
                                  *(torch.from_numpy(np.ascontiguousarray(a))
                                    for a in (targets, classes, weights)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            step += 1
            bar.update(1)
            if step % config.log_every == 0 or step == total:
                writer.add_scalar("loss/total", float(loss), step)
                writer.add_scalar("lr", lr, step)
                bar.set_postfix(loss=f"{float(loss):.4f}")
    bar.close()
    encoder.net.eval()
    metrics = {"train_before": before, "train": evaluate_patches(encoder, heads, train_probe)}
    if eval_frames is not None:
        metrics[config.data.eval_split] = evaluate_patches(encoder, heads, eval_frames)
    for split, values in metrics.items():
        for name, value in values.items():
            writer.add_scalar(f"{split}/{name}", value, step)
    writer.close()
    # The class head stays with the encoder: fusion lifts its per-pixel classes into a
    # semantic map of the surface, which grounding segments into objects.
    encoder.set_classes(train_frames.class_names, heads.classes)
    _save_encoder(encoder, out_dir / ENCODER_DIR)
    summary = {"config": asdict(config), "vocabulary": vocabulary.words,
               "frames": {"train": len(train_frames),
                          "eval": 0 if eval_frames is None else len(eval_frames)},
               "steps": total, "seconds": round(time.monotonic() - started, 1),
               "metrics": metrics}
    temporary = out_dir / f".{SUMMARY_JSON}.tmp"
    temporary.write_text(json.dumps(summary, indent=2))
    os.replace(temporary, out_dir / SUMMARY_JSON)
    logger.info("encoder aligned in %.0f s: %s -> %s", summary["seconds"], metrics,
                out_dir / ENCODER_DIR)
    return summary


def _subset(frames: PatchFrames, count: int, rng: np.random.Generator) -> PatchFrames:
    pick = np.sort(rng.permutation(len(frames))[:count])
    return PatchFrames(frames.images[pick], frames.targets[pick], frames.weights[pick],
                       frames.classes[pick], frames.class_names)


def _save_encoder(encoder: BuiltinPatchEncoder, directory: Path) -> None:
    # Write beside, then swap: a crash never leaves a half-written encoder under the name.
    temporary = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    encoder.save_pretrained(temporary)
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(temporary, directory)
