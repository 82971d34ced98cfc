"""InferenceEngine: AskScene requests through a bounded queue into one model worker."""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from scene_llm_ros.fusion.snapshot import SceneSnapshot
from scene_llm_ros.grounding.snapshot_grounder import SnapshotGrounder
from scene_llm_ros.grounding.view_mask import mask_in_view
from scene_llm_ros.inference.answer_grounding import ground_answer
from scene_llm_ros.inference.requests import (
    AskOutcome,
    AskRequest,
    ErrorCode,
    ObjectResult,
    ReferenceView,
)
from scene_llm_ros.model.errors import (
    EmptySceneError,
    InvalidPromptPointsError,
    InvalidQuestionError,
    SceneFeatureError,
    UnknownTaskError,
)
from scene_llm_ros.model.modeling_scene_llm import SceneLlm
from scene_llm_ros.model.outputs import GroundedObject
from scene_llm_ros.model.processing_scene_llm import TASKS

logger = logging.getLogger(__name__)

#: Stages reported through feedback (the AskScene action's STAGE_* names).
STAGE_QUEUED, STAGE_ENCODING, STAGE_DECODING, STAGE_GROUNDING = (
    "queued", "encoding", "decoding", "grounding")


@dataclass
class EngineConfig:
    """Limits and defaults of the engine.

    :ivar queue_size: requests that may wait while one runs; more are refused with BUSY.
    :ivar request_timeout_s: a request not answered this long after it arrived gets TIMEOUT
        (generation stops at the next token).
    :ivar max_question_chars: longer questions are a BAD_REQUEST.
    :ivar max_prompt_points: more clicked points are a BAD_REQUEST.
    :ivar max_new_tokens: generation limit when the request gives 0.
    :ivar max_new_tokens_limit: the largest limit a request may ask for.
    :ivar num_beams: 1 greedy (streams feedback), more for beam search.
    """

    queue_size: int = 4
    request_timeout_s: float = 30.0
    max_question_chars: int = 2000
    max_prompt_points: int = 16
    max_new_tokens: int = 64
    max_new_tokens_limit: int = 512
    num_beams: int = 1

    def __post_init__(self) -> None:
        if self.queue_size < 0 or self.request_timeout_s <= 0 or self.num_beams < 1:
            raise ValueError("queue_size must be >= 0, request_timeout_s > 0, num_beams >= 1")
        if not 1 <= self.max_new_tokens <= self.max_new_tokens_limit:
            raise ValueError(f"need 1 <= max_new_tokens ({self.max_new_tokens}) <= "
                             f"max_new_tokens_limit ({self.max_new_tokens_limit})")


@dataclass(frozen=True)
class Feedback:
    """Progress of one request."""

    stage: str
    partial_answer: str = ""
    tokens_generated: int = 0


@dataclass
class _Job:
    request: AskRequest
    future: Future
    arrived: float
    on_feedback: Callable[[Feedback], None] | None
    cancel: threading.Event


