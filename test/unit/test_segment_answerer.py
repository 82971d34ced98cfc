"""The segment answerer: that it learns to answer from segments (colour of a related object,
counts, existence), and that the scene LLM answers short questions with it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_testutil import CHAIR_CLASSES as NAMES
from model_testutil import COLOURS, force_token, make_snapshot, tiny_model, two_chairs_snapshot

from scene_llm_ros.grounding import SnapshotGrounder
from scene_llm_ros.grounding.proposals import ObjectProposal
from scene_llm_ros.grounding.segment_features import (
    COLOUR_FEATURES,
    PAIR_FEATURES,
    segment_features,
)
from scene_llm_ros.model.errors import CheckpointMismatchError
from scene_llm_ros.model.segment_answerer import (
    SegmentAnswerer,
    SegmentAnswererConfig,
    answerer_question,
)
from scene_llm_ros.model.segment_listener import SegmentListener, SegmentListenerConfig

WORDS = ["what", "colour", "is", "the", "chair", "closest", "to", "door", "how", "many",
         "chairs", "are", "there", "a"]
ANSWERS = ["red", "blue", "green", "1", "2", "3", "4", "yes", "no"]


def _box(points: list, label: str, center, size, rng) -> ObjectProposal:
    center, size = np.asarray(center, float), np.asarray(size, float)
    start = sum(len(p) for p in points)
    points.append(center + (rng.random((30, 3)) - 0.5) * size)
    return ObjectProposal(np.arange(start, start + 30), center, size, label)


def _question(rng: np.random.Generator):
    """A room of one to four chairs (random colours) and maybe a door, one question about it,
    its answer index, the segment it is about and its anchor (-1: none in particular)."""
    points: list = []
    has_door = rng.random() < 0.7
    segments = [_box(points, "door", [rng.uniform(0, 4), 0.0, 1.0], [0.9, 0.1, 2.0], rng)] \
        if has_door else []
    chairs = [_box(points, "chair", [rng.uniform(0, 4), rng.uniform(0.5, 4), 0.45],
                   [0.5, 0.5, 0.9], rng) for _ in range(int(rng.integers(1, 5)))]
    colours = [str(rng.choice(list(COLOURS))) for _ in chairs]
    cloud = np.concatenate(points)
    colors = np.zeros((len(cloud), 3), np.uint8)
    for chair, name in zip(chairs, colours, strict=True):
        colors[chair.indices] = COLOURS[name]
    features = segment_features(segments + chairs, cloud, colors, NAMES, floor_z=0.0,
                                max_segments=8)
    kind = int(rng.integers(3))
    if kind == 0 and not has_door:
        return None
    if kind == 0:
        distance = [np.linalg.norm(c.center[:2] - segments[0].center[:2]) for c in chairs]
        order = np.argsort(distance)
        if len(chairs) > 1 and distance[order[1]] - distance[order[0]] < 0.5:
            return None
        words = "what colour is the chair closest to the door"
        answer, focus, anchor = colours[int(order[0])], 1 + int(order[0]), 0
    elif kind == 1:
        words, answer, focus, anchor = "how many chairs are there", str(len(chairs)), -1, -1
    else:
        words, answer, focus, anchor = "is there a door", "yes" if has_door else "no", -1, -1
    return features, words.split(), ANSWERS.index(answer), focus, anchor, kind


def _questions(rng, count):
    out = []
    while len(out) < count:
        question = _question(rng)
        if question is not None:
            out.append(question)
    return out


def _batch(questions):
    """Padded inputs, answer, focus and anchor targets."""
    count = max(len(f.segments) for f, *_ in questions)
    length = max(len(words) for _, words, *_ in questions)
    ids = torch.full((len(questions), length), -1)
    segments = torch.zeros(len(questions), count, questions[0][0].objects.shape[1])
    pairs = torch.zeros(len(questions), count, count, PAIR_FEATURES)
    mask = torch.zeros(len(questions), count, dtype=torch.bool)
    colours = torch.zeros(len(questions), count, COLOUR_FEATURES)
    for row, (features, words, *_) in enumerate(questions):
        n = len(features.segments)
        ids[row, :len(words)] = torch.tensor([WORDS.index(w) for w in words])
        segments[row, :n] = torch.from_numpy(features.objects)
        pairs[row, :n, :n] = torch.from_numpy(features.pairs)
        mask[row, :n] = True
        colours[row, :n] = torch.from_numpy(features.colours)
    return ids, segments, pairs, mask, colours, torch.tensor([q[2] for q in questions]), \
        torch.tensor([q[3] for q in questions]), torch.tensor([q[4] for q in questions])


def test_the_answerer_learns_colours_of_related_objects_counts_and_existence():
    torch.manual_seed(0)
    listener = SegmentListener(SegmentListenerConfig(
        vocab_size=len(WORDS), class_names=list(NAMES), hidden_size=48, heads=4,
        text_layers=1, relation_layers=1, max_segments=8))
    answerer = SegmentAnswerer.from_listener(listener, ANSWERS)
    assert answerer.config.hidden_size == 48 and answerer.config.answers == ANSWERS
    sample = _questions(np.random.default_rng(2), 200)
    answerer.standardise_features(torch.from_numpy(np.concatenate(
        [np.concatenate([f.objects, f.colours], axis=1) for f, *_ in sample])))
    optimizer = torch.optim.AdamW(answerer.parameters(), lr=3e-3)
    # Decayed as in training: counts need the gates settled, not still swinging at full rate.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=600)
    rng = np.random.default_rng(0)
    for _ in range(600):
        ids, segments, pairs, mask, colours, target, focus, anchor = _batch(
            _questions(rng, 24))
        logits, attention, anchor_attention = answerer(ids, segments, pairs, mask, colours)
        # As in training: the answer, and which segments a question is about when known.
        loss = F.cross_entropy(logits, target) + 0.5 * (
            F.cross_entropy(attention, focus, ignore_index=-1)
            + F.cross_entropy(anchor_attention, anchor, ignore_index=-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    answerer.eval()
    held_out = _questions(np.random.default_rng(1), 300)
    with torch.no_grad():
        ids, segments, pairs, mask, colours, target, _, anchor = _batch(held_out)
        logits, _, anchor_attention = answerer(ids, segments, pairs, mask, colours)
        right = (logits.argmax(dim=-1) == target).numpy()
    kinds = np.array([kind for *_, kind in held_out])
    # Priors: a third for colours, about 0.3 for counts, 0.7 for existence.
    for kind in range(3):
        assert right[kinds == kind].mean() > 0.9, (kind, right[kinds == kind].mean())
    # The anchor of "the chair closest to the door" is the door.
    known = anchor >= 0
    assert (anchor_attention.argmax(dim=-1)[known] == anchor[known]).float().mean() > 0.9


def _answerer(model, answers=("red", "blue", "two")) -> SegmentAnswerer:
    torch.manual_seed(0)
    answerer = SegmentAnswerer(SegmentAnswererConfig(
        vocab_size=len(model.tokenizer), class_names=list(NAMES), hidden_size=32,
        answers=list(answers))).eval()
    answerer.standardise_features(torch.rand(50, answerer.feature_scale.shape[0]))
    return answerer


def test_short_questions_are_answered_from_segments_and_grounded(tmp_path):
    model = tiny_model()
    snapshot = two_chairs_snapshot()
    chairs = SnapshotGrounder(snapshot).segments
    answerer = _answerer(model)
    # The LLM would say "table table ..." to anything.
    forced = force_token(model, model.tokenizer.convert_tokens_to_ids("Ġtable"))
    try:
        model.set_segment_answerer(answerer)
        streamed: list[str] = []
        answer = model.answer(snapshot, "What colour is the chair?", task="qa",
                              on_text=streamed.append)
        assert answer.text in answerer.config.answers and streamed == [answer.text]
        assert answer.tokens_generated == 1 and answer.scene_version == snapshot.scene_version
        (obj,) = answer.objects
        assert obj.label == "chair" and obj.token_index == -1 and 0 < obj.score <= 1
        assert any(np.allclose(obj.center, c.center) and np.allclose(obj.size, c.size)
                   for c in chairs)
        features = SnapshotGrounder(snapshot).segment_features(answerer.config.max_segments)
        expected = answerer.answer(model.question_ids("What colour is the chair?"), features)
        assert (answer.text, obj.score) == (expected.text, pytest.approx(
            expected.segment_probability))
        # Situated questions read the situation first.
        situated = model.answer(snapshot, "What is on my left?", task="situated",
                                situation="I sit on the red chair.")
        assert situated.text == answerer.answer(model.question_ids(answerer_question(
            "What is on my left?", "I sit on the red chair.")), features).text
        assert model.answer(snapshot, "What colour is the chair?", task="qa",
                            should_stop=lambda: True).cancelled
        # Grounding, and short questions about a scene without a semantic map (or one of
        # other classes), go to the LLM.
        unmapped = make_snapshot(16)
        other_classes = dataclasses.replace(snapshot, class_names=("chair", "door", "floor",
                                                                   "window"))
        for scene, task in ((snapshot, "ground"), (unmapped, "qa"), (other_classes, "qa")):
            generated = model.answer(scene, "Find the chair.", task=task, max_new_tokens=3)
            assert generated.text.split() == ["table"] * 3, (task, generated.text)
        model.save_pretrained(tmp_path / "model")
        reloaded = type(model).from_pretrained(tmp_path / "model")
        assert reloaded.segment_answerer.config == answerer.config
        assert torch.equal(reloaded.segment_answerer.feature_scale, answerer.feature_scale)
        assert reloaded.answer(snapshot, "What colour is the chair?", task="qa").text == \
            answer.text
    finally:
        forced.remove()
        model.set_segment_answerer(None)
    with pytest.raises(CheckpointMismatchError, match="vocabulary"):
        model.set_segment_answerer(SegmentAnswerer(SegmentAnswererConfig(
            vocab_size=len(model.tokenizer) + 1, class_names=list(NAMES), answers=["yes"])))
    with pytest.raises(ValueError, match="answers"):
        SegmentAnswererConfig(vocab_size=4, class_names=list(NAMES), answers=["yes", "yes"])


def test_the_answer_vocabulary_writes_each_answer_in_one_form_whatever_the_hash_seed(
        monkeypatch):
    """"3" and "three" are one answer; which form names it must not depend on the order a
    set of strings happens to iterate in (it changes with PYTHONHASHSEED)."""
    from types import SimpleNamespace

    from training import answerer_training

    records = [("scanqa", SimpleNamespace(answers=pair)) for pair in (
        ["three", "3"], ["3", "three"], ["three", "3"], ["the door", "door"], ["door"],
        ["chair"])]
    for order in (records, records[::-1]):
        monkeypatch.setattr(answerer_training, "_records", lambda data, split, o=order: o)
        vocabulary = answerer_training.answer_vocabulary(
            answerer_training.AnswererData(min_answer_count=2))
        # The most frequent first; of equally common forms the alphabetically first.
        assert vocabulary == ["3", "door"]
    # An answer counts once per question, however many of its forms the question lists.
    monkeypatch.setattr(answerer_training, "_records", lambda data, split: [
        ("scanqa", SimpleNamespace(answers=answers))
        for answers in (["three", "3"], ["chair"], ["chair"])])
    assert answerer_training.answer_vocabulary(
        answerer_training.AnswererData(min_answer_count=2)) == ["chair"]
