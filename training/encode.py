"""A sample as the model's teacher-forcing inputs, with the prompt format of inference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scene_llm_ros.grounding.segment_features import SegmentFeatures
from scene_llm_ros.model import GroundingTargets, SceneInputs, SceneLlm, build_training_example
from scene_llm_ros.model.processing_scene_llm import TrainingExample
from scene_llm_ros.model.referents import ReferentInputs
from training.examples import InstructionSample, Objects
from training.objects import ObjectBox


@dataclass
class EncodedSample:
    """Inputs of :meth:`SceneLlm.compute_loss` for one sample.

    :ivar prompt_points: float64 (M, 3) clicked points, scene frame, or None.
    :ivar referents: the listener's segments for the question (models with referent tokens).
    """

    scene: SceneInputs
    example: TrainingExample
    targets: GroundingTargets | None
    prompt_points: np.ndarray | None
    referents: ReferentInputs | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.example.input_ids.numel())


def grounding_targets(boxes: list[ObjectBox], scene_objects: list[ObjectBox] | None = None
                      ) -> GroundingTargets | None:
    """Targets in ``<ground>`` order, with every annotated object of the scene (for token
    classes); None when the answer grounds nothing."""
    if not boxes:
        return None
    everything = None
    if scene_objects:
        everything = (np.stack([b.center for b in scene_objects]),
                      np.stack([b.size for b in scene_objects]),
                      [b.label for b in scene_objects])
    return GroundingTargets(centers=np.stack([b.center for b in boxes]),
                            sizes=np.stack([b.size for b in boxes]),
                            labels=[b.label for b in boxes], scene_objects=everything)


def encode_sample(model: SceneLlm, sample: InstructionSample, scene: SceneInputs,
                  objects: Objects, segments: SegmentFeatures | None = None) -> EncodedSample:
    """Tokenize a sample with :func:`build_training_example` (the inference prompt builder).

    :param segments: the scene's segments as the segment listener reads them, for a model
        with referent tokens (None: the scene has no semantic map).

    :raises ValueError: when the answer's ``<ground>`` tokens and the sample's objects differ
        in number (a template bug, not a data problem).
    """
    points = (None if sample.point_object_id is None
              else objects[sample.point_object_id].center[None, :])
    example = build_training_example(
        model.tokenizer, sample.question, sample.answer, num_scene_tokens=scene.num_tokens,
        task=sample.task, num_points=0 if points is None else len(points),
        situation=sample.situation, num_referents=model.config.referent_tokens,
        system_prompt=model.config.system_prompt)
    if example.num_ground_tokens != len(sample.object_ids):
        raise ValueError(f"sample {sample.sample_id} has {example.num_ground_tokens} <ground> "
                         f"tokens but {len(sample.object_ids)} objects: {sample.answer!r}")
    targets = grounding_targets([objects[i] for i in sample.object_ids],
                                list(objects.values()))
    referents = (model.referent_inputs(segments, sample.question, scene.origin)
                 if model.config.referent_tokens else None)
    return EncodedSample(scene=scene, example=example, targets=targets, prompt_points=points,
                         referents=referents)
