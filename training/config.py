"""The training configuration: one YAML file per stage, validated into dataclasses.

Every knob has a default here, so a stage file only states what differs. Unknown keys are
errors (a typo must not silently fall back to a default). Layout::

    seed: 0
    data:   {root, split, sources: {scanqa: 1.0, ...}, cache_dir, every_nth_frame, max_frames}
    fusion: {max_patch_tokens, patch_voxel_size_m, ...}     # FusionConfig fields
    model:  {init: tiny | checkpoint, checkpoint, tiny: {hidden_size, ...}}
    stage:  {name, trainable: [...], lora: {...}, grounding_weight}
    optim:  {lr, weight_decay, warmup_steps, max_steps, examples_per_step, grad_clip, ...}
    run:    {out_dir, checkpoint_every, keep_checkpoints, log_every}
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scene_llm_ros.fusion.config import FusionConfig
from training.errors import TrainingConfigError

#: Annotation sources a dataset can draw examples from.
SOURCES = ("scanqa", "sqa3d", "scanrefer", "multi3drefer", "scan2cap", "scene_caption")
#: Parameter groups a stage can train (see :mod:`training.stages`).
TRAINABLE_GROUPS = ("feature_lift", "position_embedding", "projector", "object_tokens",
                    "referent_tokens", "grounding_head", "lora", "llm")


@dataclass
class DataConfig:
    """Where examples come from.

    :ivar root: dataset root with ``scans/``, ``meta/`` and ``annotations/`` (ScanNet layout).
    :ivar split: ``train``, ``val`` or ``test``.
    :ivar sources: source -> weight; a source of N examples contributes ``round(weight * N)``
        (cycling through it, each repeat with other phrasings).
    :ivar annotations_dir: annotation folder; default ``<root>/annotations``.
    :ivar cache_dir: scene-token cache; default ``<root>/scene_token_cache``.
    :ivar every_nth_frame: fuse every n-th frame of a scene.
    :ivar max_frames: fuse at most this many frames per scene (None: all).
    :ivar max_examples_per_source: cap per source before weighting (None: all), for smoke runs.
    """

    root: str = ""
    split: str = "train"
    sources: dict[str, float] = field(default_factory=lambda: {"scanqa": 1.0})
    annotations_dir: str | None = None
    cache_dir: str | None = None
    every_nth_frame: int = 1
    max_frames: int | None = None
    max_examples_per_source: int | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown:
            raise TrainingConfigError(f"data.sources has unknown sources {unknown}; expected "
                                      f"some of {list(SOURCES)}")
        if not self.sources or any(not w > 0 for w in self.sources.values()):
            raise TrainingConfigError(f"data.sources needs at least one source with a positive "
                                      f"weight, got {self.sources}")
        if self.every_nth_frame < 1:
            raise TrainingConfigError(f"data.every_nth_frame must be >= 1, got "
                                      f"{self.every_nth_frame}")
        for name in ("max_frames", "max_examples_per_source"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise TrainingConfigError(f"data.{name} must be >= 1 or null, got {value}")

    @property
    def annotations_path(self) -> Path:
        return Path(self.annotations_dir) if self.annotations_dir else Path(self.root) / \
            "annotations"

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.root) / "scene_token_cache"


@dataclass
class ModelInitConfig:
    """Where the model comes from.

    :ivar init: ``tiny`` (built in code, tokenizer trained on the dataset's text),
        ``checkpoint`` (a directory written by ``SceneLlm.save_pretrained``) or ``hf`` (a
        local pretrained Hugging Face causal LM plus fresh scene modules).
    :ivar checkpoint: the directory for ``init: checkpoint`` (``--init-from`` sets it).
    :ivar tiny: keyword arguments of :func:`scene_llm_ros.model.tiny.build_tiny_scene_llm`.
    :ivar llm_path: the LLM directory for ``init: hf``; checkpoints refer to it instead of
        copying it (so the LLM itself cannot be a trained group then).
    :ivar quantization: None, ``4bit`` or ``8bit`` for ``init: hf`` (QLoRA with ``lora``).
    :ivar scene_config: ``SceneLlmConfig`` fields for ``init: hf`` (``scene_dim``, ...).
    :ivar max_new_tokens: answer length limit stored in the model config.
    :ivar referent_tokens: give the loaded model this many referent tokens
        (``SceneLlm.enable_referent_tokens``; needs a checkpoint with a segment listener);
        0: keep the model's own setting.
    """

    init: str = "tiny"
    checkpoint: str | None = None
    tiny: dict[str, Any] = field(default_factory=dict)
    llm_path: str | None = None
    quantization: str | None = None
    scene_config: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int | None = None
    referent_tokens: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.referent_tokens, int) or self.referent_tokens < 0:
            raise TrainingConfigError(f"model.referent_tokens must be an int >= 0, got "
                                      f"{self.referent_tokens!r}")
        if self.init not in ("tiny", "checkpoint", "hf"):
            raise TrainingConfigError(f"model.init must be 'tiny', 'checkpoint' or 'hf', got "
                                      f"{self.init!r}")
        if self.init == "checkpoint" and not self.checkpoint:
            raise TrainingConfigError("model.init 'checkpoint' needs model.checkpoint (or "
                                      "--init-from DIR)")
        if self.init == "hf" and not self.llm_path:
            raise TrainingConfigError("model.init 'hf' needs model.llm_path (a local Hugging "
                                      "Face causal LM directory)")


@dataclass
class StageConfig:
    """What a stage trains.

    :ivar name: a label for logs (``alignment``, ``grounding``, ``instruction``).
    :ivar trainable: groups of :data:`TRAINABLE_GROUPS`; everything else is frozen.
    :ivar lora: ``rank``, ``alpha``, ``dropout``, ``target_modules`` when ``lora`` is trained.
    :ivar grounding_weight: weight of the grounding losses in the total.
    """

    name: str = "stage"
    trainable: list[str] = field(default_factory=lambda: ["feature_lift", "position_embedding",
                                                          "projector"])
    lora: dict[str, Any] = field(default_factory=lambda: {"rank": 16, "alpha": 32,
                                                          "dropout": 0.05})
    grounding_weight: float = 1.0

    def __post_init__(self) -> None:
        if "patch_encoder" in self.trainable:
            raise TrainingConfigError(
                "stage.trainable 'patch_encoder' is not supported: scene tokens are fused once "
                "per scene and cached, and fusion pools encoder features outside autograd; "
                "train the built-in encoder first with `scene-llm align-encoder` and load it "
                "with model.tiny.patch_encoder: {type: builtin, path: DIR}")
        unknown = sorted(set(self.trainable) - set(TRAINABLE_GROUPS))
        if unknown or not self.trainable:
            raise TrainingConfigError(f"stage.trainable must be a non-empty subset of "
                                      f"{list(TRAINABLE_GROUPS)}, got {self.trainable}")
        if self.grounding_weight < 0:
            raise TrainingConfigError(f"stage.grounding_weight must be >= 0, got "
                                      f"{self.grounding_weight}")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``min_lr_ratio * lr``.

    :ivar examples_per_step: examples each process accumulates per optimizer step (the
        global batch is this times the number of processes).
    :ivar micro_batch_size: examples per backbone call (right-padded into one batch); None
        puts all ``examples_per_step`` into one call.
    :ivar head_lr_multiplier: the grounding head's learning rate is ``lr`` times this.
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    max_steps: int = 100
    min_lr_ratio: float = 0.1
    examples_per_step: int = 4
    grad_clip: float = 1.0
    micro_batch_size: int | None = None
    head_lr_multiplier: float = 1.0

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise TrainingConfigError(f"optim.micro_batch_size must be >= 1 or null, got "
                                      f"{self.micro_batch_size}")
        if not self.head_lr_multiplier > 0:
            raise TrainingConfigError(f"optim.head_lr_multiplier must be > 0, got "
                                      f"{self.head_lr_multiplier}")
        if not self.lr > 0 or self.max_steps < 1 or self.examples_per_step < 1:
            raise TrainingConfigError(f"optim needs lr > 0, max_steps >= 1 and "
                                      f"examples_per_step >= 1, got lr={self.lr}, max_steps="
                                      f"{self.max_steps}, examples_per_step="
                                      f"{self.examples_per_step}")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise TrainingConfigError(f"optim.warmup_steps must be in [0, max_steps], got "
                                      f"{self.warmup_steps}")
        if not 0 <= self.min_lr_ratio <= 1 or self.grad_clip < 0 or self.weight_decay < 0:
            raise TrainingConfigError("optim needs 0 <= min_lr_ratio <= 1, grad_clip >= 0 and "
                                      "weight_decay >= 0")


@dataclass
class RunConfig:
    """Outputs.

    :ivar out_dir: run directory (``checkpoints/``, ``final/``, ``tensorboard/``).
    :ivar checkpoint_every: steps between checkpoints (0: only at the end).
    :ivar keep_checkpoints: newest step checkpoints kept (older ones are deleted).
    :ivar log_every: steps between TensorBoard/tqdm updates.
    """

    out_dir: str = "runs/stage"
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    log_every: int = 1

    def __post_init__(self) -> None:
        if self.checkpoint_every < 0 or self.keep_checkpoints < 1 or self.log_every < 1:
            raise TrainingConfigError("run needs checkpoint_every >= 0, keep_checkpoints >= 1 "
                                      "and log_every >= 1")


@dataclass
class TrainConfig:
    """A whole stage."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    model: ModelInitConfig = field(default_factory=ModelInitConfig)
    stage: StageConfig = field(default_factory=StageConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["optim"]["betas"] = list(self.optim.betas)
        return values

    def to_yaml(self, path: str | Path) -> None:
        """Write the resolved config (every value, defaults included)."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


_SECTIONS = {"data": DataConfig, "fusion": FusionConfig, "model": ModelInitConfig,
             "stage": StageConfig, "optim": OptimConfig, "run": RunConfig}


def section_from_mapping(name: str, cls: type, values: Any, where: str):
    """Validate one YAML section into ``cls``; unknown keys and bad values are errors."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise TrainingConfigError(f"{where}: section {name!r} must be a mapping, got "
                                  f"{type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainingConfigError(f"{where}: unknown keys {unknown} in section {name!r}; known "
                                  f"keys are {sorted(known)}")
    try:
        return cls(**values)
    except TrainingConfigError as exc:
        raise TrainingConfigError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise TrainingConfigError(f"{where}: bad value in section {name!r}: {exc}") from exc


def config_from_dict(values: dict[str, Any], *, where: str = "config") -> TrainConfig:
    """Validate a parsed config mapping.

    :param where: names the source in error messages (the file path).
    :raises TrainingConfigError: naming the section and key of the first problem.
    """
    if not isinstance(values, dict):
        raise TrainingConfigError(f"{where}: the top level must be a mapping")
    unknown = sorted(set(values) - set(_SECTIONS) - {"seed"})
    if unknown:
        raise TrainingConfigError(f"{where}: unknown top-level keys {unknown}; expected seed "
                                  f"and {sorted(_SECTIONS)}")
    seed = values.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TrainingConfigError(f"{where}: seed must be an int, got {seed!r}")
    sections = {name: section_from_mapping(name, cls, values.get(name), where)
                for name, cls in _SECTIONS.items()}
    config = TrainConfig(seed=seed, **sections)
    if config.model.init == "hf" and "llm" in config.stage.trainable:
        raise TrainingConfigError(f"{where}: stage.trainable 'llm' with model.init 'hf' would "
                                  f"not be saved (checkpoints refer to model.llm_path); train "
                                  f"'lora' instead")
    return config


def load_config(path: str | Path, *, overrides: dict[str, dict[str, Any]] | None = None
                ) -> TrainConfig:
    """Read a stage YAML file, apply ``{section: {key: value}}`` overrides, validate.

    Relative ``data.root``, ``data.annotations_dir``, ``data.cache_dir`` and
    ``model.checkpoint`` stay relative to the working directory (as given on the command
    line), not to the file.

    :raises TrainingConfigError: when the file cannot be read or a value is invalid.
    """
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TrainingConfigError(f"cannot read the training config {path}: {exc}") from exc
    for section, changes in (overrides or {}).items():
        current = values.get(section) or {}
        if not isinstance(current, dict):
            raise TrainingConfigError(f"{path}: section {section!r} must be a mapping")
        values[section] = {**current, **{k: v for k, v in changes.items() if v is not None}}
    return config_from_dict(values, where=str(path))
