"""Results of :meth:`scene_llm_ros.model.modeling_scene_llm.SceneLlm.answer`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GroundedObject:
    """One object the answer referred to with a ``<ground>`` token.

    :ivar center: float64 (3,) box centre, scene frame, metres.
    :ivar size: float64 (3,) full box extents, metres (vision_msgs BoundingBox3D semantics).
    :ivar score: confidence in [0, 1].
    :ivar label: class name from the model's label vocabulary.
    :ivar token_index: the scene token the box was regressed from.
    """

    center: np.ndarray
    size: np.ndarray
    score: float
    label: str
    token_index: int


@dataclass
class Answer:
    """The model's answer with grounding and per-stage timing.

    :ivar text: answer text, ``<ground>`` and other special tokens removed.
    :ivar objects: grounded objects in the order of their ``<ground>`` tokens.
    :ivar encode_ms: scene and point tokens -> LLM embeddings (scene part is skipped, ~0,
        when the prefix cache hit).
    :ivar prefill_ms: LLM prefill of the prompt; the scene prefix part only on a cache miss.
        With beam search only the scene prefix is counted, the rest of the prompt is
        prefilled inside ``generate`` and counted in ``decode_ms``.
    :ivar decode_ms: token generation, plus the grounding pass.
    :ivar tokens_generated: new tokens, including the end-of-sequence token if emitted.
    :ivar scene_version: version of the snapshot the answer is about.
    :ivar cancelled: ``should_stop`` ended generation early.
    :ivar prefix_cache_hit: the scene prefix came from the cache.
    """

    text: str
    objects: list[GroundedObject] = field(default_factory=list)
    encode_ms: float = 0.0
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    tokens_generated: int = 0
    scene_version: int = -1
    cancelled: bool = False
    prefix_cache_hit: bool = False
