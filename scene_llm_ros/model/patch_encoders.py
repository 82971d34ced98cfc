"""The 2D patch encoder a model's config names (implemented beside the encoders)."""
from scene_llm_ros.fusion.encoders import encoder_from_spec as patch_encoder_from_spec

__all__ = ["patch_encoder_from_spec"]
