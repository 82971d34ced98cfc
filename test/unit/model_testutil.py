"""Shared helpers of the test_model_* tests: a tiny model and synthetic snapshots."""
from __future__ import annotations

import functools

import numpy as np

from scene_llm_ros.fusion.snapshot import SceneSnapshot
from scene_llm_ros.model import build_tiny_scene_llm

CORPUS = [
    "where is the chair? the chair is next to the table.",
    "find the brown sofa near the window and the lamp on the desk.",
    "how many beds are in the room? there are two beds.",
    "describe the object at the marked point. it is a white cabinet.",
    "i am sitting on the bed facing the door. what is on my left? a desk.",
] * 10


@functools.lru_cache(maxsize=2)
def tiny_model(chat_template: bool = True):
    """One tiny model per template flavour, shared by the tests of a module (read-only use)."""
    return build_tiny_scene_llm(CORPUS, chat_template=chat_template, seed=0)


def make_snapshot(num_tokens: int = 256, *, feature_dim: int = 128, seed: int = 0,
                  offset=(0.0, 0.0, 0.0), version: int = 1) -> SceneSnapshot:
    """A room-sized random scene, optionally translated by ``offset`` (metres)."""
    rng = np.random.default_rng(seed)
    positions = rng.uniform([0.0, 0.0, 0.0], [6.0, 5.0, 2.5], (num_tokens, 3))
    positions = (positions + np.asarray(offset)).astype(np.float32)
    features = rng.normal(size=(num_tokens, feature_dim)).astype(np.float16)
    # Fusion reports NaN bounds before anything was observed.
    low = positions.min(axis=0) if num_tokens else np.full(3, np.nan, np.float32)
    high = positions.max(axis=0) if num_tokens else np.full(3, np.nan, np.float32)
    return SceneSnapshot(positions=positions, features=features,
                         counts=np.ones(num_tokens, np.int64), total_tokens=num_tokens,
                         scene_version=version, stamp_ns=0, scene_frame="map", keyframe=None,
                         bounds_min=low, bounds_max=high,
                         points=positions.copy(), colors=np.zeros((num_tokens, 3), np.uint8))


def force_token(model, token_id: int, boost: float = 1e4):
    """Make the LLM always emit ``token_id``; returns the hook handle (call ``.remove()``)."""
    lm_head = model.llm.get_output_embeddings()

    def add_bias(_module, _inputs, logits):
        logits = logits.clone()
        logits[..., token_id] += boost
        return logits

    return lm_head.register_forward_hook(add_bias)