class InferenceEngine:
    """Answers requests one at a time on a worker thread; callers never block.

    :param snapshot_source: returns the current scene (None or empty when nothing is fused).
    :param config: limits and defaults.
    :param model: the loaded model; None until :meth:`set_model` (requests get NOT_READY).
    """

    def __init__(self, snapshot_source: Callable[[], SceneSnapshot | None],
                 config: EngineConfig | None = None, *, model: SceneLlm | None = None) -> None:
        self.config = config or EngineConfig()
        self._snapshot_source = snapshot_source
        self._model = model
        self._lock = threading.Condition()
        self._queue: collections.deque[_Job] = collections.deque()
        self._running_job: _Job | None = None
        self._worker: threading.Thread | None = None
        self._stopping = False
        self.counts = collections.Counter()
        self._grounder: SnapshotGrounder | None = None

    @property
    def model(self) -> SceneLlm | None:
        return self._model

    def set_model(self, model: SceneLlm | None) -> None:
        """Install (or with None, release) the model; waits for the running request."""
        with self._lock:
            while self._running_job is not None:
                self._lock.wait(0.05)
            self._model = model

    # -- submission (any thread) ---------------------------------------------------------

    def submit(self, request: AskRequest, *,
               on_feedback: Callable[[Feedback], None] | None = None,
               cancel: threading.Event | None = None) -> Future:
        """Queue a request; the future resolves to an :class:`AskOutcome` (never raises)."""
        future: Future = Future()
        problem = self._validate(request)
        with self._lock:
            if problem is None and self._model is None:
                problem = (ErrorCode.NOT_READY, "no model loaded (node not active?)")
            if problem is None and (self._worker is None or self._stopping):
                problem = (ErrorCode.NOT_READY, "the engine is not running")
            if problem is None and len(self._queue) >= self.config.queue_size \
                    and self._running_job is not None:
                problem = (ErrorCode.BUSY, f"{len(self._queue)} requests already waiting; "
                           "try again later")
            if problem is None:
                self._queue.append(_Job(request, future, time.monotonic(), on_feedback,
                                        cancel or threading.Event()))
                self._lock.notify_all()
        if problem is not None:
            self._finish(future, AskOutcome.failure(*problem), time.monotonic())
        elif on_feedback is not None:
            on_feedback(Feedback(STAGE_QUEUED))
        return future

    def _validate(self, request: AskRequest) -> tuple[ErrorCode, str] | None:
        c = self.config
        question = request.question
        if not isinstance(question, str) or not question.strip():
            return ErrorCode.BAD_REQUEST, "the question is empty"
        if len(question) > c.max_question_chars:
            return ErrorCode.BAD_REQUEST, (f"the question has {len(question)} characters, more "
                                           f"than max_question_chars={c.max_question_chars}")
        if request.task not in TASKS:
            return ErrorCode.BAD_REQUEST, (f"unknown task {request.task!r}; one of "
                                           f"{', '.join(repr(t) for t in TASKS)}")
        points = np.asarray(request.prompt_points, np.float64)
        if points.size and (points.ndim != 2 or points.shape[1] != 3):
            return ErrorCode.BAD_REQUEST, f"prompt points must be (M, 3), got {points.shape}"
        if not np.isfinite(points).all():
            return ErrorCode.BAD_REQUEST, "prompt points must be finite"
        if len(points) > c.max_prompt_points:
            return ErrorCode.BAD_REQUEST, (f"{len(points)} prompt points, more than "
                                           f"max_prompt_points={c.max_prompt_points}")
        if not 0 <= request.max_new_tokens <= c.max_new_tokens_limit:
            return ErrorCode.BAD_REQUEST, (f"max_new_tokens {request.max_new_tokens} is above "
                                           f"the limit {c.max_new_tokens_limit}")
        return None

    # -- worker ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._worker is not None:
                return
            self._stopping = False
            self._worker = threading.Thread(target=self._run, name="ask-scene", daemon=True)
            self._worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel everything queued or running and stop the worker."""
        with self._lock:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            if self._running_job is not None:
                self._running_job.cancel.set()
            self._lock.notify_all()
            worker, self._worker = self._worker, None
        for job in pending:
            self._finish(job.future, AskOutcome.failure(ErrorCode.NOT_READY,
                                                        "the node is shutting down"), job.arrived)
        if worker is not None:
            worker.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait(0.5)
                if self._stopping:
                    return
                job = self._running_job = self._queue.popleft()
                model = self._model
            try:
                outcome = self._answer(job, model)
            except Exception as exc:  # noqa: BLE001 - a failing request must not end the worker
                logger.exception("answering %r failed", job.request.question)
                outcome = AskOutcome.failure(ErrorCode.MODEL_ERROR, f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._running_job = None
                self._lock.notify_all()
            self._finish(job.future, outcome, job.arrived)

    def _finish(self, future: Future, outcome: AskOutcome, arrived: float) -> None:
        outcome.total_ms = (time.monotonic() - arrived) * 1e3
        self.counts[outcome.error_code.value or "ok"] += 1
        future.set_result(outcome)

    def _answer(self, job: _Job, model: SceneLlm | None) -> AskOutcome:
        deadline = job.arrived + self.config.request_timeout_s
        if job.cancel.is_set():
            return AskOutcome.failure(ErrorCode.CANCELED, "cancelled while queued")
        if time.monotonic() > deadline:
            return AskOutcome.failure(ErrorCode.TIMEOUT, "timed out while queued "
                                      f"({self.config.request_timeout_s:.1f} s)")
        if model is None:
            return AskOutcome.failure(ErrorCode.NOT_READY, "no model loaded")
        snapshot = self._snapshot_source()
        if snapshot is None or snapshot.empty:
            return AskOutcome.failure(ErrorCode.NO_SCENE, "nothing has been fused yet")
        request = job.request
        feedback = job.on_feedback or (lambda _f: None)
        feedback(Feedback(STAGE_ENCODING))

        def on_token(text: str, tokens: int) -> None:
            feedback(Feedback(STAGE_DECODING, text, tokens))

        try:
            answer = model.answer(
                snapshot, request.question, task=request.task,
                prompt_points=request.prompt_points,
                max_new_tokens=request.max_new_tokens or self.config.max_new_tokens,
                num_beams=self.config.num_beams, on_token=on_token,
                should_stop=lambda: job.cancel.is_set() or time.monotonic() > deadline,
                grounder=self._grounder_for(snapshot))
        except EmptySceneError as exc:
            return AskOutcome.failure(ErrorCode.NO_SCENE, str(exc))
        except SceneFeatureError as exc:
            return AskOutcome.failure(ErrorCode.MODEL_ERROR, f"the scene does not fit the model: "
                                      f"{exc}")
        except (InvalidQuestionError, UnknownTaskError, InvalidPromptPointsError,
                ValueError) as exc:
            # The model's ValueErrors are about the request (e.g. longer than its context).
            return AskOutcome.failure(ErrorCode.BAD_REQUEST, str(exc))
        outcome = AskOutcome(answer=answer.text, scene_frame=snapshot.scene_frame,
                             scene_stamp_ns=snapshot.stamp_ns,
                             scene_version=snapshot.scene_version,
                             encode_ms=answer.encode_ms, prefill_ms=answer.prefill_ms,
                             decode_ms=answer.decode_ms, tokens_generated=answer.tokens_generated,
                             prefix_cache_hit=answer.prefix_cache_hit)
        if answer.cancelled:
            outcome.error_code = (ErrorCode.CANCELED if job.cancel.is_set()
                                  else ErrorCode.TIMEOUT)
            outcome.message = (f"stopped after {answer.tokens_generated} tokens"
                               + ("" if job.cancel.is_set() else
                                  f" ({self.config.request_timeout_s:.1f} s timeout)"))
            return outcome
        keyframe = snapshot.keyframe
        if keyframe is not None:
            outcome.reference = ReferenceView(keyframe.intrinsics, keyframe.T_world_cam,
                                              keyframe.stamp_ns, keyframe.frame_id)
        if answer.objects:
            feedback(Feedback(STAGE_GROUNDING, answer.text, answer.tokens_generated))
            outcome.objects = self._ground(snapshot, answer.objects, request)
        outcome.message = f"{len(outcome.objects)} objects grounded"
        return outcome

    def _grounder_for(self, snapshot: SceneSnapshot) -> SnapshotGrounder:
        """The snapshot's grounder: floor and segments are computed once per snapshot, for the
        model's object tokens and for grounding its answers."""
        if self._grounder is None or self._grounder.snapshot is not snapshot:
            self._grounder = SnapshotGrounder(snapshot)
        return self._grounder

    def _ground(self, snapshot: SceneSnapshot, objects: list[GroundedObject],
                request: AskRequest) -> list[ObjectResult]:
        """Ground each predicted box on the fused surface; cut its 3D points and 2D mask."""
        if len(snapshot.points) == 0:
            return [ObjectResult(str(i), o.label, o.score, o.center, o.size)
                    for i, o in enumerate(objects)]
        results = []
        grounded = ground_answer(self._model, self._grounder_for(snapshot), objects,
                                 question=request.question, task=request.task)
        for i, (obj, (label, geometry)) in enumerate(zip(objects, grounded, strict=True)):
            object_points = snapshot.points[geometry.indices]
            mask, roi = None, (0, 0, 0, 0)
            if request.return_masks and snapshot.keyframe is not None:
                mask, roi = mask_in_view(object_points, snapshot.keyframe,
                                         voxel_size=snapshot.voxel_size_m)
            results.append(ObjectResult(
                id=str(i), label=label, score=obj.score, center=geometry.center,
                size=geometry.size, mask=mask, roi=roi,
                points=object_points if request.return_points else None,
                colors=snapshot.colors[geometry.indices] if request.return_points else None))
        return results
