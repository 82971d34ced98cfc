"""InferenceEngine without ROS: answers, every error code, queueing, timeouts, cancellation."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.scene import SceneFusion
from scene_llm_ros.geometry.boxes import box_iou
from scene_llm_ros.inference.engine import EngineConfig, InferenceEngine
from scene_llm_ros.inference.requests import AskRequest, ErrorCode
from scene_llm_ros.model import GroundedObject, build_tiny_scene_llm

CORPUS = ["what is on the table ?", "the chair is next to the desk .",
          "how many chairs are there ?", "there are two chairs ."] * 20


@pytest.fixture(scope="module")
def model():
    return build_tiny_scene_llm(CORPUS, vocab_size=300)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(3, "scene9000_00", SynthConfig(width=160, height=120, num_frames=40,
                                                        noise=False, write_sens=False))


@pytest.fixture(scope="module")
def snapshot(model, scene):
    fusion = SceneFusion(FusionConfig(), encoder=model.patch_encoder)
    for frame in scene.frames:
        fusion.integrate(frame)
    return fusion.snapshot()


@pytest.fixture
def engine_factory(model, snapshot):
    engines = []

    def make(source=lambda: snapshot, with_model=True, **config) -> InferenceEngine:
        engine = InferenceEngine(source, EngineConfig(**config),
                                 model=model if with_model else None)
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()


def ask(engine, question="what is on the table ?", **kwargs):
    return engine.submit(AskRequest(question, **kwargs)).result(timeout=60)


def test_answer_reports_snapshot_and_timing(engine_factory, snapshot):
    feedback = []
    engine = engine_factory(max_new_tokens=8)
    outcome = engine.submit(AskRequest("what is on the table ?"),
                            on_feedback=feedback.append).result(timeout=60)
    assert outcome.success, outcome.message
    assert outcome.scene_version == snapshot.scene_version
    assert outcome.scene_frame == "map" and outcome.scene_stamp_ns == snapshot.stamp_ns
    assert 1 <= outcome.tokens_generated <= 8
    assert outcome.prefill_ms > 0 and outcome.total_ms >= outcome.prefill_ms
    assert outcome.reference.frame_id == snapshot.keyframe.frame_id
    stages = [f.stage for f in feedback]
    assert stages[:2] == ["queued", "encoding"] and "decoding" in stages
    assert engine.counts["ok"] == 1


@pytest.mark.parametrize("request_kwargs, fragment", [
    ({"question": "   "}, "empty"),
    ({"question": "x" * 3000}, "characters"),
    ({"task": "dance"}, "unknown task"),
    ({"prompt_points": np.array([[0.0, np.nan, 1.0]])}, "finite"),
    ({"prompt_points": np.zeros((2, 2))}, "(M, 3)"),
    ({"prompt_points": np.zeros((40, 3))}, "max_prompt_points"),
    ({"max_new_tokens": 10_000}, "limit"),
])
def test_bad_requests(engine_factory, request_kwargs, fragment):
    engine = engine_factory()
    request = {"question": "what is here ?", **request_kwargs}
    outcome = engine.submit(AskRequest(**request)).result(timeout=10)
    assert outcome.error_code is ErrorCode.BAD_REQUEST and fragment in outcome.message


def test_not_ready_no_scene_and_model_error(engine_factory, snapshot):
    assert ask(engine_factory(with_model=False)).error_code is ErrorCode.NOT_READY
    assert ask(engine_factory(source=lambda: None)).error_code is ErrorCode.NO_SCENE
    wrong = type(snapshot)(**{**vars(snapshot), "features": snapshot.features[:, :64]})
    outcome = ask(engine_factory(source=lambda: wrong))
    assert outcome.error_code is ErrorCode.MODEL_ERROR and "fit the model" in outcome.message

    def broken():
        raise RuntimeError("fusion exploded")

    outcome = ask(engine_factory(source=broken))
    assert outcome.error_code is ErrorCode.MODEL_ERROR and "exploded" in outcome.message


def test_busy_timeout_and_cancel_while_queued(engine_factory, snapshot):
    release = threading.Event()

    def slow_source():
        release.wait(30)
        return snapshot

    engine = engine_factory(source=slow_source, queue_size=2, request_timeout_s=1.0,
                            max_new_tokens=4)
    running = engine.submit(AskRequest("what is on the table ?"))
    time.sleep(0.2)  # the worker holds the first request
    cancel = threading.Event()
    queued_cancelled = engine.submit(AskRequest("what is on the table ?"), cancel=cancel)
    queued_late = engine.submit(AskRequest("what is on the table ?"))
    busy = engine.submit(AskRequest("what is on the table ?")).result(timeout=5)
    assert busy.error_code is ErrorCode.BUSY
    cancel.set()
    time.sleep(1.2)  # past the timeout of everything waiting
    release.set()
    assert running.result(timeout=30).error_code is ErrorCode.TIMEOUT
    assert queued_cancelled.result(timeout=30).error_code is ErrorCode.CANCELED
    assert queued_late.result(timeout=30).error_code is ErrorCode.TIMEOUT
    # The engine still answers afterwards.
    engine.config.request_timeout_s = 60
    assert ask(engine).success


def test_cancel_during_generation_stops_it(engine_factory):
    engine = engine_factory(max_new_tokens=64)
    cancel = threading.Event()
    tokens = []

    def on_feedback(feedback):
        tokens.append(feedback.tokens_generated)
        if feedback.tokens_generated >= 3:
            cancel.set()

    outcome = engine.submit(AskRequest("what is on the table ?"), on_feedback=on_feedback,
                            cancel=cancel).result(timeout=60)
    if outcome.success:  # the tiny model may end its answer before 3 tokens
        assert outcome.tokens_generated < 3
    else:
        assert outcome.error_code is ErrorCode.CANCELED
        assert 3 <= outcome.tokens_generated <= 4


def test_grounding_refines_boxes_and_cuts_points_and_masks(engine_factory, scene, snapshot):
    engine = engine_factory()
    furniture = [o for o in scene.objects if not o.structure]
    visible, before, after = [], [], []
    for obj in furniture:
        center, size = (obj.box_min + obj.box_max) / 2, obj.box_max - obj.box_min
        # A prediction 10 cm off and 20% too large, as a regression head gives.
        predicted = GroundedObject(center + 0.1, size * 1.2, 0.8, obj.label, 0)
        [result] = engine._ground(snapshot, [predicted], AskRequest("q"))  # noqa: SLF001
        assert result.label == obj.label and result.points is not None
        if len(result.points) < 20:
            continue  # barely observed in this short walk
        after.append(box_iou(result.center, result.size, center, size))
        before.append(box_iou(predicted.center, predicted.size, center, size))
        assert result.mask.shape == snapshot.keyframe.depth.shape
        if result.roi[2] > 0:
            visible.append(obj.label)
            x, y, w, h = result.roi
            assert result.mask[y:y + h, x:x + w].any() and not result.mask[:y].any()
    assert visible, "no furniture visible in the keyframe"
    assert len(after) >= 3 and np.mean(after) > np.mean(before) + 0.1, (before, after)
