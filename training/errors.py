"""Exceptions of the training package (all derive from the core's ``SceneLlmError``)."""
from __future__ import annotations

from scene_llm_ros.errors import SceneLlmError


class TrainingError(SceneLlmError):
    """Base class of every error the training package raises on purpose."""


class TrainingConfigError(TrainingError, ValueError):
    """A training config file is missing, malformed or has an invalid value (named)."""


class EmptyDatasetError(TrainingError):
    """The configured sources produced no training example (the message says which)."""


class ResumeError(TrainingError):
    """A run cannot be resumed: no complete checkpoint, or it does not match the run."""
