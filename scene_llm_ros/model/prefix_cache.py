"""KV caches of (system prompt + scene tokens), kept per scene and prompt prefix."""
from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ScenePrefix:
    """A prefilled scene prefix.

    :ivar cache: the LLM's KV cache after the prefix; never handed to the LLM itself, because
        generation appends to a cache in place (see :meth:`fresh_cache`).
    :ivar scene_hidden: (K, H) last-layer hidden states at the scene tokens (grounding keys).
    :ivar length: prefix length in tokens.
    :ivar scene_inputs: (K, H) the scene tokens' input embeddings (grounding keys read them
        too); None when not kept.
    """

    cache: object
    scene_hidden: torch.Tensor
    length: int
    scene_inputs: torch.Tensor | None = None

    def fresh_cache(self):
        """A deep copy of the cache that generation may extend."""
        return copy.deepcopy(self.cache)


def prefix_key(scene_version: int, scene_fingerprint: str, prefix_ids: list[int]) -> tuple:
    """Cache key: the scene's version and content, and the exact prefix token ids."""
    ids = hashlib.blake2b(np.asarray(prefix_ids, np.int64).tobytes(), digest_size=16).hexdigest()
    return int(scene_version), scene_fingerprint, ids


class ScenePrefixCache:
    """Least-recently-used store of :class:`ScenePrefix` entries.

    Not thread-safe on its own; :class:`~scene_llm_ros.model.modeling_scene_llm.SceneLlm`
    uses it under its lock.

    :param max_entries: entries kept; the least recently used is dropped beyond that.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries must be > 0, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, ScenePrefix] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> ScenePrefix | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, entry: ScenePrefix) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry (after weights change, cached activations are stale)."""
        self._entries.clear()
