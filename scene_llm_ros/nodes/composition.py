"""fusion_node and inference_node in one process, sharing the scene in memory.

The inference node loads the model first; the fusion node then fills its memory with the
model's own patch encoder and scene-token settings, and the model reads the fusion core's
cached snapshot object directly (no copy, no ScenePatches traffic).
"""
from __future__ import annotations

from dataclasses import dataclass

from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from scene_llm_ros.errors import SceneLlmError
from scene_llm_ros.nodes.fusion_node import FusionNode
from scene_llm_ros.nodes.inference_node import InferenceNode


class CompositionError(SceneLlmError):
    """A node of the composition failed to configure or activate (its log says why)."""


@dataclass
class ComposedNodes:
    fusion: FusionNode
    inference: InferenceNode

    @property
    def nodes(self) -> tuple[FusionNode, InferenceNode]:
        return self.fusion, self.inference


def compose(*, fusion_parameters: list[Parameter] = (),
            inference_parameters: list[Parameter] = (), **node_kwargs) -> ComposedNodes:
    """Create, configure and activate both nodes; ``node_kwargs`` (``context``,
    ``namespace``...) go to both.

    :raises CompositionError: when a node fails a transition; nodes created so far are
        destroyed.
    """
    holder: list[FusionNode] = []

    def snapshot():
        core = holder[0].fusion if holder else None
        return core.snapshot() if core is not None else None

    inference = InferenceNode(snapshot_source=snapshot,
                              parameter_overrides=list(inference_parameters), **node_kwargs)
    created = [inference]
    try:
        if inference.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise CompositionError("inference_node failed to configure (could the model be "
                                   "loaded? its log above says why)")
        model = inference.engine.model
        fusion = FusionNode(encoder=model.patch_encoder, scene_tokens=model.config.scene_tokens,
                            parameter_overrides=list(fusion_parameters), **node_kwargs)
        created.append(fusion)
        holder.append(fusion)
        if fusion.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise CompositionError("fusion_node failed to configure (its log above says why)")
        for node in (fusion, inference):
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                raise CompositionError(f"{node.get_name()} failed to activate")
    except CompositionError:
        for node in created:
            node.destroy_node()
        raise
    return ComposedNodes(fusion, inference)
