"""What the epoch-based side stages share (stage 0's encoder alignment, the segment listener
and answerer): their optimiser section, the segment stages' data section, and how their YAML
file is read."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from training.config import OptimConfig, section_from_mapping
from training.errors import TrainingConfigError
from training.schedule import lr_at

#: Top-level keys besides the sections, with their types.
_TOP_LEVEL = {"seed": int, "out_dir": str, "log_every": int}


@dataclass
class SegmentStageData:
    """The data section the segment stages (listener, answerer) share.

    :ivar root: dataset root (ScanNet layout with ``annotations/``).
    :ivar split: training split; ``eval_split`` is only reported, never selected on.
    :ivar annotations_dir: annotation files (default ``<root>/annotations``).
    :ivar cache_dir: scene-token cache (default ``<root>/scene_token_cache``), shared with
        the LLM stages and eval-offline.
    :ivar max_scenes: learn from at most this many scenes (a quick run).
    """

    root: str = ""
    split: str = "train"
    eval_split: str | None = "test"
    annotations_dir: str | None = None
    cache_dir: str | None = None
    max_scenes: int | None = None

    @property
    def annotations_path(self) -> Path:
        return Path(self.annotations_dir) if self.annotations_dir else Path(self.root) / \
            "annotations"


@dataclass
class EpochOptim:
    """AdamW with warm-up and cosine decay over ``epochs`` passes of the data."""

    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    warmup_steps: int = 50
    epochs: int = 12
    batch_size: int = 32

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.epochs < 1 or self.batch_size < 1 or self.warmup_steps < 0:
            raise TrainingConfigError("optim needs lr > 0, epochs >= 1, batch_size >= 1 and "
                                      "warmup_steps >= 0")


def load_epoch_stage_config(path: str | Path, config_cls: type, sections: dict[str, type],
                            **overrides: Any):
    """Read and validate a side stage's YAML file into ``config_cls`` (which has ``seed``,
    ``out_dir``, ``log_every`` and ``sections``, among them ``data`` with a ``root`` (and
    ``extra_roots`` when overridden) and ``optim`` with ``epochs``); ``overrides`` (``root``,
    ``out_dir``, ``epochs``, ``extra_roots``) replace the file's values when not None.

    :raises TrainingConfigError: naming the problem.
    """
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TrainingConfigError(f"cannot read {path}: {exc}") from exc
    unknown = sorted(set(values) - set(sections) - set(_TOP_LEVEL))
    if unknown:
        raise TrainingConfigError(f"{path}: unknown keys {unknown}")
    config = config_cls(
        **{key: cast(values[key]) for key, cast in _TOP_LEVEL.items() if key in values},
        **{name: section_from_mapping(name, cls, values.get(name), str(path))
           for name, cls in sections.items()})
    if overrides.get("root") is not None:
        config.data.root = str(overrides["root"])
    if overrides.get("out_dir") is not None:
        config.out_dir = str(overrides["out_dir"])
    if overrides.get("epochs") is not None:
        config.optim.epochs = int(overrides["epochs"])
    if overrides.get("extra_roots") is not None:
        config.data.extra_roots = [str(root) for root in overrides["extra_roots"]]
    return config


def train_in_epochs(module: nn.Module, items: list, optim: EpochOptim, *, grad_clip: float,
                    rng: np.random.Generator, writer, log_every: int, desc: str,
                    batch_loss: Callable[[list], tuple[torch.Tensor, dict[str, float]]],
                    after_epoch: Callable[[int], None]) -> int:
    """AdamW over ``optim.epochs`` shuffled passes of ``items`` with warm-up and cosine decay
    and a gradient-norm clip (the segment stages' loop).

    :param batch_loss: a batch's loss to minimise and the named values to log (``loss/...``).
    :param after_epoch: called with the step count after every pass (held-out scores).
    :return: the number of steps.
    """
    optimizer = torch.optim.AdamW(module.parameters(), lr=optim.lr,
                                  weight_decay=optim.weight_decay)
    total = math.ceil(len(items) / optim.batch_size) * optim.epochs
    schedule = OptimConfig(lr=optim.lr, min_lr_ratio=optim.min_lr_ratio,
                           warmup_steps=optim.warmup_steps, max_steps=total)
    start = time.perf_counter()
    step = 0
    progress = tqdm(total=total, desc=desc, unit="step")
    for _ in range(optim.epochs):
        order = rng.permutation(len(items))
        for first in range(0, len(order), optim.batch_size):
            chunk = [items[i] for i in order[first:first + optim.batch_size]]
            lr = lr_at(step, schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, logged = batch_loss(chunk)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
            optimizer.step()
            step += 1
            progress.update()
            if step % log_every == 0 or step == total:
                for name, value in logged.items():
                    writer.add_scalar(f"loss/{name}", value, step)
                writer.add_scalar("lr", lr, step)
                rate = step * optim.batch_size / (time.perf_counter() - start)
                progress.set_postfix(loss=f"{loss.item():.3f}", items_per_s=f"{rate:.0f}")
        after_epoch(step)
    progress.close()
    return step
