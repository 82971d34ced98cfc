"""Answering: prefix cache, streaming, cancellation, beams, grounding and bad requests."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time

import numpy as np
import pytest
from model_testutil import force_token, make_snapshot, tiny_model

from scene_llm_ros.model import (
    EmptySceneError,
    InvalidPromptPointsError,
    InvalidQuestionError,
    SceneFeatureError,
    UnknownTaskError,
)

logger = logging.getLogger(__name__)


def test_prefix_cache_gives_the_same_tokens_and_skips_the_scene_prefill():
    model = tiny_model()
    model.clear_prefix_cache()
    snapshot = make_snapshot(1024, version=7)
    model.answer(snapshot, "where is the chair?", max_new_tokens=4)  # fills the cache
    prefix = next(iter(model.prefix_cache._entries.values()))
    cached_length = prefix.cache.get_seq_length()
    uncached_ms, cached_ms = [], []
    for _ in range(3):
        uncached = model.answer(snapshot, "how many beds are there?", max_new_tokens=12,
                                use_prefix_cache=False)
        cached = model.answer(snapshot, "how many beds are there?", max_new_tokens=12)
        uncached_ms.append(uncached.prefill_ms)
        cached_ms.append(cached.prefill_ms)
        assert cached.prefix_cache_hit and not uncached.prefix_cache_hit
        assert cached.text == uncached.text
        assert cached.tokens_generated == uncached.tokens_generated == 12
    # Generation extended copies only: the stored cache still ends after the scene tokens.
    assert prefix.cache.get_seq_length() == cached_length == prefix.length
    ratio = min(uncached_ms) / min(cached_ms)
    logger.warning("prefill for a second question, 1024 scene tokens: %.1f ms without the "
                   "prefix cache, %.1f ms with it (%.1fx)", min(uncached_ms), min(cached_ms),
                   ratio)
    print(f"prefill 1024 tokens: uncached {min(uncached_ms):.1f} ms, cached "
          f"{min(cached_ms):.1f} ms, ratio {ratio:.1f}x")


def test_a_new_scene_version_or_content_misses_the_cache():
    model = tiny_model()
    model.clear_prefix_cache()
    snapshot = make_snapshot(64, version=1)
    assert not model.answer(snapshot, "where?", max_new_tokens=1).prefix_cache_hit
    assert model.answer(snapshot, "what?", max_new_tokens=1).prefix_cache_hit
    assert not model.answer(make_snapshot(64, version=2), "what?",
                            max_new_tokens=1).prefix_cache_hit
    changed = make_snapshot(64, version=1, seed=5)  # same version number, other content
    assert not model.answer(changed, "what?", max_new_tokens=1).prefix_cache_hit


def test_should_stop_cancels_after_n_tokens_and_on_text_streams():
    model = tiny_model()
    snapshot = make_snapshot(64)
    polls, texts = [], []

    def should_stop() -> bool:
        polls.append(time.monotonic())
        return len(polls) > 5

    answer = model.answer(snapshot, "describe the room", max_new_tokens=50,
                          should_stop=should_stop, on_text=texts.append)
    assert answer.cancelled
    assert answer.tokens_generated == 5
    full = model.answer(snapshot, "describe the room", max_new_tokens=5)
    assert answer.text == full.text and not full.cancelled
    assert texts and texts[-1] == answer.text
    assert all(b.startswith(a) or a.endswith("\ufffd") for a, b in zip(texts, texts[1:],
                                                                        strict=False))


def test_beam_search_runs_with_and_without_the_cache_and_can_be_cancelled():
    model = tiny_model()
    snapshot = make_snapshot(64)
    with_cache = model.answer(snapshot, "where is the chair?", num_beams=3, max_new_tokens=8)
    without = model.answer(snapshot, "where is the chair?", num_beams=3, max_new_tokens=8,
                           use_prefix_cache=False)
    assert with_cache.text == without.text
    assert 1 <= with_cache.tokens_generated <= 8
    texts = []
    cancelled = model.answer(snapshot, "where is the chair?", num_beams=2, max_new_tokens=30,
                             should_stop=lambda: True, on_text=texts.append)
    assert cancelled.cancelled and cancelled.tokens_generated <= 1


def test_ground_tokens_become_boxes_in_the_scene_frame():
    model = tiny_model()
    snapshot = make_snapshot(128, offset=(40.0, -12.0, 0.3))
    hook = force_token(model, model.token_ids.ground)
    try:
        answer = model.answer(snapshot, "find the chair", task="ground", max_new_tokens=3,
                              prompt_points=np.array([[41.0, -11.0, 0.8]]))
    finally:
        hook.remove()
    assert answer.text == ""  # only <ground> tokens, all removed from the text
    assert len(answer.objects) == 3
    for found in answer.objects:
        anchor = snapshot.positions[found.token_index].astype(np.float64)
        assert np.abs(found.center - anchor).max() < 10 * model.config.box_offset_scale_m
        assert found.size.shape == (3,) and (found.size > 0).all()
        assert 0.0 <= found.score <= 1.0
        assert found.label in model.config.labels
    assert answer.scene_version == snapshot.scene_version


def test_bad_requests_raise_clear_errors():
    model = tiny_model()
    snapshot = make_snapshot(32)
    with pytest.raises(InvalidQuestionError, match="empty"):
        model.answer(snapshot, "")
    with pytest.raises(UnknownTaskError, match="'count'"):
        model.answer(snapshot, "how many chairs?", task="count")
    with pytest.raises(InvalidPromptPointsError, match=r"prompt points \[1\] are not finite"):
        model.answer(snapshot, "what is this?", prompt_points=[[0, 0, 0], [np.nan, 1, 1]])
    with pytest.raises(InvalidPromptPointsError, match=r"\(M, 3\)"):
        model.answer(snapshot, "what is this?", prompt_points=[1.0, 2.0])
    empty = make_snapshot(0)
    with pytest.raises(EmptySceneError, match="no tokens"):
        model.answer(empty, "where is the chair?")
    wrong = dataclasses.replace(snapshot, features=snapshot.features[:, :64])
    with pytest.raises(SceneFeatureError, match=r"\(32, 128\)"):
        model.answer(wrong, "where is the chair?")
    with pytest.raises(ValueError, match="num_beams"):
        model.answer(snapshot, "where?", num_beams=0)
    with pytest.raises(ValueError, match="context is 4096"):
        model.answer(make_snapshot(4000), "where?", max_new_tokens=200)


def test_concurrent_callers_are_serialised_and_get_serial_results():
    model = tiny_model()
    questions = ["where is the chair?", "how many beds?", "what is on the desk?"]
    snapshots = [make_snapshot(64, version=v, seed=v) for v in range(3)]
    expected = [model.answer(s, q, max_new_tokens=6).text for s, q in zip(snapshots, questions,
                                                                          strict=True)]
    results = [None] * 3

    def ask(i: int) -> None:
        results[i] = model.answer(snapshots[i], questions[i], max_new_tokens=6).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == expected
