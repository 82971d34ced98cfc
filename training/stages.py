"""Which parameters a stage trains; everything else is frozen.

Groups (``stage.trainable``):

- ``feature_lift``: the scene encoder's feature norm and lift (patch features -> scene width).
- ``position_embedding``: the 3D Fourier position embedding and the prompt-point type vector.
- ``projector``: the two-layer MLP into the LLM's hidden size.
- ``object_tokens``: the object tokens' feature lift and type vector (models with object
  tokens).
- ``referent_tokens``: the object feature lift and the referent tokens' rank and probability
  vectors (models with referent tokens).
- ``grounding_head``: matching, box and label heads.
- ``lora``: LoRA adapters on the LLM (added if the LLM has none yet).
- ``llm``: every LLM weight (full fine-tuning; only sensible for small LLMs).

The built-in patch encoder is not a group: scene tokens are fused once and cached, and fusion
pools encoder features in numpy outside autograd, so encoder gradients do not exist here.
"""
from __future__ import annotations

import logging

from torch import nn

from scene_llm_ros.model import SceneLlm
from scene_llm_ros.model.llm_loading import LORA_DEFAULT_TARGETS, is_lora
from training.config import StageConfig

logger = logging.getLogger(__name__)

_GROUP_PREFIXES = {
    "feature_lift": ("scene_encoder.feature_norm.", "scene_encoder.feature_lift."),
    "position_embedding": ("scene_encoder.position_embedding.",
                           "scene_encoder.point_type_embedding"),
    "projector": ("scene_encoder.projector.",),
    "object_tokens": ("scene_encoder.object_lift.", "scene_encoder.object_type_embedding"),
    "referent_tokens": ("scene_encoder.object_lift.", "scene_encoder.referent_rank_embedding",
                        "scene_encoder.referent_probability_embedding"),
    "grounding_head": ("grounding_head.",),
    "llm": ("llm.",),
}


def _in_group(name: str, group: str) -> bool:
    if group == "lora":
        return name.startswith("llm.") and ".lora_" in name
    return name.startswith(_GROUP_PREFIXES[group])


def apply_stage(model: SceneLlm, stage: StageConfig) -> list[tuple[str, nn.Parameter]]:
    """Freeze the model except the stage's groups, adding LoRA adapters when asked.

    Call it after seeding: fresh LoRA ``A`` matrices draw from the global torch RNG.

    :return: the trainable (name, parameter) pairs in a stable order (optimizer state and
        checkpoints are keyed by these names).
    """
    if "lora" in stage.trainable and not is_lora(model.llm):
        lora = stage.lora
        model.wrap_with_lora(rank=int(lora.get("rank", 16)), alpha=int(lora.get("alpha", 32)),
                             dropout=float(lora.get("dropout", 0.05)),
                             target_modules=tuple(lora.get("target_modules",
                                                           LORA_DEFAULT_TARGETS)))
    trainable = []
    for name, parameter in model.named_parameters():
        wanted = any(_in_group(name, group) for group in stage.trainable)
        parameter.requires_grad_(wanted)
        if wanted:
            trainable.append((name, parameter))
    count = sum(p.numel() for _, p in trainable)
    total = sum(p.numel() for p in model.parameters())
    logger.info("stage %s trains %s: %d of %d parameters (%.2f%%)", stage.name,
                stage.trainable, count, total, 100.0 * count / max(total, 1))
    return trainable
