"""The model a stage starts from: a tiny model built in code, or a previous checkpoint."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from scene_llm_ros.fusion.encoders import encoder_from_spec
from scene_llm_ros.model import SceneLlm, SceneLlmConfig, build_tiny_scene_llm, llm_loading
from scene_llm_ros.model.errors import UnsupportedOperationError
from training.config import TrainConfig
from training.errors import TrainingConfigError

logger = logging.getLogger(__name__)

_TINY_KEYS = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "vocab_size",
              "scene_dim", "grounding_dim", "chat_template", "patch_encoder", "token_classes",
              "object_tokens")


def build_model(config: TrainConfig, corpus: Iterable[str], *,
                checkpoint: str | Path | None = None, device: str = "cpu") -> SceneLlm:
    """Load ``checkpoint`` (resume), else ``model.checkpoint``, else build a new model.

    The tiny model's tokenizer is trained on ``corpus`` and its weights are seeded with the
    run's seed, so every rank builds the same model.

    :raises TrainingConfigError: for unknown ``model.tiny`` keys.
    :raises DataFormatError, CheckpointMismatchError: for an unreadable checkpoint.
    """
    source = checkpoint or (config.model.checkpoint if config.model.init == "checkpoint"
                            else None)
    if source is not None:
        logger.info("loading the model from %s", source)
        model = SceneLlm.from_pretrained(source, device=device)
    elif config.model.init == "hf":
        model = _from_hf_llm(config, device)
    else:
        unknown = sorted(set(config.model.tiny) - set(_TINY_KEYS))
        if unknown:
            raise TrainingConfigError(f"model.tiny has unknown keys {unknown}; known keys are "
                                      f"{list(_TINY_KEYS)}")
        model = build_tiny_scene_llm(list(corpus), seed=config.seed, **config.model.tiny)
        if device != "cpu":
            model.llm.to(device)
            model._place_own_modules(model.llm.dtype)
    if config.model.max_new_tokens is not None:
        model.config.max_new_tokens = int(config.model.max_new_tokens)
    wanted = config.model.referent_tokens
    if wanted and model.config.referent_tokens != wanted:
        if model.config.referent_tokens:
            raise TrainingConfigError(f"model.referent_tokens is {wanted} but the model already "
                                      f"has {model.config.referent_tokens}")
        try:
            model.enable_referent_tokens(wanted)
        except UnsupportedOperationError as exc:
            raise TrainingConfigError(f"model.referent_tokens: {exc}") from exc
    return model


def _from_hf_llm(config: TrainConfig, device: str) -> SceneLlm:
    """A pretrained local LLM with fresh, seeded scene modules and patch encoder."""
    spec = dict(config.model.scene_config.get("patch_encoder", {"type": "builtin"}))
    encoder = encoder_from_spec(spec, seed=config.seed, device=device)
    llm = llm_loading.load_llm(config.model.llm_path, device=device,
                               quantization=config.model.quantization)
    tokenizer = llm_loading.load_tokenizer(config.model.llm_path)
    try:
        scene_config = SceneLlmConfig(**{
            **config.model.scene_config, "patch_encoder": spec,
            "feature_dim": encoder.feature_dim,
            "llm_hidden_size": int(llm.config.get_text_config().hidden_size),
            "llm_path": str(config.model.llm_path),
            # Object tokens carry the classes of the semantic map this encoder's patches give.
            "object_classes": (list(encoder.class_names)
                               if config.model.scene_config.get("object_tokens") else [])})
    except (TypeError, ValueError) as exc:
        raise TrainingConfigError(f"model.scene_config: {exc}") from exc
    return SceneLlm(scene_config, llm, tokenizer, encoder)
