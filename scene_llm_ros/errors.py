"""Exceptions raised by the ROS-free core; nodes turn them into error codes."""


class SceneLlmError(Exception):
    """Base class of every error the scene_llm_ros core raises on purpose."""


class DataFormatError(SceneLlmError):
    """A file is missing, truncated, or not in the format it claims (the message names it)."""


class InvalidFrameError(SceneLlmError):
    """An RGB-D frame, its intrinsics or its pose cannot be used (the message says why)."""
