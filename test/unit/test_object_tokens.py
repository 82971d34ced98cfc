"""Object tokens: the semantic map's class segments enter the prompt after the patch tokens,
carrying each segment's class, colour, size and place."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_testutil import CHAIR_CLASSES, COLOURS, CORPUS, two_chairs_snapshot
from torch import nn

from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from scene_llm_ros.grounding import SnapshotGrounder
from scene_llm_ros.grounding.segment_features import SEGMENT_GEOMETRY_FEATURES
from scene_llm_ros.inference.engine import EngineConfig, InferenceEngine
from scene_llm_ros.inference.requests import AskRequest, ErrorCode
from scene_llm_ros.model import (
    GROUND_TOKEN,
    GroundingTargets,
    SceneLlm,
    SceneLlmConfig,
    build_tiny_scene_llm,
    build_training_example,
)
from scene_llm_ros.model.errors import SceneFeatureError

MAX_OBJECTS = 8


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> SceneLlm:
    """A tiny model whose patch encoder classifies into the two-chairs snapshot's classes."""
    encoder = BuiltinPatchEncoder(BuiltinEncoderConfig(), seed=0)
    encoder.set_classes(list(CHAIR_CLASSES), nn.Linear(encoder.feature_dim, len(CHAIR_CLASSES)))
    path = tmp_path_factory.mktemp("encoder")
    encoder.save_pretrained(path)
    return build_tiny_scene_llm(CORPUS, patch_encoder={"type": "builtin", "path": str(path)},
                                object_tokens=MAX_OBJECTS, seed=3)


def _recoloured(snapshot, chair_x: float, colour: tuple[int, int, int]):
    """The snapshot with the chair starting at ``chair_x`` painted ``colour``."""
    chair = ((snapshot.point_classes == CHAIR_CLASSES.index("chair"))
             & (np.abs(snapshot.points[:, 0] - chair_x - 0.25) < 0.3))
    colors = snapshot.colors.copy()
    colors[chair] = colour
    return dataclasses.replace(snapshot, colors=colors)


def test_object_tokens_follow_the_patch_tokens_and_carry_the_segments(model):
    snapshot = two_chairs_snapshot()
    inputs = model.scene_inputs(snapshot)
    grounder = SnapshotGrounder(snapshot)
    segments = grounder.segment_features(MAX_OBJECTS).segments
    assert model.config.object_classes == list(CHAIR_CLASSES)
    assert inputs.num_patch_tokens == len(snapshot.positions) == 16
    assert inputs.object_features.shape == (len(segments),
                                            len(CHAIR_CLASSES) + SEGMENT_GEOMETRY_FEATURES)
    assert inputs.num_tokens == 16 + len(segments) and len(segments) == 2
    with torch.no_grad():
        embeddings = model.scene_embeddings(inputs)
        green = _recoloured(snapshot, 1.0, COLOURS["green"])
        recoloured = model.scene_embeddings(model.scene_inputs(green))
    assert embeddings.shape == (inputs.num_tokens, model.config.llm_hidden_size)
    # Painting one chair changes its object token only (patch features come from images).
    changed = (embeddings - recoloured).abs().amax(dim=-1) > 1e-6
    red_row = int(np.argmin([abs(s.center[0] - 1.25) for s in segments]))
    assert changed.tolist() == [i == 16 + red_row for i in range(inputs.num_tokens)]
    assert model.scene_inputs(green).fingerprint != inputs.fingerprint
    # A map without classes gives no object tokens; one of other classes is refused.
    bare = model.scene_inputs(dataclasses.replace(snapshot, point_classes=None,
                                                  point_object_classes=None))
    assert bare.num_tokens == 16
    with pytest.raises(SceneFeatureError, match="object classes"):
        model.scene_inputs(dataclasses.replace(snapshot, class_names=("chair", "door", "floor",
                                                                      "window")))


def test_the_answer_prefix_holds_the_object_tokens_and_is_keyed_by_them(model):
    snapshot = two_chairs_snapshot()
    grounder = SnapshotGrounder(snapshot)
    model.clear_prefix_cache()
    first = model.answer(snapshot, "what colour is the chair?", task="qa", max_new_tokens=2,
                         grounder=grounder)
    again = model.answer(snapshot, "what colour is the chair?", task="qa", max_new_tokens=2,
                         grounder=grounder)
    assert not first.prefix_cache_hit and again.prefix_cache_hit
    assert again.text == first.text
    # Same version, other colours: a different prefix, not a stale cache hit.
    green = _recoloured(snapshot, 3.0, COLOURS["green"])
    assert not model.answer(green, "what colour is the chair?", task="qa",
                            max_new_tokens=2).prefix_cache_hit
    # The engine passes its per-snapshot grounder, so segments are computed once.
    engine = InferenceEngine(lambda: snapshot, EngineConfig(max_new_tokens=2), model=model)
    engine.start()
    try:
        outcome = engine.submit(AskRequest("what colour is the chair?", task="qa")
                                ).result(timeout=60)
    finally:
        engine.stop()
    assert outcome.error_code == ErrorCode.NONE and outcome.prefix_cache_hit, outcome.message
    assert MAX_OBJECTS in engine._grounder._features  # noqa: SLF001


def test_the_loss_trains_the_object_tokens_and_grounds_on_patch_tokens(model):
    snapshot = two_chairs_snapshot()
    inputs = model.scene_inputs(snapshot)
    example = build_training_example(model.tokenizer, "find the chair", f"chair {GROUND_TOKEN}",
                                     task="ground", num_scene_tokens=inputs.num_tokens,
                                     system_prompt=model.config.system_prompt)
    targets = GroundingTargets(centers=np.array([[1.25, 1.25, 0.5]]),
                               sizes=np.array([[0.5, 0.5, 0.8]]), labels=["chair"])
    model.train()
    try:
        loss = model.compute_loss(inputs, example, targets=targets)
        loss.total.backward()
        assert loss.grounding is not None and torch.isfinite(loss.total)
        assert model.scene_encoder.object_lift.weight.grad.abs().sum() > 0
        assert model.scene_encoder.object_type_embedding.grad.abs().sum() > 0
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_object_tokens_survive_a_checkpoint_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path / "model")
    reloaded = SceneLlm.from_pretrained(tmp_path / "model")
    assert reloaded.config.object_tokens == MAX_OBJECTS
    inputs = model.scene_inputs(two_chairs_snapshot())
    with torch.no_grad():
        torch.testing.assert_close(reloaded.scene_embeddings(inputs),
                                   model.scene_embeddings(inputs))


def test_object_tokens_need_their_classes():
    with pytest.raises(ValueError, match="object_classes"):
        SceneLlmConfig(object_tokens=4)
    with pytest.raises(ValueError, match="object_tokens"):
        SceneLlmConfig(object_tokens=-1)
    with pytest.raises(ValueError, match="object_classes"):
        build_tiny_scene_llm(CORPUS, object_tokens=4)  # its fresh encoder classifies nothing
