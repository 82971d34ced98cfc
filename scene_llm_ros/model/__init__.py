"""The 3D patch language model: configuration, modeling and processing (no ROS)."""
from scene_llm_ros.model.configuration_scene_llm import SceneLlmConfig
from scene_llm_ros.model.errors import (
                                        CheckpointMismatchError,
                                        EmptySceneError,
                                        InvalidPromptPointsError,
                                        InvalidQuestionError,
                                        SceneFeatureError,
                                        UnknownTaskError,
                                        UnsupportedOperationError,
)
from scene_llm_ros.model.grounding_loss import GroundingLosses, grounding_loss
from scene_llm_ros.model.modeling_scene_llm import (
                                        GroundingTargets,
                                        LossInput,
                                        SceneLlm,
                                        SceneLlmLoss,
)
from scene_llm_ros.model.outputs import Answer, GroundedObject
from scene_llm_ros.model.processing_scene_llm import (
                                        GROUND_TOKEN,
                                        POINT_TOKEN,
                                        SCENE_TOKEN,
                                        TASKS,
                                        build_prompt,
                                        build_training_example,
)
from scene_llm_ros.model.scene_tokens import SceneInputs, prepare_scene_inputs
from scene_llm_ros.model.tiny import build_tiny_scene_llm

__all__ = [
    "GROUND_TOKEN", "POINT_TOKEN", "SCENE_TOKEN", "TASKS", "Answer", "CheckpointMismatchError",
    "EmptySceneError", "GroundedObject", "GroundingLosses", "GroundingTargets",
    "InvalidPromptPointsError", "InvalidQuestionError", "LossInput", "SceneFeatureError",
    "SceneInputs", "SceneLlm", "SceneLlmConfig", "SceneLlmLoss", "UnknownTaskError",
    "UnsupportedOperationError", "build_prompt", "build_tiny_scene_llm",
    "build_training_example", "grounding_loss", "prepare_scene_inputs",
]
