"""What the epoch-based side stages share (stage 0's encoder alignment, the segment listener
and answerer): their optimiser section, the segment stages' data section, and how their YAML
file is read."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from training.config import section_from_mapping
from training.errors import TrainingConfigError

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
    ``out_dir``, ``log_every`` and ``sections``, among them ``data`` with a ``root`` and
    ``optim`` with ``epochs``); ``overrides`` (``root``, ``out_dir``, ``epochs``) replace
    the file's values when not None.

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
    return config
