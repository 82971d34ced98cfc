"""Referent tokens: the segments the segment listener scores highest for a question end the
prompt, so the answer can read the referred object directly."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_testutil import CHAIR_CLASSES, CORPUS, two_chairs_snapshot
from torch import nn

from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from scene_llm_ros.grounding import SnapshotGrounder
from scene_llm_ros.model import (
    SceneLlm,
    build_prompt,
    build_tiny_scene_llm,
    build_training_example,
)
from scene_llm_ros.model.errors import InvalidQuestionError, UnsupportedOperationError
from scene_llm_ros.model.modeling_scene_llm import LossInput
from scene_llm_ros.model.processing_scene_llm import REFERENT_TOKEN, user_message
from scene_llm_ros.model.segment_listener import SegmentListener, SegmentListenerConfig
from training.config import ModelInitConfig
from training.errors import TrainingConfigError

REFERENTS = 3
QUESTION = "what colour is the chair closest to the door?"


def _model(tmp_path_factory, *, listener: bool = True) -> SceneLlm:
    encoder = BuiltinPatchEncoder(BuiltinEncoderConfig(), seed=0)
    encoder.set_classes(list(CHAIR_CLASSES), nn.Linear(encoder.feature_dim, len(CHAIR_CLASSES)))
    path = tmp_path_factory.mktemp("encoder")
    encoder.save_pretrained(path)
    model = build_tiny_scene_llm(CORPUS, patch_encoder={"type": "builtin", "path": str(path)},
                                 seed=3)
    if listener:
        torch.manual_seed(0)
        model.set_segment_listener(SegmentListener(SegmentListenerConfig(
            vocab_size=len(model.tokenizer), class_names=list(CHAIR_CLASSES),
            hidden_size=32)).eval())
    return model


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> SceneLlm:
    return _model(tmp_path_factory)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> SceneLlm:
    model = _model(tmp_path_factory)
    model.enable_referent_tokens(REFERENTS)
    return model


def test_enabling_keeps_every_weight_and_extends_the_vocabulary(plain, model):
    vocabulary = len(plain.tokenizer)
    assert len(model.tokenizer) == vocabulary + 1
    assert model.token_ids.referent == model.tokenizer.convert_tokens_to_ids(REFERENT_TOKEN)
    assert model.segment_listener.config.vocab_size == len(model.tokenizer)
    assert model.config.object_classes == list(CHAIR_CLASSES)
    kept = plain.scene_encoder.state_dict()
    for name, tensor in model.scene_encoder.state_dict().items():
        if name in kept:
            torch.testing.assert_close(tensor, kept[name])
    # Question ids, and so the listener's scores, do not change.
    assert model.question_ids(QUESTION) == plain.question_ids(QUESTION)
    with pytest.raises(UnsupportedOperationError, match="already"):
        model.enable_referent_tokens(2)


def test_referent_tokens_need_a_listener(tmp_path_factory):
    with pytest.raises(UnsupportedOperationError, match="segment listener"):
        _model(tmp_path_factory, listener=False).enable_referent_tokens(REFERENTS)
    with pytest.raises(TrainingConfigError, match="referent_tokens"):
        ModelInitConfig(referent_tokens=-1)


def test_referents_are_the_listeners_best_segments_and_padding(model):
    snapshot = two_chairs_snapshot()
    grounder = SnapshotGrounder(snapshot)
    segments = grounder.segment_features(model.segment_listener.config.max_segments)
    origin = model.scene_inputs(snapshot).origin
    referents = model.referent_inputs(segments, QUESTION, origin)
    scores = model.segment_listener.scores(model.question_ids(QUESTION), segments)
    order = np.argsort(-scores)
    assert len(segments.segments) == 2 < REFERENTS
    np.testing.assert_array_equal(referents.features[:2].numpy(), segments.objects[order])
    np.testing.assert_allclose(referents.probabilities[:2].numpy(), np.exp(scores[order]),
                               rtol=1e-5)
    assert float(referents.probabilities.sum()) == pytest.approx(1.0, rel=1e-5)
    # The third is padding: no features, no probability, at the origin.
    assert not referents.features[2].any() and referents.probabilities[2] == 0
    assert not referents.relative[2].any()
    # A scene without a semantic map has padding only.
    bare = model.referent_inputs(None, QUESTION, origin)
    assert not bare.features.any() and not bare.probabilities.any()


def test_the_prompt_ends_with_the_referents_and_reserves_their_token(model):
    prompt = build_prompt(model.tokenizer, QUESTION, task="qa", num_scene_tokens=4,
                          num_referents=REFERENTS, system_prompt=model.config.system_prompt)
    plain = build_prompt(model.tokenizer, QUESTION, task="qa", num_scene_tokens=4,
                         system_prompt=model.config.system_prompt)
    assert prompt.suffix_ids == plain.suffix_ids + [model.token_ids.referent] * REFERENTS
    with pytest.raises(InvalidQuestionError, match="reserved"):
        user_message(f"what is {REFERENT_TOKEN}?")


def _qa_example(model: SceneLlm):
    """The two-chairs snapshot, its inputs, a colour question's example and its referents."""
    snapshot = two_chairs_snapshot()
    grounder = SnapshotGrounder(snapshot)
    inputs = model.scene_inputs(snapshot, grounder)
    example = build_training_example(
        model.tokenizer, QUESTION, "red", task="qa", num_scene_tokens=inputs.num_tokens,
        num_referents=REFERENTS, system_prompt=model.config.system_prompt)
    segments = grounder.segment_features(model.segment_listener.config.max_segments)
    return snapshot, grounder, inputs, example, segments


