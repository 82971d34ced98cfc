"""Shared helpers of the test_model_* tests: a tiny model and synthetic snapshots."""
from __future__ import annotations

import dataclasses
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
#: Classes of :func:`two_chairs_snapshot`'s semantic map.
CHAIR_CLASSES = ("chair", "door", "floor", "wall")
COLOURS = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 160, 30)}


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


def two_chairs_snapshot() -> SceneSnapshot:
    """A snapshot whose semantic map holds a floor, a red chair and a blue chair."""
    step = 0.04
    grid = np.arange(0.0, 4.0, step)
    floor = np.stack(np.meshgrid(grid, grid, [0.0], indexing="ij"), axis=-1).reshape(-1, 3)
    chairs, colours = [], []
    for x, colour in ((1.0, COLOURS["red"]), (3.0, COLOURS["blue"])):
        axes = [np.arange(x, x + 0.5, step), np.arange(1.0, 1.5, step),
                np.arange(0.08, 0.9, step)]
        chairs.append(np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3))
        colours.append(np.tile(colour, (len(chairs[-1]), 1)))
    points = np.concatenate([floor, *chairs]).astype(np.float32)
    colors = np.concatenate([np.full((len(floor), 3), 128), *colours]).astype(np.uint8)
    classes = np.concatenate([np.full(len(floor), CHAIR_CLASSES.index("floor")),
                              np.full(len(points) - len(floor), CHAIR_CLASSES.index("chair"))])
    chair = CHAIR_CLASSES.index("chair")
    return dataclasses.replace(make_snapshot(16), points=points, colors=colors,
                               point_classes=classes.astype(np.int16),
                               point_object_classes=np.full(len(points), chair, np.int16),
                               class_names=CHAIR_CLASSES)
