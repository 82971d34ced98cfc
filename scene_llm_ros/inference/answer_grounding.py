"""Where the objects of an answer are in the fused scene.

The inference engine and offline evaluation both ground answers here, so a box is chosen
the same way wherever it is scored.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from scene_llm_ros.grounding.object_geometry import GroundedGeometry
from scene_llm_ros.grounding.proposals import ObjectProposal
from scene_llm_ros.grounding.snapshot_grounder import SnapshotGrounder
from scene_llm_ros.model.modeling_scene_llm import SceneLlm
from scene_llm_ros.model.outputs import GroundedObject

#: The task whose single referent the segment listener picks.
LISTENER_TASK = "ground"


def ground_answer(model: SceneLlm, grounder: SnapshotGrounder, objects: list[GroundedObject],
                  *, question: str, task: str) -> list[tuple[str, GroundedGeometry]]:
    """(class, geometry) of each object of an answer.

    An answer that refers to one object (``task`` ``ground``) takes the segment the model's
    segment listener scores highest for the question, when the model has a listener and the
    snapshot a semantic map of the listener's classes; otherwise, and for every other answer,
    each predicted box snaps to a segment of its predicted class
    (:meth:`SnapshotGrounder.ground`). When the model has a box completer of the map's
    classes, an object grounded on a segment gets the completed box (its points stay the
    observed ones).
    """
    listener = model.segment_listener
    if listener is not None and task == LISTENER_TASK and len(objects) == 1:
        features = grounder.listener_segments(listener.config.class_names,
                                              listener.config.max_segments)
        if features is not None and len(features.segments):
            scores = listener.scores(model.question_ids(question), features)
            segment = features.segments[int(np.argmax(scores))]
            return [(segment.label, _completed(model, grounder, segment,
                                               grounder.ground_segment(segment)))]
    grounded = []
    for obj in objects:
        segment = grounder.segment_for(obj.label, obj.center, obj.size)
        if segment is None:
            grounded.append((obj.label, grounder.ground(obj.label, obj.center, obj.size)))
        else:
            grounded.append((obj.label, _completed(model, grounder, segment,
                                                   grounder.ground_segment(segment))))
    return grounded


def _completed(model: SceneLlm, grounder: SnapshotGrounder, segment: ObjectProposal,
               geometry: GroundedGeometry) -> GroundedGeometry:
    """``geometry`` with the completed box of ``segment`` when the model completes boxes of
    the snapshot's classes."""
    completer = model.box_completer
    if completer is None or not grounder.maps_classes(completer.config.class_names):
        return geometry
    center, size = completer.complete(grounder.completion_inputs([segment])[0], segment.center,
                                      segment.size)
    return dataclasses.replace(geometry, center=center, size=size)
