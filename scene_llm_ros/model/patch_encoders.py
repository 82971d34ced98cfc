"""The 2D patch encoder a model's config names: built-in CNN or a local HF vision tower."""
from __future__ import annotations

from pathlib import Path

from scene_llm_ros.fusion.encoders import (
    BuiltinEncoderConfig,
    BuiltinPatchEncoder,
    HFVisionPatchEncoder,
    PatchEncoder,
)
from scene_llm_ros.model.checkpoint import PATCH_ENCODER_DIR


def patch_encoder_from_spec(spec: dict, *, checkpoint_dir: str | Path | None = None,
                            device: str = "cpu", seed: int = 0) -> PatchEncoder:
    """Build or load the encoder described by ``SceneLlmConfig.patch_encoder``.

    :param spec: ``{"type": "builtin"}`` or ``{"type": "hf", "path": DIR, "layer": -2,
        "image_size": None}``.
    :param checkpoint_dir: a checkpoint whose ``patch_encoder/`` holds the built-in
        encoder's weights; None builds a fresh seeded built-in encoder.
    :param device: ``"cpu"`` or ``"cuda:N"``.
    :param seed: seed of a fresh built-in encoder.
    :raises DataFormatError: when the weights or the vision tower cannot be read.
    :raises ValueError: for an unknown encoder type.
    """
    kind = spec.get("type")
    if kind == "builtin":
        if checkpoint_dir is not None:
            return BuiltinPatchEncoder.from_pretrained(Path(checkpoint_dir) / PATCH_ENCODER_DIR,
                                                       device=device)
        return BuiltinPatchEncoder(BuiltinEncoderConfig(), seed=seed, device=device)
    if kind == "hf":
        return HFVisionPatchEncoder(spec["path"], layer=int(spec.get("layer", -2)),
                                    image_size=spec.get("image_size"), device=device)
    raise ValueError(f"patch encoder type must be 'builtin' or 'hf', got {kind!r}")
