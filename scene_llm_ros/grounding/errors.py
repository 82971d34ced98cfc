"""Exceptions of the grounding core (box refinement, masks, proposals)."""
from scene_llm_ros.errors import SceneLlmError


class GroundingInputError(SceneLlmError, ValueError):
    """Points, a box, a keyframe or a setting handed to grounding is unusable (says which)."""
