"""Exceptions of the replay evaluation (all :class:`~scene_llm_ros.errors.SceneLlmError`)."""
from scene_llm_ros.errors import DataFormatError, SceneLlmError


class QuestionFileError(DataFormatError):
    """A question file cannot be read or used (the message names the file and the record)."""


class GroundTruthError(SceneLlmError):
    """Grounding questions lack ground-truth boxes, or an object id is not in the GT scene."""


class ReplayError(SceneLlmError):
    """A bag cannot be replayed: no usable posed frame, or the nodes could not start."""
