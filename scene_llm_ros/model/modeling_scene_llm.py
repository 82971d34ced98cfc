"""The 3D patch language model: scene tokens spliced into a causal LM, plus grounding.

Thread safety: :meth:`SceneLlm.answer` serialises calls with a lock (the inference node calls
it from one worker thread at a time anyway); training must not run concurrently with
:meth:`SceneLlm.answer` on the same instance, and must call :meth:`SceneLlm.clear_prefix_cache`
after changing weights.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scene_llm_ros.embedded import resolve_model_path
from scene_llm_ros.fusion.encoders import BuiltinPatchEncoder, PatchEncoder, encoder_from_spec
from scene_llm_ros.fusion.snapshot import SceneSnapshot
from scene_llm_ros.grounding.segment_features import SegmentFeatures
from scene_llm_ros.grounding.snapshot_grounder import SnapshotGrounder
from scene_llm_ros.model import checkpoint, llm_loading
from scene_llm_ros.model.box_completion import COMPLETER_DIR, SegmentBoxCompleter
from scene_llm_ros.model.configuration_scene_llm import SceneLlmConfig
from scene_llm_ros.model.errors import (
    CheckpointMismatchError,
    SceneFeatureError,
    UnsupportedOperationError,
)
from scene_llm_ros.model.generation import beam_decode, greedy_decode
from scene_llm_ros.model.grounding import GroundingHead
from scene_llm_ros.model.grounding_loss import GroundingLosses, grounding_loss
from scene_llm_ros.model.outputs import Answer, GroundedObject
from scene_llm_ros.model.prefix_cache import ScenePrefix, ScenePrefixCache, prefix_key
from scene_llm_ros.model.processing_scene_llm import (
    GROUND_TOKEN,
    IGNORE_INDEX,
    PromptIds,
    TrainingExample,
    add_special_tokens,
    answer_text,
    build_prompt,
    special_token_ids,
    stop_token_ids,
)
from scene_llm_ros.model.referents import ReferentInputs, pick_referents
from scene_llm_ros.model.scene_tokens import (
    SceneInputs,
    SceneTokenEncoder,
    prepare_scene_inputs,
    validate_prompt_points,
)
from scene_llm_ros.model.segment_answerer import (
    ANSWERER_DIR,
    ANSWERER_TASKS,
    SegmentAnswerer,
    answerer_question,
)
from scene_llm_ros.model.segment_listener import LISTENER_DIR, SegmentListener
from scene_llm_ros.model.splicing import splice_embeddings

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


@dataclass
class GroundingTargets:
    """True boxes of the objects a training answer refers to, in ``<ground>`` order.

    :ivar centers: float (N, 3) box centres, scene frame, metres.
    :ivar sizes: float (N, 3) full extents, metres.
    :ivar labels: N class names; names outside the label vocabulary are ignored by the loss.
    :ivar scene_objects: every annotated object of the scene as (centres (M, 3), sizes (M, 3),
        M class names), which supervises the head's token classes; None: not known.
    """

    centers: np.ndarray
    sizes: np.ndarray
    labels: list[str]
    scene_objects: tuple[np.ndarray, np.ndarray, list[str]] | None = None


@dataclass
class LossInput:
    """One teacher-forcing example for :meth:`SceneLlm.compute_batch_loss`.

    :ivar scene: the example's scene (:func:`prepare_scene_inputs`).
    :ivar example: from :func:`~scene_llm_ros.model.processing_scene_llm.
        build_training_example` with ``num_scene_tokens == scene.num_tokens``.
    :ivar targets: true boxes, one per ``<ground>`` token of the answer (None: no grounding).
    :ivar prompt_points: float (M, 3) points matching the example's ``<point>`` tokens.
    :ivar referents: the segments matching the example's ``<referent>`` tokens
        (:meth:`SceneLlm.referent_inputs`).
    """

    scene: SceneInputs
    example: TrainingExample
    targets: GroundingTargets | None = None
    prompt_points: np.ndarray | None = None
    referents: ReferentInputs | None = None


@dataclass
class SceneLlmLoss:
    """Teacher-forcing losses of one example; ``total`` is what to back-propagate."""

    total: torch.Tensor
    language: torch.Tensor
    grounding: GroundingLosses | None


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


class SceneLlm(nn.Module):
    """Scene token encoder + causal LM + grounding head, with prompt handling and caching.

    :param config: the scene-side configuration.
    :param llm: a Hugging Face causal LM (optionally quantized or LoRA-wrapped).
    :param tokenizer: its tokenizer; ``<scene>``, ``<ground>``, ``<point>`` are added when
        missing (the LLM's embeddings are resized, which a quantized LLM cannot do).
    :param patch_encoder: the 2D encoder the snapshot's features come from, exposed so the
        fusion node uses the same one.
    :raises CheckpointMismatchError: when the LLM's hidden size differs from the config's.
    :raises UnsupportedOperationError: when tokens must be added to a quantized LLM.
    """

    def __init__(self, config: SceneLlmConfig, llm: PreTrainedModel | PeftModel,
                 tokenizer: PreTrainedTokenizerBase,
                 patch_encoder: PatchEncoder | None = None) -> None:
        super().__init__()
        hidden = int(llm.config.get_text_config().hidden_size)
        if hidden != config.llm_hidden_size:
            raise CheckpointMismatchError(f"the LLM's hidden size is {hidden} but the config "
                                          f"says llm_hidden_size={config.llm_hidden_size}")
        if patch_encoder is not None and patch_encoder.feature_dim != config.feature_dim:
            raise CheckpointMismatchError(f"the patch encoder gives {patch_encoder.feature_dim} "
                                          f"features but the config says feature_dim="
                                          f"{config.feature_dim}")
        #: Embedding rows this model created by resizing (fresh random values that only a
        #: checkpoint with an external ``llm_path`` must carry itself, see save_pretrained).
        self.added_row_ids: list[int] = []
        if add_special_tokens(tokenizer, referent=config.referent_tokens > 0):
            if llm_loading.is_quantized(llm):
                raise UnsupportedOperationError("the quantized LLM's tokenizer lacks the "
                                                "<scene>/<ground>/<point> tokens; add them to "
                                                "the full-precision model first")
            old_rows = llm.get_input_embeddings().weight.shape[0]
            # Multiples of 64 keep the embedding and LM head friendly to bitsandbytes kernels.
            llm.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
            new_rows = llm.get_input_embeddings().weight.shape[0]
            special = special_token_ids(tokenizer)
            self.added_row_ids = sorted({special.scene, special.ground, special.point,
                                         *([special.referent] if special.referent else []),
                                         *range(old_rows, new_rows)})
        self.config = config
        self.llm = llm
        self.tokenizer = tokenizer
        self.patch_encoder = patch_encoder
        self.scene_encoder = SceneTokenEncoder(config)
        self.grounding_head = GroundingHead(config.llm_hidden_size, config.grounding_dim,
                                            len(config.labels), config.box_offset_scale_m,
                                            token_classes=config.token_classes)
        self.token_ids = special_token_ids(tokenizer)
        self.stop_ids = stop_token_ids(tokenizer, getattr(llm, "generation_config", None))
        self.pad_id = (tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                       else min(self.stop_ids))
        self.prefix_cache = ScenePrefixCache(config.prefix_cache_entries)
        #: Picks the referred segment of the semantic map (trained after the LLM; optional).
        self.segment_listener: SegmentListener | None = None
        #: Gives short answers from the semantic map's segments (trained last; optional).
        self.segment_answerer: SegmentAnswerer | None = None
        #: Completes a grounded segment's box to the whole object's (optional).
        self.box_completer: SegmentBoxCompleter | None = None
        self._lock = threading.Lock()
        self._place_own_modules(torch.float32)

    # -- placement ---------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    def _place_own_modules(self, dtype: torch.dtype) -> None:
        """Put the scene encoder and grounding head next to the LLM's input embeddings."""
        for module in (self.scene_encoder, self.grounding_head):
            module.to(device=self.device, dtype=dtype)

    def _own_modules(self) -> dict[str, nn.Module]:
        return {"scene_encoder": self.scene_encoder, "grounding_head": self.grounding_head}

    def _backbone(self):
        """The decoder stack without the LM head (LoRA layers are injected in place)."""
        base = self.llm.get_base_model() if llm_loading.is_lora(self.llm) else self.llm
        return base.get_decoder()

    def _embed_ids(self, ids: list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, T) ids and their (1, T, H) token embeddings."""
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(1, -1)
        return ids, self.llm.get_input_embeddings()(ids)

    def question_ids(self, question: str) -> list[int]:
        """The tokenizer's ids of a question's text (what the segment listener reads)."""
        return self.tokenizer(question, add_special_tokens=False)["input_ids"]

    def set_segment_listener(self, listener: SegmentListener | None) -> None:
        """Attach (or with None detach) a segment listener.

        :raises CheckpointMismatchError: when it was trained on another tokenizer.
        """
        if listener is not None and listener.config.vocab_size != len(self.tokenizer):
            raise CheckpointMismatchError(
                f"the segment listener reads a vocabulary of {listener.config.vocab_size} "
                f"tokens, this model's tokenizer has {len(self.tokenizer)}")
        self.segment_listener = listener

    def set_box_completer(self, completer: SegmentBoxCompleter | None) -> None:
        """Attach (or with None detach) a box completer, which then completes the box of
        every answer object grounded on a segment of a semantic map of its classes."""
        self.box_completer = completer

    def set_segment_answerer(self, answerer: SegmentAnswerer | None) -> None:
        """Attach (or with None detach) a segment answerer, which then answers the
        :data:`ANSWERER_TASKS` about snapshots with a semantic map of its classes.

        :raises CheckpointMismatchError: when it was trained on another tokenizer.
        """
        if answerer is not None and answerer.config.vocab_size != len(self.tokenizer):
            raise CheckpointMismatchError(
                f"the segment answerer reads a vocabulary of {answerer.config.vocab_size} "
                f"tokens, this model's tokenizer has {len(self.tokenizer)}")
        self.segment_answerer = answerer

    def enable_referent_tokens(self, count: int) -> None:
        """Give the model ``count`` referent tokens (``config.referent_tokens``): the segments
        its segment listener scores highest for a question end the prompt, the best last.

        Adds the ``<referent>`` token (the listener's vocabulary grows with it, unused), the
        object lift when the model has none, and rank and probability vectors; every existing
        weight is kept.

        :raises UnsupportedOperationError: without a segment listener, when referent tokens are
            already enabled, or when the object tokens' classes are not the listener's.
        """
        listener = self.segment_listener
        if listener is None:
            raise UnsupportedOperationError("referent tokens need a segment listener")
        if self.config.referent_tokens:
            raise UnsupportedOperationError("the model already has referent tokens")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        classes = list(listener.config.class_names)
        if self.config.object_classes and self.config.object_classes != classes:
            raise UnsupportedOperationError(
                f"the object tokens' classes {self.config.object_classes} are not the segment "
                f"listener's {classes}")
        if add_special_tokens(self.tokenizer, referent=True):
            if llm_loading.is_quantized(self.llm):
                raise UnsupportedOperationError("cannot add the <referent> token to a "
                                                "quantized LLM")
            old_rows = self.llm.get_input_embeddings().weight.shape[0]
            if len(self.tokenizer) > old_rows:
                self.llm.resize_token_embeddings(len(self.tokenizer), pad_to_multiple_of=64)
            referent = special_token_ids(self.tokenizer).referent
            self.added_row_ids = sorted({*self.added_row_ids, referent,
                                         *range(old_rows, self.llm.get_input_embeddings()
                                                .weight.shape[0])})
        self.token_ids = special_token_ids(self.tokenizer)
        listener.extend_vocabulary(len(self.tokenizer))
        if self.segment_answerer is not None:
            self.segment_answerer.extend_vocabulary(len(self.tokenizer))
        self.config.object_classes = classes
        self.config.referent_tokens = count
        encoder = SceneTokenEncoder(self.config)
        unexpected = encoder.load_state_dict(self.scene_encoder.state_dict(), strict=False)[1]
        if unexpected:
            raise CheckpointMismatchError(f"scene encoder tensors {unexpected} were lost")
        self.scene_encoder = encoder
        self._place_own_modules(self.llm.dtype)
        self.clear_prefix_cache()

    def referent_inputs(self, segments: SegmentFeatures | None, question: str,
                        origin: np.ndarray) -> ReferentInputs:
        """The ``config.referent_tokens`` segments the listener scores highest for a question.

        :param segments: the scene's segments as the listener reads them
            (``SnapshotGrounder.listener_segments``), None for a scene without a semantic map;
            fewer segments than referent tokens are padded with zeros.
        :param origin: the scene's :func:`scene_origin`.
        :raises UnsupportedOperationError: when the model has no referent tokens or listener.
        """
        count, listener = self.config.referent_tokens, self.segment_listener
        if not count or listener is None:
            raise UnsupportedOperationError("the model has no referent tokens or no segment "
                                            "listener")
        return pick_referents(listener, self.question_ids(question), segments, origin,
                              count=count, feature_dim=self.scene_encoder.object_feature_dim)

    def _snapshot_referents(self, grounder: SnapshotGrounder, question: str,
                            origin: np.ndarray) -> ReferentInputs | None:
        """Referent inputs of a question about the grounder's snapshot; None for a model
        without them. A snapshot without a semantic map of the listener's classes gives only
        padding."""
        if not self.config.referent_tokens:
            return None
        listener = self.segment_listener
        segments = None if listener is None else grounder.listener_segments(
            listener.config.class_names, listener.config.max_segments)
        return self.referent_inputs(segments, question, origin)

    def train(self, mode: bool = True) -> SceneLlm:
        """Set the training mode; the segment listener, answerer and box completer (trained
        by their own stages) always run in eval mode, so referent tokens do not depend on
        dropout."""
        super().train(mode)
        for side_module in (self.segment_listener, self.segment_answerer, self.box_completer):
            if side_module is not None:
                side_module.eval()
        return self

    def clear_prefix_cache(self) -> None:
        """Forget cached scene prefixes (required after any weight change)."""
        self.prefix_cache.clear()

    # -- labels ------------------------------------------------------------------------
    def add_labels(self, labels: list[str]) -> int:
        """Extend the label vocabulary (training adds dataset classes).

        :return: how many labels were new.
        """
        new = [label for label in dict.fromkeys(labels) if label not in self.config.labels]
        if new:
            self.config.labels.extend(new)
            self.grounding_head.add_labels(len(new))
        return len(new)

    def label_indices(self, labels: list[str]) -> torch.Tensor:
        """int64 (N,) class indices; labels outside the vocabulary map to IGNORE_INDEX."""
        index = {label: i for i, label in enumerate(self.config.labels)}
        return torch.tensor([index.get(label, IGNORE_INDEX) for label in labels],
                            dtype=torch.long, device=self.device)

    # -- scene prefix ------------------------------------------------------------------
    def scene_embeddings(self, scene: SceneInputs) -> torch.Tensor:
        """(K + S, H) input embeddings of a scene's patch and object tokens."""
        return self.scene_encoder.scene_embeddings(scene, self._object_class_embeddings())

    def _object_class_embeddings(self) -> torch.Tensor | None:
        """(len(object_classes), H) mean input embedding of each object class's name, as it
        appears inside a sentence (after a space); None without object tokens."""
        if not (self.config.object_tokens or self.config.referent_tokens):
            return None
        embed = self.llm.get_input_embeddings()
        names = [self.tokenizer(" " + name, add_special_tokens=False)["input_ids"]
                 for name in self.config.object_classes]
        return torch.stack([embed(torch.tensor(ids, device=self.device)).mean(dim=0)
                            for ids in names])

    def _prefill_scene_prefix(self, scene: SceneInputs, prefix_ids: list[int]) -> ScenePrefix:
        ids, embeddings = self._embed_ids(prefix_ids)
        scene_embeddings = self.scene_embeddings(scene)
        embeddings = splice_embeddings(embeddings, ids, self.token_ids.scene, scene_embeddings)
        out = self._backbone()(inputs_embeds=embeddings, use_cache=True)
        # The grounding head matches patch tokens only; object tokens inform the words.
        patches = scene.num_patch_tokens
        scene_hidden = out.last_hidden_state[0][ids[0] == self.token_ids.scene][:patches]
        return ScenePrefix(cache=out.past_key_values, scene_hidden=scene_hidden,
                           length=len(prefix_ids), scene_inputs=scene_embeddings[:patches])

    def _scene_prefix(self, scene: SceneInputs, prompt: PromptIds, use_cache: bool
                      ) -> tuple[ScenePrefix, float, bool]:
        """The prefix entry, the milliseconds spent building it, and whether it was cached."""
        key = prefix_key(scene.scene_version, scene.fingerprint, prompt.prefix_ids)
        entry = self.prefix_cache.get(key) if use_cache else None
        if entry is not None:
            return entry, 0.0, True
        start = time.perf_counter()
        entry = self._prefill_scene_prefix(scene, prompt.prefix_ids)
        if use_cache:
            self.prefix_cache.put(key, entry)
        elapsed = _elapsed_ms(start)
        logger.debug("prefilled the scene prefix of version %d (%d tokens) in %.1f ms",
                     scene.scene_version, entry.length, elapsed)
        return entry, elapsed, False

    def _suffix_embeddings(self, suffix_ids: list[int], points: np.ndarray,
                           origin: np.ndarray, referents: ReferentInputs | None
                           ) -> torch.Tensor:
        ids, embeddings = self._embed_ids(suffix_ids)
        return self._splice_prompt_objects(embeddings[0], ids[0], points, origin,
                                           referents)[None]

    def _splice_prompt_objects(self, embeddings: torch.Tensor, ids: torch.Tensor,
                               points: np.ndarray, origin: np.ndarray,
                               referents: ReferentInputs | None) -> torch.Tensor:
        """(T, H) embeddings with the ``<point>`` and ``<referent>`` positions filled."""
        embeddings = splice_embeddings(embeddings, ids, self.token_ids.point,
                                       self.scene_encoder.point_embeddings(points, origin))
        if referents is None:
            if self.token_ids.referent is not None and bool((ids == self.token_ids.referent).any()):
                raise ValueError("the prompt has <referent> tokens but no referents were given")
            return embeddings
        # Best last: the last prompt position predicts the answer's first token.
        return splice_embeddings(embeddings, ids, self.token_ids.referent,
                                 self.scene_encoder.referent_embeddings(
                                     referents, self._object_class_embeddings()).flip(0))

    # -- inference ---------------------------------------------------------------------
    def answer(self, snapshot: SceneSnapshot, question: str, *, task: str = "",
               prompt_points: np.ndarray | None = None, situation: str | None = None,
               max_new_tokens: int | None = None, num_beams: int = 1,
               on_text: Callable[[str], None] | None = None,
               on_token: Callable[[str, int], None] | None = None,
               should_stop: Callable[[], bool] | None = None,
               use_prefix_cache: bool = True,
               grounder: SnapshotGrounder | None = None) -> Answer:
        """Answer a question about the scene, grounding the objects the answer refers to.

        A model with a segment answerer answers the :data:`ANSWERER_TASKS` with it when the
        snapshot has a semantic map of its classes (one step; the attended segment is the
        answer's object); everything else is generated by the LLM.

        Modules run in their current mode: :meth:`from_pretrained` returns an eval-mode model;
        training code must call ``eval()`` before answering (dropout would change answers).

        :param snapshot: the fused scene.
        :param question: the request; may contain ``<point>`` placeholders.
        :param task: one of :data:`~scene_llm_ros.model.processing_scene_llm.TASKS`.
        :param prompt_points: float (M, 3) clicked points, scene frame, metres.
        :param situation: SQA3D situation for task "situated".
        :param max_new_tokens: answer length limit; default from the config.
        :param num_beams: 1 for greedy decoding (streams, cancels between tokens); more for
            beam search (``on_text`` gets the final text once; ``should_stop`` is polled
            after every step).
        :param on_text: called with the partial answer text whenever it grows.
        :param on_token: called after every generated token with the partial answer text and
            the number of tokens so far (``<ground>`` tokens add no text but are progress).
        :param should_stop: polled before every token; True cancels (``Answer.cancelled``).
        :param use_prefix_cache: reuse the KV cache of an unchanged scene prefix.
        :param grounder: the snapshot's grounder, whose cached segments give the object tokens
            (see :meth:`scene_inputs`); default a new one.
        :return: the :class:`~scene_llm_ros.model.outputs.Answer`.
        :raises EmptySceneError: when the snapshot has no tokens.
        :raises InvalidQuestionError, UnknownTaskError, InvalidPromptPointsError,
            SceneFeatureError: for bad inputs.
        :raises ValueError: for ``max_new_tokens`` or ``num_beams`` below 1.
        """
        max_new_tokens = (max_new_tokens if max_new_tokens is not None
                          else self.config.max_new_tokens)
        if max_new_tokens < 1 or num_beams < 1:
            raise ValueError(f"max_new_tokens and num_beams must be >= 1, got {max_new_tokens} "
                             f"and {num_beams}")
        points = validate_prompt_points(prompt_points)
        if grounder is None or grounder.snapshot is not snapshot:
            # One grounder, so object and referent tokens share its segments.
            grounder = SnapshotGrounder(snapshot)
        scene = self.scene_inputs(snapshot, grounder)
        prompt = build_prompt(self.tokenizer, question, num_scene_tokens=scene.num_tokens,
                              task=task, num_points=len(points), situation=situation,
                              num_referents=self.config.referent_tokens,
                              system_prompt=self.config.system_prompt)
        self._check_context_length(len(prompt.input_ids) + max_new_tokens)
        answerer = self.segment_answerer
        if answerer is not None and task in ANSWERER_TASKS:
            segments = grounder.listener_segments(answerer.config.class_names,
                                                  answerer.config.max_segments)
            if segments is not None and len(segments.segments):
                return self._answer_from_segments(
                    segments, answerer_question(question, situation), scene.scene_version,
                    (on_text, on_token), should_stop)
        with self._lock, torch.inference_mode():
            referents = self._snapshot_referents(grounder, question, scene.origin)
            return self._answer(scene, prompt, (points, referents), max_new_tokens, num_beams,
                                (on_text, on_token), should_stop, use_prefix_cache)

    def scene_inputs(self, snapshot: SceneSnapshot,
                     grounder: SnapshotGrounder | None = None) -> SceneInputs:
        """The snapshot's tokens for this model: its patch tokens and, when the model was
        trained with object tokens, the ``config.object_tokens`` largest class segments of its
        semantic map (none for a snapshot without one).

        :param grounder: a :class:`SnapshotGrounder` of ``snapshot`` whose segments are
            already computed; default a new one.
        :raises EmptySceneError, SceneFeatureError: for an empty or malformed snapshot, or a
            semantic map of other classes than the model's object classes.
        """
        objects = None
        if self.config.object_tokens and snapshot.point_classes is not None:
            if tuple(snapshot.class_names) != tuple(self.config.object_classes):
                raise SceneFeatureError(
                    f"the semantic map's classes {list(snapshot.class_names)} are not the "
                    f"model's object classes {self.config.object_classes}")
            if grounder is None or grounder.snapshot is not snapshot:
                grounder = SnapshotGrounder(snapshot)
            objects = grounder.segment_features(self.config.object_tokens)
        return prepare_scene_inputs(snapshot, self.config.feature_dim, objects)

    def _check_context_length(self, length: int) -> None:
        """Fail clearly instead of deep inside the LLM when the sequence cannot fit."""
        limit = getattr(self.llm.config.get_text_config(), "max_position_embeddings", None)
        if limit is not None and length > limit:
            raise ValueError(f"prompt plus max_new_tokens is {length} tokens but the LLM's "
                             f"context is {limit}; send fewer scene tokens or a shorter "
                             f"question")

    def _answer_from_segments(self, segments: SegmentFeatures, question: str,
                              scene_version: int, callbacks, should_stop) -> Answer:
        """The segment answerer's answer, grounded on the segment it attended to."""
        on_text, on_token = callbacks
        if should_stop is not None and should_stop():
            return Answer(text="", scene_version=scene_version, cancelled=True)
        start = time.perf_counter()
        with self._lock:
            choice = self.segment_answerer.answer(self.question_ids(question), segments)
        segment = segments.segments[choice.segment]
        if on_token is not None:
            on_token(choice.text, 1)
        if on_text is not None:
            on_text(choice.text)
        # The box is the segment's; token_index -1: no scene token regressed it.
        objects = [GroundedObject(center=np.asarray(segment.center, np.float64),
                                  size=np.asarray(segment.size, np.float64),
                                  score=choice.segment_probability, label=segment.label,
                                  token_index=-1)]
        return Answer(text=choice.text, objects=objects, decode_ms=_elapsed_ms(start),
                      tokens_generated=1, scene_version=scene_version)

    def _answer(self, scene: SceneInputs, prompt: PromptIds,
                prompt_objects: tuple[np.ndarray, ReferentInputs | None],
                max_new_tokens: int, num_beams: int, callbacks, should_stop,
                use_prefix_cache: bool) -> Answer:
        on_text, on_token = callbacks
        points, referents = prompt_objects
        start = time.perf_counter()
        prefix, prefix_ms, hit = self._scene_prefix(scene, prompt, use_prefix_cache)
        start_suffix = time.perf_counter()
        suffix = self._suffix_embeddings(prompt.suffix_ids, points, scene.origin, referents)
        encode_ms = _elapsed_ms(start) - prefix_ms
        streamed = [""]

        def stream(ids: list[int]) -> None:
            text = answer_text(self.tokenizer, ids)
            if on_token is not None:
                on_token(text, len(ids))
            if on_text is not None and text != streamed[0]:
                streamed[0] = text
                on_text(text)

        if num_beams == 1:
            cache = prefix.fresh_cache()
            out = self.llm(inputs_embeds=suffix, past_key_values=cache, use_cache=True,
                           logits_to_keep=1)
            prefill_ms = prefix_ms + _elapsed_ms(start_suffix)
            start_decode = time.perf_counter()
            decoded = greedy_decode(self.llm, cache, out.logits[0, -1],
                                    max_new_tokens=max_new_tokens, stop_ids=self.stop_ids,
                                    on_token=stream, should_stop=should_stop)
        else:
            prefill_ms = prefix_ms
            start_decode = time.perf_counter()
            # generate() only embeds positions the cache does not cover, so the cached prefix
            # positions need no real embeddings.
            cached_part = suffix.new_zeros(1, prefix.length, suffix.shape[-1])
            decoded = beam_decode(self.llm, prefix.fresh_cache(),
                                  torch.cat([cached_part, suffix], dim=1), num_beams=num_beams,
                                  max_new_tokens=max_new_tokens, stop_ids=self.stop_ids,
                                  pad_id=self.pad_id, should_stop=should_stop)
            stream(decoded.token_ids)
        objects = self._ground(decoded.token_ids, prefix, suffix, scene)
        return Answer(text=answer_text(self.tokenizer, decoded.token_ids), objects=objects,
                      encode_ms=encode_ms, prefill_ms=prefill_ms,
                      decode_ms=_elapsed_ms(start_decode),
                      tokens_generated=len(decoded.token_ids),
                      scene_version=scene.scene_version, cancelled=decoded.cancelled,
                      prefix_cache_hit=hit)

    def _ground(self, generated: list[int], prefix: ScenePrefix, suffix: torch.Tensor,
                scene: SceneInputs) -> list[GroundedObject]:
        """Boxes for the ``<ground>`` tokens of an answer.

        The hidden state of a ``<ground>`` token exists only once it has been fed back, which
        generation never does for the last token; one pass over the answer on a fresh copy of
        the prefix cache gives all of them, exactly as in teacher-forced training.
        """
        where = [i for i, token in enumerate(generated) if token == self.token_ids.ground]
        if not where:
            return []
        _, answer_embeddings = self._embed_ids(generated)
        out = self._backbone()(inputs_embeds=torch.cat([suffix, answer_embeddings], dim=1),
                               past_key_values=prefix.fresh_cache(), use_cache=True)
        query = out.last_hidden_state[0, [suffix.shape[1] + i for i in where]]
        positions = scene.positions.to(self.device)
        prediction = self.grounding_head(query, prefix.scene_hidden, positions,
                                         scene_inputs=prefix.scene_inputs)
        scores = prediction.scores(positions).cpu().numpy()
        centers = prediction.centers.float().cpu().numpy().astype(np.float64)
        sizes = prediction.sizes.float().cpu().numpy().astype(np.float64)
        labels = prediction.label_logits.argmax(dim=-1).tolist()
        anchors = prediction.anchor_index.tolist()
        return [GroundedObject(center=centers[i], size=sizes[i], score=float(scores[i]),
                               label=self.config.labels[labels[i]], token_index=anchors[i])
                for i in range(len(where))]

    # -- training ----------------------------------------------------------------------
    def compute_loss(self, scene: SceneInputs, example: TrainingExample, *,
                     targets: GroundingTargets | None = None,
                     prompt_points: np.ndarray | None = None,
                     grounding_weight: float = 1.0) -> SceneLlmLoss:
        """Teacher-forcing loss of one example: answer cross-entropy plus grounding losses.

        :param scene: the example's scene (:func:`prepare_scene_inputs`).
        :param example: from :func:`~scene_llm_ros.model.processing_scene_llm.
            build_training_example` with ``num_scene_tokens == scene.num_tokens``.
        :param targets: true boxes, one per ``<ground>`` token of the answer.
        :param prompt_points: float (M, 3) points matching the example's ``<point>`` tokens.
        :param grounding_weight: weight of the grounding total in ``total``.
        :raises ValueError: when the number of targets and ``<ground>`` tokens differ.
        """
        item = LossInput(scene, example, targets=targets, prompt_points=prompt_points)
        return self.compute_batch_loss([item], grounding_weight=grounding_weight)[0]

    def compute_batch_loss(self, items: Sequence[LossInput], *,
                           grounding_weight: float = 1.0) -> list[SceneLlmLoss]:
        """Teacher-forcing losses of several examples in one backbone call.

        Sequences are right-padded to the longest with an attention mask, so each example's
        losses equal :meth:`compute_loss` of that example alone (up to float rounding).

        :param items: the examples, possibly of different scenes.
        :param grounding_weight: weight of the grounding total in each ``total``.
        :return: one :class:`SceneLlmLoss` per item, in order (average them to train).
        :raises ValueError: for an empty batch, or when an item's targets and ``<ground>``
            tokens differ in number.
        """
        if not items:
            raise ValueError("compute_batch_loss needs at least one example")
        for index, item in enumerate(items):
            count = int((item.example.input_ids == self.token_ids.ground).sum())
            targets = item.targets
            given = 0 if targets is None else len(targets.labels)
            if count != given or (targets is not None and not
                                  len(targets.centers) == len(targets.sizes) == given):
                raise ValueError(f"example {index} has {count} {GROUND_TOKEN} tokens but "
                                 f"{given} target boxes/labels were given")
        lengths = [int(item.example.input_ids.numel()) for item in items]
        width = max(lengths)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(items), width), dtype=torch.long, device=self.device)
        for b, item in enumerate(items):
            ids[b, :lengths[b]] = item.example.input_ids.to(self.device)
            mask[b, :lengths[b]] = 1
        embeddings = self.llm.get_input_embeddings()(ids)  # (B, T, H)
        # Scene embeddings once per scene object of the batch (examples often share scenes).
        scene_inputs: dict[int, torch.Tensor] = {}
        rows = []
        for b, item in enumerate(items):
            key = id(item.scene)
            if key not in scene_inputs:
                scene_inputs[key] = self.scene_embeddings(item.scene)
            row = splice_embeddings(embeddings[b], ids[b], self.token_ids.scene,
                                    scene_inputs[key])
            rows.append(self._splice_prompt_objects(
                row, ids[b], validate_prompt_points(item.prompt_points), item.scene.origin,
                item.referents))
        embeddings = torch.stack(rows)
        # A mask of all ones is the same as none; leaving it out keeps the fast causal path.
        attention_mask = None if min(lengths) == width else mask
        hidden = self._backbone()(inputs_embeds=embeddings, attention_mask=attention_mask,
                                  use_cache=False).last_hidden_state  # (B, T, H)
        losses = []
        for b, item in enumerate(items):
            row_ids, row_hidden = ids[b, :lengths[b]], hidden[b, :lengths[b]]
            labels = item.example.labels[1:].to(self.device)
            # Only answer positions need the LM head (the scene prefix is most of the row).
            keep = labels != IGNORE_INDEX
            logits = self.llm.get_output_embeddings()(row_hidden[:-1][keep]).float()
            language = F.cross_entropy(logits, labels[keep]) if bool(keep.any()) \
                else logits.sum() * 0.0
            losses.append(self._example_loss(item, row_ids, row_hidden,
                                             scene_inputs[id(item.scene)], language,
                                             grounding_weight))
        return losses

    def _example_loss(self, item: LossInput, ids: torch.Tensor, hidden: torch.Tensor,
                      scene_inputs: torch.Tensor, language: torch.Tensor,
                      grounding_weight: float) -> SceneLlmLoss:
        """Add the grounding losses of one example (ids (T,), hidden (T, H))."""
        ground_mask = ids == self.token_ids.ground
        if item.targets is None or not bool(ground_mask.any()):
            return SceneLlmLoss(total=language, language=language, grounding=None)
        targets = item.targets
        grounding = grounding_loss(
            self.grounding_head, hidden[ground_mask],
            hidden[ids == self.token_ids.scene][:item.scene.num_patch_tokens],
            item.scene.positions.to(self.device),
            torch.as_tensor(targets.centers, dtype=torch.float32, device=self.device),
            torch.as_tensor(targets.sizes, dtype=torch.float32, device=self.device),
            self.label_indices(targets.labels),
            scene_inputs=scene_inputs[:item.scene.num_patch_tokens],
            token_classes=self._token_class_targets(item.scene.positions, targets))
        return SceneLlmLoss(total=language + grounding_weight * grounding.total,
                            language=language, grounding=grounding)

    def _token_class_targets(self, positions: torch.Tensor, targets: GroundingTargets
                             ) -> torch.Tensor | None:
        """int64 (K,) class of the smallest annotated object holding each scene token, -1 for
        none, IGNORE_INDEX inside objects outside the label vocabulary; None when unused."""
        if self.grounding_head.token_label is None or targets.scene_objects is None:
            return None
        centers, sizes, labels = targets.scene_objects
        classes = torch.full((positions.shape[0],), -1, dtype=torch.long, device=self.device)
        if not len(labels):
            return classes
        centers = torch.as_tensor(centers, dtype=torch.float32, device=self.device)
        sizes = torch.as_tensor(sizes, dtype=torch.float32, device=self.device)
        inside = ((positions.to(self.device)[:, None, :].float() - centers[None]).abs()
                  <= sizes[None] / 2).all(dim=-1)  # (K, M)
        volume = sizes.prod(dim=-1).expand_as(inside).masked_fill(~inside, float("inf"))
        smallest = volume.argmin(dim=-1)
        held = inside.any(dim=-1)
        classes[held] = self.label_indices(labels)[smallest[held]]
        return classes

    # -- LoRA --------------------------------------------------------------------------
    def wrap_with_lora(self, *, rank: int = 16, alpha: int = 32, dropout: float = 0.05,
                       target_modules: tuple[str, ...] = llm_loading.LORA_DEFAULT_TARGETS
                       ) -> None:
        """Add fresh trainable LoRA adapters to the LLM (see :func:`llm_loading.wrap_with_lora`)."""
        self.llm = llm_loading.wrap_with_lora(self.llm, rank=rank, alpha=alpha, dropout=dropout,
                                              target_modules=target_modules)
        self.clear_prefix_cache()

    def load_lora(self, adapter_dir: str | Path, *, trainable: bool = False) -> None:
        """Apply a saved LoRA adapter to the LLM."""
        self.llm = llm_loading.load_lora(self.llm, adapter_dir, trainable=trainable)
        self.clear_prefix_cache()

    def save_lora_adapter(self, directory: str | Path) -> None:
        """Write only the LoRA adapter (peft format, safetensors).

        :raises UnsupportedOperationError: when the LLM has no adapter.
        """
        if not llm_loading.is_lora(self.llm):
            raise UnsupportedOperationError("the LLM has no LoRA adapter to save")
        with checkpoint.atomic_directory(directory) as temporary:
            self.llm.save_pretrained(temporary, safe_serialization=True)

    # -- checkpoints -------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """Write the whole model atomically (safetensors only).

        Layout: ``scene_llm.json``, ``scene_llm.safetensors`` (scene encoder, grounding head),
        ``patch_encoder/`` (built-in encoder), ``segment_listener/``, ``box_completer/`` and
        ``segment_answerer/`` (when attached),
        ``llm/`` (LLM + tokenizer, unless the config names an external ``llm_path``) and
        ``lora_adapter/`` when the LLM has adapters. With an external ``llm_path`` whose
        tokenizer lacked ``<scene>``/``<ground>``/``<point>``, the embedding and LM-head rows
        that resizing created are stored in ``scene_llm.safetensors`` too
        (``llm_added_rows.*``), since the LLM directory lacks them and every load would
        otherwise draw new random rows.

        :raises UnsupportedOperationError: for a quantized LLM (save the full-precision one).
        """
        if llm_loading.is_quantized(self.llm):
            raise UnsupportedOperationError("a quantized LLM cannot be saved; save the "
                                            "full-precision model and quantize when loading")
        with checkpoint.atomic_directory(directory) as temporary:
            self.config.to_json_file(temporary / checkpoint.CONFIG_NAME)
            extra = self._added_rows() if self.config.llm_path is not None else {}
            checkpoint.save_weights(self._own_modules(), temporary / checkpoint.WEIGHTS_NAME,
                                    extra=extra)
            if self.config.patch_encoder["type"] == "builtin":
                if not isinstance(self.patch_encoder, BuiltinPatchEncoder):
                    raise UnsupportedOperationError("the config names the built-in patch "
                                                    "encoder but the model has none")
                self.patch_encoder.save_pretrained(temporary / checkpoint.ENCODER_DIR)
            if self.segment_listener is not None:
                self.segment_listener.save_pretrained(temporary / LISTENER_DIR)
            if self.segment_answerer is not None:
                self.segment_answerer.save_pretrained(temporary / ANSWERER_DIR)
            if self.box_completer is not None:
                self.box_completer.save_pretrained(temporary / COMPLETER_DIR)
            if self.config.llm_path is None:
                llm_dir = temporary / checkpoint.LLM_DIR
                if llm_loading.is_lora(self.llm):
                    self.llm.get_base_model().save_pretrained(
                        llm_dir, state_dict=llm_loading.base_model_state_dict(self.llm))
                else:
                    self.llm.save_pretrained(llm_dir)
                self.tokenizer.save_pretrained(llm_dir)
            if llm_loading.is_lora(self.llm):
                self.llm.save_pretrained(temporary / checkpoint.LORA_DIR)

    def _added_rows(self) -> dict[str, torch.Tensor]:
        """The embedding (and untied LM-head) rows created by resizing, for the checkpoint."""
        if not self.added_row_ids:
            return {}
        ids = torch.tensor(self.added_row_ids, dtype=torch.long)
        rows = {"ids": ids,
                "input_embeddings": self.llm.get_input_embeddings().weight[ids].float()}
        output = self.llm.get_output_embeddings()
        if output is not None and output.weight is not self.llm.get_input_embeddings().weight:
            rows["output_embeddings"] = output.weight[ids].float()
        return {checkpoint.ADDED_ROWS_PREFIX + name: tensor for name, tensor in rows.items()}

    def _restore_added_rows(self, extra: dict[str, torch.Tensor], directory: Path) -> None:
        """Put saved embedding rows back over the fresh ones resizing just made.

        :raises CheckpointMismatchError: when the saved rows are for other token ids.
        """
        prefix = checkpoint.ADDED_ROWS_PREFIX
        if not extra:
            if self.added_row_ids and self.config.llm_path is not None:
                logger.warning("%s has no saved rows for the <scene>/<ground>/<point> tokens "
                               "added to %s; they are freshly initialised", directory,
                               self.config.llm_path)
            return
        ids = extra[prefix + "ids"].tolist()
        if ids != self.added_row_ids:
            raise CheckpointMismatchError(f"{directory} stores embedding rows for token ids "
                                          f"{ids} but resizing {self.config.llm_path} added "
                                          f"{self.added_row_ids}")
        index = torch.tensor(ids, dtype=torch.long, device=self.device)
        with torch.no_grad():
            embeddings = self.llm.get_input_embeddings().weight
            embeddings[index] = extra[prefix + "input_embeddings"].to(embeddings)
            output = self.llm.get_output_embeddings()
            if prefix + "output_embeddings" in extra and output is not None:
                output.weight[index] = extra[prefix + "output_embeddings"].to(output.weight)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str = "cpu",
                        dtype: str | torch.dtype = "float32", quantization: str | None = None,
                        lora_path: str | Path | None = None) -> SceneLlm:
        """Load a model written by :meth:`save_pretrained`, in eval mode.

        :param directory: the checkpoint directory, or ``embedded`` for the embedded default
            model shipped with the package.
        :param device: ``"cpu"`` or ``"cuda:N"``.
        :param dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        :param quantization: None, ``"4bit"`` (NF4) or ``"8bit"`` for the LLM (bitsandbytes).
        :param lora_path: a LoRA adapter directory to apply instead of the checkpoint's own
            ``lora_adapter/``.
        :raises DataFormatError: when files are missing or unreadable.
        :raises CheckpointMismatchError: naming tensors that do not match the config.
        """
        # Bad options fail before any file is read.
        torch_dtype = llm_loading.resolve_dtype(dtype)
        llm_loading.resolve_device(device)
        llm_loading.quantization_config(quantization, torch_dtype)
        directory = resolve_model_path(directory)
        config = SceneLlmConfig.from_json_file(directory / checkpoint.CONFIG_NAME)
        llm_dir = Path(config.llm_path) if config.llm_path else directory / checkpoint.LLM_DIR
        llm = llm_loading.load_llm(llm_dir, dtype=torch_dtype, device=device,
                                   quantization=quantization)
        tokenizer = llm_loading.load_tokenizer(llm_dir)
        encoder = encoder_from_spec(config.patch_encoder, checkpoint_dir=directory,
                                          device=device)
        model = cls(config, llm, tokenizer, encoder)
        model._place_own_modules(torch_dtype)
        extra = checkpoint.load_weights(model._own_modules(), directory / checkpoint.WEIGHTS_NAME)
        model._restore_added_rows(extra, directory)
        own_adapter = directory / checkpoint.LORA_DIR
        if lora_path is not None or own_adapter.is_dir():
            model.load_lora(lora_path if lora_path is not None else own_adapter)
        if (directory / LISTENER_DIR).is_dir():
            model.set_segment_listener(SegmentListener.from_pretrained(directory / LISTENER_DIR,
                                                                       device=device))
        if (directory / COMPLETER_DIR).is_dir():
            model.set_box_completer(SegmentBoxCompleter.from_pretrained(
                directory / COMPLETER_DIR, device=device))
        if (directory / ANSWERER_DIR).is_dir():
            model.set_segment_answerer(SegmentAnswerer.from_pretrained(directory / ANSWERER_DIR,
                                                                       device=device))
        return model.eval()

