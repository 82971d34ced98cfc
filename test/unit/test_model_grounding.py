"""Grounding head: boxes in the scene frame, matching targets, and trainable losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from model_testutil import CORPUS, make_snapshot

from scene_llm_ros.model import (
    GROUND_TOKEN,
    GroundingTargets,
    LossInput,
    build_tiny_scene_llm,
    build_training_example,
    grounding_loss,
    prepare_scene_inputs,
)
from scene_llm_ros.model.grounding import GroundingHead
from scene_llm_ros.model.grounding_loss import (
    axis_aligned_iou,
    generalized_iou,
    matching_targets,
)


def _grid_positions() -> torch.Tensor:
    """(64, 3) tokens on a 4x4x4 grid with 1 m spacing, starting at (10, 20, 0)."""
    axis = torch.arange(4, dtype=torch.float32)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    return grid + torch.tensor([10.0, 20.0, 0.0])


def test_boxes_are_regressed_from_the_matched_token_in_the_scene_frame():
    torch.manual_seed(0)
    head = GroundingHead(32, 16, 5, box_offset_scale_m=0.5)
    positions = _grid_positions()
    scene_hidden = torch.randn(64, 32)
    query = torch.randn(3, 32)
    prediction = head(query, scene_hidden, positions)
    assert prediction.token_logits.shape == (3, 64)
    assert prediction.label_logits.shape == (3, 5)
    assert torch.equal(prediction.anchor_index, prediction.token_logits.argmax(dim=-1))
    offset = prediction.centers - positions[prediction.anchor_index]
    expected = head.box(torch.cat([head.query(query),
                                   head.key(scene_hidden)[prediction.anchor_index]], -1))
    torch.testing.assert_close(offset, expected[:, :3] * 0.5)
    # The same scene moved by 100 m gives boxes moved by 100 m (scene frame output).
    shifted = head(query, scene_hidden, positions + 100.0)
    torch.testing.assert_close(shifted.centers, prediction.centers + 100.0)
    torch.testing.assert_close(shifted.sizes, prediction.sizes)
    scores = prediction.scores(positions)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_matching_targets_cover_tokens_inside_the_box_or_the_nearest_one():
    positions = _grid_positions()
    centers = torch.tensor([[11.0, 21.0, 1.5], [30.0, 30.0, 30.0]])
    sizes = torch.tensor([[1.2, 1.2, 1.2], [0.1, 0.1, 0.1]])
    distribution, anchor = matching_targets(positions, centers, sizes)
    inside = ((positions - centers[0]).abs() <= 0.6).all(dim=-1)
    assert int(inside.sum()) == 2  # z = 1 and z = 2 at (11, 21)
    torch.testing.assert_close(distribution[0], inside.float() / 2)
    assert distribution[1].sum() == 1 and distribution[1, 63] == 1  # far box: nearest token
    assert inside[anchor[0]] and anchor[1] == 63


def test_iou_of_identical_boxes_is_one_and_of_disjoint_boxes_zero():
    centers = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    sizes = torch.tensor([[1.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    others = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    torch.testing.assert_close(axis_aligned_iou(centers, sizes, others, sizes),
                               torch.tensor([1.0, 0.0]))


def test_generalized_iou_counts_the_empty_part_of_the_enclosing_box():
    unit = torch.ones(3, 3)
    centers = torch.zeros(3, 3)
    others = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    other_sizes = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [2.0, 1.0, 1.0]])
    # Identical: 1. A gap of 1 between two unit cubes: IoU 0, enclosing 3, union 2. A cube
    # inside a box twice its length: IoU 0.5, nothing of the enclosing box is empty.
    torch.testing.assert_close(generalized_iou(centers, unit, others, other_sizes),
                               torch.tensor([1.0, -1.0 / 3.0, 0.5]))
    torch.testing.assert_close(generalized_iou(centers, unit, others, other_sizes)[2],
                               axis_aligned_iou(centers, unit, others, other_sizes)[2])
    moved = torch.tensor([[3.0, 0.0, 0.0]], requires_grad=True)
    generalized_iou(moved, unit[:1], centers[:1], unit[:1]).sum().backward()
    assert moved.grad[0, 0] < 0  # disjoint boxes are still pulled together


def test_losses_are_finite_and_decrease_on_a_toy_target():
    torch.manual_seed(0)
    head = GroundingHead(32, 32, 4, box_offset_scale_m=0.5)
    positions = _grid_positions()
    scene_hidden = torch.randn(64, 32)
    query = torch.randn(2, 32)
    centers = torch.tensor([[11.2, 21.0, 1.4], [12.0, 22.3, 0.2]])
    sizes = torch.tensor([[0.8, 0.6, 1.2], [1.5, 0.9, 0.4]])
    labels = torch.tensor([1, 3])
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        losses = grounding_loss(head, query, scene_hidden, positions, centers, sizes, labels)
        assert all(torch.isfinite(v) for v in (losses.total, losses.token, losses.box_l1,
                                                losses.box_iou, losses.label))
        history.append((losses.total.item(), losses.token.item(), losses.box_l1.item(),
                        losses.label.item()))
        optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        optimizer.step()
    first, last = history[0], history[-1]
    assert last[0] < 0.5 * first[0]
    assert last[1] < first[1] and last[2] < first[2] and last[3] < first[3]


def test_loss_rejects_inconsistent_targets():
    head = GroundingHead(8, 8, 2, box_offset_scale_m=0.5)
    positions = _grid_positions()
    with pytest.raises(ValueError, match="2 queries"):
        grounding_loss(head, torch.randn(2, 8), torch.randn(64, 8), positions,
                       torch.zeros(1, 3), torch.ones(1, 3), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="sizes must be > 0"):
        grounding_loss(head, torch.randn(1, 8), torch.randn(64, 8), positions,
                       torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, dtype=torch.long))


def test_model_loss_backpropagates_into_llm_and_scene_modules():
    model = build_tiny_scene_llm(CORPUS, labels=["chair", "table"], seed=1)
    assert model.add_labels(["table", "lamp"]) == 1
    assert model.config.labels == ["chair", "table", "lamp"]
    assert model.grounding_head.label.out_features == 3
    scene = prepare_scene_inputs(make_snapshot(64), model.config.feature_dim)
    example = build_training_example(model.tokenizer, "find the chair and the lamp",
                                     f"the chair {GROUND_TOKEN} and the lamp {GROUND_TOKEN}",
                                     task="ground", num_scene_tokens=64,
                                     system_prompt=model.config.system_prompt)
    targets = GroundingTargets(centers=np.array([[1.0, 1.0, 0.5], [4.0, 3.0, 1.0]]),
                               sizes=np.array([[0.5, 0.5, 1.0], [0.3, 0.3, 0.6]]),
                               labels=["chair", "unknown thing"])
    model.train()
    loss = model.compute_loss(scene, example, targets=targets)
    assert torch.isfinite(loss.total) and loss.grounding is not None
    torch.testing.assert_close(loss.total, loss.language + loss.grounding.total)
    loss.total.backward()
    assert model.scene_encoder.projector[0].weight.grad.abs().sum() > 0
    assert model.grounding_head.key[0].weight.grad.abs().sum() > 0
    assert model.llm.get_input_embeddings().weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="2 <ground> tokens but 1 target"):
        model.compute_loss(scene, example, targets=GroundingTargets(
            centers=targets.centers[:1], sizes=targets.sizes[:1], labels=["chair"]))


def test_prompt_points_reach_the_llm_where_their_placeholders_are():
    model = build_tiny_scene_llm(CORPUS, seed=2)
    scene = prepare_scene_inputs(make_snapshot(32), model.config.feature_dim)
    example = build_training_example(model.tokenizer, "what is this?", "a white cabinet",
                                     task="caption", num_scene_tokens=32, num_points=1,
                                     system_prompt=model.config.system_prompt)
    with torch.no_grad():
        near = model.compute_loss(scene, example, prompt_points=np.array([[1.0, 1.0, 0.5]]))
        far = model.compute_loss(scene, example, prompt_points=np.array([[5.0, 4.0, 2.0]]))
    assert abs(near.language.item() - far.language.item()) > 1e-4
    with pytest.raises(ValueError, match="1 placeholder tokens .* but 2 embeddings"):
        model.compute_loss(scene, example, prompt_points=np.zeros((2, 3)))


def test_a_padded_batch_gives_each_example_its_own_losses_and_gradients():
    model = build_tiny_scene_llm(CORPUS, labels=["chair", "table"], seed=3)
    model.train()
    small = prepare_scene_inputs(make_snapshot(24, seed=1), model.config.feature_dim)
    large = prepare_scene_inputs(make_snapshot(40, seed=2), model.config.feature_dim)
    grounded = build_training_example(model.tokenizer, "find the chair",
                                      f"the chair {GROUND_TOKEN}", task="ground",
                                      num_scene_tokens=40,
                                      system_prompt=model.config.system_prompt)
    targets = GroundingTargets(centers=np.array([[1.0, 1.0, 0.5]]),
                               sizes=np.array([[0.5, 0.5, 1.0]]), labels=["chair"])
    caption = build_training_example(model.tokenizer, "what is this?", "a white cabinet",
                                     task="caption", num_scene_tokens=24, num_points=1,
                                     system_prompt=model.config.system_prompt)
    point = np.array([[1.0, 2.0, 0.5]])
    items = [LossInput(small, caption, prompt_points=point),
             LossInput(large, grounded, targets=targets)]
    alone = [model.compute_loss(small, caption, prompt_points=point),
             model.compute_loss(large, grounded, targets=targets)]
    sum(loss.total for loss in alone).backward()
    expected = model.grounding_head.key[0].weight.grad.clone()
    model.zero_grad()
    batch = model.compute_batch_loss(items)
    sum(loss.total for loss in batch).backward()
    for one, together in zip(alone, batch, strict=True):
        torch.testing.assert_close(together.total, one.total, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(together.language, one.language, atol=1e-5, rtol=1e-5)
    assert batch[0].grounding is None and batch[1].grounding is not None
    torch.testing.assert_close(model.grounding_head.key[0].weight.grad, expected,
                               atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="at least one example"):
        model.compute_batch_loss([])


def _class_scene(generator: torch.Generator, directions: torch.Tensor, tokens: int = 24):
    """Scene tokens whose input embeddings say their class (noisy class directions)."""
    classes = torch.randint(0, len(directions), (tokens,), generator=generator)
    inputs = directions[classes] + 0.3 * torch.randn(tokens, directions.shape[1],
                                                     generator=generator)
    positions = torch.rand(tokens, 3, generator=generator) * 4
    return classes, inputs, positions


def test_token_classes_learn_to_point_the_query_at_tokens_of_its_class():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    directions = torch.randn(5, 32, generator=generator)
    head = GroundingHead(32, 16, 5, box_offset_scale_m=0.5, token_classes=True)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)

    def episode():
        classes, inputs, positions = _class_scene(generator, directions)
        target = int(classes[0])
        # The query states its class; the scene hidden states are noise (an LLM that has
        # blended the tokens), so only the token classes can find the object.
        query = directions[target][None] + 0.3 * torch.randn(1, 32, generator=generator)
        return classes, inputs, positions, target, query, torch.randn(len(classes), 32)

    for _ in range(150):
        classes, inputs, positions, target, query, hidden = episode()
        losses = grounding_loss(head, query, hidden, positions, positions[:1] + 0.0,
                                torch.full((1, 3), 0.05), torch.tensor([target]),
                                scene_inputs=inputs, token_classes=classes)
        optimizer.zero_grad()
        losses.total.backward()
        optimizer.step()
    assert float(losses.token_class) > 0
    hits = 0
    with torch.no_grad():
        for _ in range(50):
            classes, inputs, positions, target, query, hidden = episode()
            prediction = head(query, hidden, positions, scene_inputs=inputs)
            hits += int(classes[prediction.anchor_index[0]] == target)
    assert hits >= 45
    head.add_labels(2)
    assert head.token_label.out_features == head.query_label.out_features == 7


def test_token_class_targets_take_the_smallest_object_holding_each_token():
    model = build_tiny_scene_llm(CORPUS, vocab_size=300, token_classes=True,
                                 labels=["table", "lamp"])
    positions = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0], [5.0, 5.0, 5.0],
                              [3.0, 0.0, 0.5]])
    objects = (np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0], [3.0, 0.0, 0.5]]),
               np.array([[2.0, 2.0, 1.0], [0.3, 0.3, 0.5], [1.0, 1.0, 1.0]]),
               ["table", "lamp", "spaceship"])
    targets = GroundingTargets(centers=objects[0][:1], sizes=objects[1][:1], labels=["table"],
                               scene_objects=objects)
    classes = model._token_class_targets(positions, targets)  # noqa: SLF001
    assert classes.tolist() == [0, 1, -1, -100]  # table, lamp on it, nothing, unknown class
