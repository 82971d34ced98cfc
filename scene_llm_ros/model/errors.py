"""Exceptions of the 3D patch language model; each names the bad value in its message."""
from __future__ import annotations

from scene_llm_ros.errors import DataFormatError, SceneLlmError


class EmptySceneError(SceneLlmError):
    """The scene snapshot has no tokens or no bounds yet, so there is nothing to ask about."""


class InvalidQuestionError(SceneLlmError, ValueError):
    """The question (or situation) is empty, not text, or contains a reserved token."""


class UnknownTaskError(SceneLlmError, ValueError):
    """The task name is not one of :data:`scene_llm_ros.model.processing_scene_llm.TASKS`."""


class InvalidPromptPointsError(SceneLlmError, ValueError):
    """Prompt points are not a finite (M, 3) array, or do not match their placeholders."""


class SceneFeatureError(SceneLlmError, ValueError):
    """Snapshot features or positions do not have the shape or values the model expects."""


class CheckpointMismatchError(DataFormatError):
    """A checkpoint's tensors do not match its config (missing, unexpected or wrong shape)."""


class UnsupportedOperationError(SceneLlmError):
    """The requested operation cannot run on this model (e.g. saving a quantized LLM)."""