def test_answers_depend_on_the_referents_and_reload_identically(model, tmp_path):
    snapshot, grounder, inputs, prompt_ids, segments = _qa_example(model)
    assert int((prompt_ids.input_ids == model.token_ids.referent).sum()) == REFERENTS
    referents = model.referent_inputs(segments, QUESTION, inputs.origin)
    swapped = dataclasses.replace(referents, features=referents.features[[1, 0, 2]],
                                  relative=referents.relative[[1, 0, 2]])
    with torch.no_grad():
        first, other = (model.compute_batch_loss([LossInput(inputs, prompt_ids,
                                                            referents=r)])[0].language
                        for r in (referents, swapped))
    assert float(first) != pytest.approx(float(other), abs=1e-6)
    with pytest.raises(ValueError, match="no referents"):
        model.compute_loss(inputs, prompt_ids)
    answer = model.answer(snapshot, QUESTION, task="qa", max_new_tokens=3, grounder=grounder)
    model.save_pretrained(tmp_path / "model")
    reloaded = SceneLlm.from_pretrained(tmp_path / "model")
    assert reloaded.config.referent_tokens == REFERENTS
    assert reloaded.token_ids.referent == model.token_ids.referent
    again = reloaded.answer(snapshot, QUESTION, task="qa", max_new_tokens=3)
    assert again.text == answer.text
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded.compute_batch_loss([LossInput(inputs, prompt_ids,
                                                   referents=referents)])[0].language, first)


def test_the_loss_trains_the_referent_vectors_and_the_listener_stays_in_eval_mode(model):
    _, _, inputs, example, segments = _qa_example(model)
    model.train()
    try:
        assert not model.segment_listener.training
        referents = model.referent_inputs(segments, QUESTION, inputs.origin)
        model.compute_batch_loss([LossInput(inputs, example, referents=referents)]
                                 )[0].total.backward()
        encoder = model.scene_encoder
        assert encoder.referent_rank_embedding.grad[:2].abs().sum() > 0
        assert encoder.referent_probability_embedding.grad.abs().sum() > 0
        assert encoder.object_lift.weight.grad.abs().sum() > 0
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
