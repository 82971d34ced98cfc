"""The box completer: it learns whole boxes from the seen part of objects, and grounded
answers get its boxes (their points stay the observed ones)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_testutil import CHAIR_CLASSES as NAMES
from model_testutil import tiny_model, two_chairs_snapshot

from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.geometry.boxes import box_iou
from scene_llm_ros.grounding import SnapshotGrounder
from scene_llm_ros.grounding.segment_features import room_context
from scene_llm_ros.inference.answer_grounding import ground_answer
from scene_llm_ros.model.box_completion import (
    BoxCompleterConfig,
    SegmentBoxCompleter,
    box_deltas,
    complete_box,
)
from scene_llm_ros.model.outputs import GroundedObject
from training.box_completion import (
    BoxCompletionConfig,
    CompletionExamples,
    completion_accuracy,
    completion_loss,
    train_box_completer,
)
from training.errors import TrainingConfigError

DOOR_SIZE = np.array([0.9, 0.1, 2.0])
CHAIR_SIZE = np.array([0.5, 0.5, 0.9])


def _examples(rng: np.random.Generator, count: int) -> CompletionExamples:
    """Doors in a wall (seen whole) and chairs against the room's low-x wall of which only
    the front part, 20-60 % of their depth, was seen."""
    low, high = np.zeros(3), np.array([4.0, 4.0, 2.5])
    inputs, segments, objects = [], [], []
    for _ in range(count):
        is_chair = rng.random() < 0.5
        size = CHAIR_SIZE if is_chair else DOOR_SIZE
        center = np.array([size[0] / 2, rng.uniform(1, 3), size[2] / 2])
        seen_size, seen_center = size.copy(), center.copy()
        if is_chair:
            seen_size[0] = size[0] * rng.uniform(0.2, 0.6)
            seen_center[0] = size[0] - seen_size[0] / 2  # the front, away from the wall
        row = np.zeros(len(NAMES) + 14, np.float32)
        row[NAMES.index("chair" if is_chair else "door")] = 1.0
        row[len(NAMES) + 9:len(NAMES) + 12] = np.log(seen_size + 0.02)
        inputs.append(np.concatenate([row, room_context(seen_center[None], seen_size[None],
                                                        low, high)[0]]))
        segments.append(np.concatenate([seen_center, seen_size]))
        objects.append(np.concatenate([center, size]))
    return CompletionExamples(np.array(inputs, np.float32), np.array(segments),
                              np.array(objects))


def test_deltas_and_completion_are_inverse():
    rng = np.random.default_rng(0)
    center, size = rng.uniform(0, 4, (5, 3)), rng.uniform(0.05, 2, (5, 3))
    target_center, target_size = rng.uniform(0, 4, (5, 3)), rng.uniform(0.05, 2, (5, 3))
    done_center, done_size = complete_box(center, size, box_deltas(center, size, target_center,
                                                                   target_size))
    np.testing.assert_allclose(done_center, target_center, atol=1e-5)
    np.testing.assert_allclose(done_size, target_size, atol=1e-5)
    # Shrinking never gives an empty box.
    assert (complete_box(center, size, np.full((5, 6), -20.0))[1] >= 0.01).all()


def test_the_completer_learns_whole_boxes_from_seen_parts():
    examples = _examples(np.random.default_rng(0), 400)
    held_out = _examples(np.random.default_rng(1), 200)
    before = completion_accuracy(None, held_out)
    completer = train_box_completer(BoxCompletionConfig(steps=400), examples, list(NAMES),
                                    seed=0)
    after = completion_accuracy(completer, held_out)
    # Half the objects are chairs seen at 20-60 % of their depth: IoU 0.2-0.6 as they are.
    assert before["acc@0.5"] < 0.8 and after["acc@0.5"] > 0.95, (before, after)
    assert after["objects"] == 200
    with pytest.raises(TrainingConfigError, match="nothing to learn"):
        train_box_completer(BoxCompletionConfig(), CompletionExamples(
            np.zeros((0, examples.inputs.shape[1]), np.float32), np.zeros((0, 6)),
            np.zeros((0, 6))), list(NAMES), seed=0)


def test_the_iou_loss_weighs_the_centimetres_that_decide_a_thin_boxs_overlap():
    # A picture 3 cm deep seen at its front face: the segment is a 4 cm slab 2 cm in front
    # of it; and a chair seen at half its depth, 10 cm short of its centre.
    segments = torch.tensor([[0.035, 1.0, 1.5, 0.04, 0.6, 0.5],
                             [0.40, 2.0, 0.45, 0.25, 0.5, 0.9]])
    objects = torch.tensor([[0.015, 1.0, 1.5, 0.03, 0.6, 0.5],
                            [0.25, 2.0, 0.45, 0.5, 0.5, 0.9]])
    targets = torch.from_numpy(box_deltas(segments[:, :3].numpy(), segments[:, 3:].numpy(),
                                          objects[:, :3].numpy(), objects[:, 3:].numpy()))
    deltas = torch.zeros(2, 6, requires_grad=True)
    gradients = {}
    for weight in (0.0, 1.0):
        deltas.grad = None
        completion_loss(deltas, targets, segments, objects, weight).backward()
        gradients[weight] = deltas.grad[:, 0].abs().clone()
    # Without the IoU term the picture's 2 cm pull is a fifth of the chair's 15 cm one; with
    # it the picture's is the larger.
    assert gradients[0.0][0] < 0.25 * gradients[0.0][1]
    assert gradients[1.0][0] > gradients[1.0][1]
    assert completion_loss(targets, targets, segments, objects, 1.0) == pytest.approx(
        0.0, abs=1e-5)
    with pytest.raises(TrainingConfigError, match="iou_weight"):
        BoxCompletionConfig(iou_weight=-1.0)


def _fixed_completer(deltas) -> SegmentBoxCompleter:
    """A completer that always answers ``deltas``."""
    completer = SegmentBoxCompleter(BoxCompleterConfig(class_names=list(NAMES), hidden_size=8))
    with torch.no_grad():
        last = completer.net[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor(deltas, dtype=torch.float32))
    return completer.eval()


def test_grounded_answers_get_completed_boxes_and_keep_their_points(tmp_path):
    model = tiny_model()
    snapshot = two_chairs_snapshot()
    grounder = SnapshotGrounder(snapshot)
    chair = grounder.segments[0]
    predicted = [GroundedObject(center=chair.center, size=chair.size, score=1.0, label="chair",
                                token_index=0)]
    plain = ground_answer(model, grounder, predicted, question="the chair", task="qa")
    deltas = [0.1, 0.0, -0.05, np.log(2.0), 0.0, 0.0]
    completer = _fixed_completer(deltas)
    try:
        model.set_box_completer(completer)
        (label, geometry), = ground_answer(model, grounder, predicted, question="the chair",
                                           task="qa")
        center, size = complete_box(chair.center, chair.size, np.array(deltas))
        np.testing.assert_allclose(geometry.center, center)
        np.testing.assert_allclose(geometry.size, size)
        assert size[0] == pytest.approx(2 * chair.size[0] + 0.02)
        np.testing.assert_array_equal(geometry.indices, plain[0][1].indices)
        assert label == "chair"
        # A semantic map of other classes: no completion.
        other = SnapshotGrounder(dataclasses.replace(snapshot, class_names=(
            "chair", "door", "floor", "window")))
        (_, kept), = ground_answer(model, other, predicted, question="the chair", task="qa")
        assert box_iou(kept.center, kept.size, center, size) < 0.99
        np.testing.assert_allclose(kept.center, other.ground("chair", chair.center,
                                                             chair.size).center)
        model.save_pretrained(tmp_path / "model")
        reloaded = type(model).from_pretrained(tmp_path / "model")
        inputs = grounder.completion_inputs([chair])[0]
        assert inputs.shape == (completer.config.input_size,)
        # A segment's inputs do not depend on the segments described with it.
        np.testing.assert_array_equal(grounder.completion_inputs(grounder.segments)[0], inputs)
        np.testing.assert_allclose(
            reloaded.box_completer.complete(inputs, chair.center, chair.size)[0], center)
    finally:
        model.set_box_completer(None)
    with pytest.raises(ValueError, match="reads"):
        completer.complete(np.zeros(3), chair.center, chair.size)
    with pytest.raises(DataFormatError, match="box completer"):
        SegmentBoxCompleter.from_pretrained(tmp_path / "missing")
