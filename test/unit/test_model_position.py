"""3D position embedding: relative to the scene bounds, so independent of the map origin."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_testutil import make_snapshot

from scene_llm_ros.model import EmptySceneError, SceneLlmConfig, prepare_scene_inputs
from scene_llm_ros.model.position_embedding import scene_origin
from scene_llm_ros.model.scene_tokens import SceneTokenEncoder


def _encoder() -> SceneTokenEncoder:
    torch.manual_seed(0)
    config = SceneLlmConfig(feature_dim=128, scene_dim=64, llm_hidden_size=128)
    return SceneTokenEncoder(config).eval()


def test_origin_is_bounds_centre_in_xy_and_floor_in_z():
    origin = scene_origin(np.array([1.0, -2.0, 0.5]), np.array([5.0, 4.0, 3.0]))
    np.testing.assert_allclose(origin, [3.0, 1.0, 0.5])


def test_scene_embeddings_are_invariant_to_translating_the_whole_scene():
    encoder = _encoder()
    base = prepare_scene_inputs(make_snapshot(128), 128)
    moved = prepare_scene_inputs(make_snapshot(128, offset=(250.0, -80.0, 3.0)), 128)
    with torch.no_grad():
        a = encoder.scene_embeddings(base)
        b = encoder.scene_embeddings(moved)
        points = np.array([[1.0, 2.0, 0.5]])
        pa = encoder.point_embeddings(points, base.origin)
        pb = encoder.point_embeddings(points + [250.0, -80.0, 3.0], moved.origin)
    assert a.shape == (128, 128)
    # float32 positions far from the origin lose ~2e-5 m, hence the tolerance.
    torch.testing.assert_close(a, b, atol=2e-3, rtol=0)
    torch.testing.assert_close(pa, pb, atol=2e-3, rtol=0)


def test_scene_embeddings_depend_on_where_tokens_are_in_the_room():
    encoder = _encoder()
    scene = prepare_scene_inputs(make_snapshot(128), 128)
    snapshot = make_snapshot(128)
    # Same features, positions mirrored in x: relative positions change, embeddings must too.
    mirrored_positions = snapshot.positions * np.array([-1.0, 1.0, 1.0], np.float32)
    mirrored = prepare_scene_inputs(
        dataclasses.replace(snapshot, positions=mirrored_positions,
                            bounds_min=mirrored_positions.min(axis=0),
                            bounds_max=mirrored_positions.max(axis=0)), 128)
    with torch.no_grad():
        difference = (encoder.scene_embeddings(scene)
                      - encoder.scene_embeddings(mirrored)).abs().max()
    assert difference > 1e-3


def test_point_tokens_differ_from_scene_tokens_by_the_type_embedding():
    encoder = _encoder()
    with torch.no_grad():
        relative = torch.tensor([[0.3, -0.2, 1.0]])
        position_only = encoder.projector(encoder.position_embedding(relative)
                                          + encoder.point_type_embedding)
        point = encoder.point_embeddings(np.array([[0.3, -0.2, 1.0]]), np.zeros(3))
    torch.testing.assert_close(point, position_only)


def test_empty_bounds_raise_empty_scene_error():
    with pytest.raises(EmptySceneError, match="not finite"):
        scene_origin(np.full(3, np.nan), np.full(3, np.nan))
