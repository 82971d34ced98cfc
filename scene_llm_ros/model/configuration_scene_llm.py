"""Configuration of the 3D patch language model (everything but the LLM's own config)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scene_llm_ros.data.scannet.labels import BENCHMARK_CLASSES
from scene_llm_ros.errors import DataFormatError

#: Version of the prompt layout of :mod:`scene_llm_ros.model.processing_scene_llm`; a checkpoint
#: trained with another layout would read prompts it has never seen.
PROMPT_FORMAT_VERSION = 1

DEFAULT_SYSTEM_PROMPT = ("You are a robot's perception assistant. You see a 3D scene as tokens "
                         "and answer questions about it briefly.")


#: The fusion settings a model's scene tokens depend on (``FusionConfig`` field names).
SCENE_TOKEN_SETTINGS = ("patch_voxel_size_m", "max_patch_tokens")


@dataclass
class SceneLlmConfig:
    """Every knob of the scene side of the model, with its default.

    :ivar feature_dim: channels C of the snapshot's patch features.
    :ivar scene_dim: width of lifted features and of the 3D position embedding.
    :ivar llm_hidden_size: hidden size of the LLM the projector maps into.
    :ivar position_frequencies: Fourier frequencies per axis of the position embedding.
    :ivar min_wavelength_m: shortest Fourier wavelength, metres (about the token spacing).
    :ivar max_wavelength_m: longest Fourier wavelength, metres (larger than a room).
    :ivar grounding_dim: width of the grounding head's query/key space.
    :ivar box_offset_scale_m: metres per unit of the regressed box-centre offset.
    :ivar labels: label vocabulary of the grounding head's classifier, in class-index order.
    :ivar prompt_format_version: :data:`PROMPT_FORMAT_VERSION` the checkpoint was trained with.
    :ivar system_prompt: system message placed before the scene tokens.
    :ivar max_new_tokens: default answer length limit.
    :ivar prefix_cache_entries: scene prefixes (KV caches) kept for reuse.
    :ivar patch_encoder: ``{"type": "builtin"}`` (weights in ``patch_encoder/``) or
        ``{"type": "hf", "path": DIR, "layer": -2, "image_size": None}`` for a local vision
        tower.
    :ivar llm_path: None when the LLM and tokenizer are stored in the checkpoint's ``llm/``,
        else the path of an external local Hugging Face LLM directory.
    :ivar token_classes: the grounding head also classifies every scene token and adds its
        agreement with the query's class to the matching score.
    :ivar scene_tokens: the fusion settings of the scene tokens the model was trained on
        (``patch_voxel_size_m``, ``max_patch_tokens``); fusion nodes feeding the model adopt
        them. Empty: any.
    :ivar object_tokens: how many of the semantic map's largest class segments enter the
        prompt as object tokens after the patch tokens (class, colour, size and place of each,
        as Chat-Scene's object tokens); 0: none.
    :ivar object_classes: the semantic map classes the object tokens' one-hot class is over
        (the patch encoder's classes the model was trained with).
    :ivar referent_tokens: how many of the segments the segment listener scores highest for
        the question end the prompt as referent tokens (each an object token plus its rank
        and the listener's probability, the best last); 0: none. Needs the segment listener.
    """

    feature_dim: int = 128
    scene_dim: int = 256
    llm_hidden_size: int = 256
    position_frequencies: int = 8
    min_wavelength_m: float = 0.2
    max_wavelength_m: float = 25.6
    grounding_dim: int = 256
    box_offset_scale_m: float = 0.5
    labels: list[str] = field(default_factory=lambda: list(BENCHMARK_CLASSES))
    prompt_format_version: int = PROMPT_FORMAT_VERSION
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_new_tokens: int = 128
    prefix_cache_entries: int = 4
    patch_encoder: dict = field(default_factory=lambda: {"type": "builtin"})
    llm_path: str | None = None
    scene_tokens: dict = field(default_factory=dict)
    token_classes: bool = False
    object_tokens: int = 0
    object_classes: list[str] = field(default_factory=list)
    referent_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("feature_dim", "scene_dim", "llm_hidden_size", "position_frequencies",
                     "grounding_dim", "max_new_tokens", "prefix_cache_entries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SceneLlmConfig.{name} must be a positive int, got {value!r}")
        if not 0 < self.min_wavelength_m < self.max_wavelength_m:
            raise ValueError(f"need 0 < min_wavelength_m < max_wavelength_m, got "
                             f"{self.min_wavelength_m} and {self.max_wavelength_m}")
        if self.box_offset_scale_m <= 0:
            raise ValueError(f"box_offset_scale_m must be > 0, got {self.box_offset_scale_m}")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be a non-empty list without duplicates, got "
                             f"{self.labels}")
        if self.prompt_format_version != PROMPT_FORMAT_VERSION:
            raise ValueError(f"prompt_format_version {self.prompt_format_version} is not "
                             f"supported by this code (version {PROMPT_FORMAT_VERSION})")
        encoder_type = self.patch_encoder.get("type")
        if encoder_type not in ("builtin", "hf"):
            raise ValueError(f"patch_encoder.type must be 'builtin' or 'hf', got "
                             f"{encoder_type!r}")
        if encoder_type == "hf" and not self.patch_encoder.get("path"):
            raise ValueError("patch_encoder of type 'hf' needs a 'path'")
        for name in ("object_tokens", "referent_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if (self.object_tokens or self.referent_tokens) and (
                not self.object_classes
                or len(set(self.object_classes)) != len(self.object_classes)):
            raise ValueError(f"object and referent tokens need object_classes without "
                             f"duplicates, got {self.object_classes}")
        unknown = sorted(set(self.scene_tokens) - set(SCENE_TOKEN_SETTINGS))
        if unknown:
            raise ValueError(f"scene_tokens may only set {list(SCENE_TOKEN_SETTINGS)}, got "
                             f"{unknown}")

    def to_json_file(self, path: Path) -> None:
        """Write the config as indented JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def from_json_file(cls, path: Path) -> SceneLlmConfig:
        """Read a config written by :meth:`to_json_file`.

        :raises DataFormatError: when the file is missing, not JSON, or has unknown or invalid
            fields.
        """
        path = Path(path)
        try:
            values = json.loads(path.read_text())
            return cls(**values)
        except (OSError, json.JSONDecodeError, TypeError, ValueError) as exc:
            raise DataFormatError(f"cannot read the scene LLM config {path}: {exc}") from exc
