"""The 3D patch memory: patch features pooled into a sparse voxel hash as running means."""
from __future__ import annotations

import numpy as np

from scene_llm_ros.errors import DataFormatError

# Voxel indices are packed into one int64 key, 21 bits per axis (+-1M cells: +-200 km at
# 0.2 m), so a Python dict over ints is the hash.
_BITS = 21
_OFFSET = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1


def pack_voxel_keys(indices: np.ndarray) -> np.ndarray:
    """int (N, 3) voxel indices -> int64 (N,) keys."""
    shifted = (indices.astype(np.int64) + _OFFSET) & _MASK
    return (shifted[:, 0] << (2 * _BITS)) | (shifted[:, 1] << _BITS) | shifted[:, 2]


class PatchMemory:
    """Sparse voxel hash of 3D patch tokens.

    Each occupied voxel holds the running mean of the features and positions of the patches
    that fell into it and how many did, so memory grows with the explored volume, not with
    the number of keyframes. Features are stored as float16.

    :param voxel_size_m: edge of a memory voxel, metres.
    :param feature_dim: length of each feature vector.
    """

    def __init__(self, voxel_size_m: float = 0.2, feature_dim: int = 128,
                 initial_capacity: int = 1024) -> None:
        if voxel_size_m <= 0 or feature_dim <= 0:
            raise ValueError(f"need positive voxel size and feature dim, got {voxel_size_m}, "
                             f"{feature_dim}")
        self.voxel_size_m = float(voxel_size_m)
        self.feature_dim = int(feature_dim)
        self._slots: dict[int, int] = {}
        self._keys = np.zeros(initial_capacity, np.int64)
        self._positions = np.zeros((initial_capacity, 3), np.float32)
        self._features = np.zeros((initial_capacity, feature_dim), np.float16)
        self._counts = np.zeros(initial_capacity, np.int64)

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the arrays (allocated capacity) plus an estimate for the dict."""
        arrays = (self._keys.nbytes + self._positions.nbytes + self._features.nbytes
                  + self._counts.nbytes)
        return arrays + 100 * len(self._slots)

    def add(self, positions: np.ndarray, features: np.ndarray) -> int:
        """Pool patches into the memory.

        :param positions: float (N, 3) world metres, finite.
        :param features: float (N, feature_dim).
        :return: number of voxels that were newly occupied.
        """
        if len(positions) == 0:
            return 0
        if features.shape != (len(positions), self.feature_dim):
            raise ValueError(f"features must be ({len(positions)}, {self.feature_dim}), got "
                             f"{features.shape}")
        keys = pack_voxel_keys(np.floor(positions / self.voxel_size_m))
        unique_keys, inverse = np.unique(keys, return_inverse=True)
        # Sums per voxel within this batch first, then one running-mean update per voxel.
        n_batch = np.bincount(inverse, minlength=len(unique_keys))
        # Rows grouped by voxel in their original order, then summed per group: the same sums
        # as np.add.at, which is about ten times slower.
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(n_batch)[:-1]])
        sum_pos = np.add.reduceat(positions[order].astype(np.float64), starts, axis=0)
        sum_feat = np.add.reduceat(features[order].astype(np.float64), starts, axis=0)

        slots = np.empty(len(unique_keys), np.int64)
        new = 0
        for i, key in enumerate(unique_keys.tolist()):
            slot = self._slots.get(key)
            if slot is None:
                slot = len(self._slots)
                self._slots[key] = slot
                new += 1
            slots[i] = slot
        self._ensure_capacity(len(self._slots))
        self._keys[slots] = unique_keys
        old_n = self._counts[slots]
        total = old_n + n_batch
        weight_old = (old_n / total)[:, None]
        self._positions[slots] = (self._positions[slots] * weight_old
                                  + sum_pos / total[:, None]).astype(np.float32)
        self._features[slots] = (self._features[slots].astype(np.float64) * weight_old
                                 + sum_feat / total[:, None]).astype(np.float16)
        self._counts[slots] = total
        return new

    def _ensure_capacity(self, needed: int) -> None:
        capacity = len(self._keys)
        if needed <= capacity:
            return
        new_capacity = max(needed, 2 * capacity)
        grow = new_capacity - capacity
        self._keys = np.concatenate([self._keys, np.zeros(grow, np.int64)])
        self._positions = np.concatenate([self._positions, np.zeros((grow, 3), np.float32)])
        self._features = np.concatenate(
            [self._features, np.zeros((grow, self.feature_dim), np.float16)])
        self._counts = np.concatenate([self._counts, np.zeros(grow, np.int64)])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the occupied part, sorted by voxel key (a deterministic order).

        :return: ``(keys int64 (M,), positions float32 (M, 3), features float16 (M, C),
            counts int64 (M,))``.
        """
        n = len(self._slots)
        order = np.argsort(self._keys[:n], kind="stable")
        return (self._keys[:n][order].copy(), self._positions[:n][order].copy(),
                self._features[:n][order].copy(), self._counts[:n][order].copy())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays for saving (see :meth:`from_state_dict`)."""
        keys, positions, features, counts = self.arrays()
        return {"keys": keys, "positions": positions, "features": features, "counts": counts,
                "voxel_size_m": np.array(self.voxel_size_m)}

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> PatchMemory:
        """Rebuild a memory saved with :meth:`state_dict`.

        :raises DataFormatError: when arrays are missing or inconsistent.
        """
        try:
            keys, positions = state["keys"], state["positions"]
            features, counts = state["features"], state["counts"]
            voxel_size = float(state["voxel_size_m"])
        except KeyError as exc:
            raise DataFormatError(f"patch memory is missing array {exc}") from exc
        n = len(keys)
        if (positions.shape != (n, 3) or features.ndim != 2 or len(features) != n
                or counts.shape != (n,) or len(np.unique(keys)) != n):
            raise DataFormatError(
                f"patch memory arrays are inconsistent: keys {keys.shape}, positions "
                f"{positions.shape}, features {features.shape}, counts {counts.shape}")
        memory = cls(voxel_size, features.shape[1], initial_capacity=max(n, 1))
        memory._keys[:n] = keys
        memory._positions[:n] = positions
        memory._features[:n] = features.astype(np.float16)
        memory._counts[:n] = counts
        memory._slots = {int(k): i for i, k in enumerate(keys.tolist())}
        return memory
