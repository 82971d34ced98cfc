"""This process's share of the samples, epoch after epoch, with a resumable position."""
from __future__ import annotations

from torch.utils.data import Dataset, DistributedSampler


class ShardCursor:
    """Hands out sample indices of one rank's ``DistributedSampler`` shard, across epochs.

    Epoch ``e`` is the sampler's permutation seeded by ``seed + e`` (``set_epoch``), padded to
    equal shard sizes, so every rank takes the same number of samples per step and the cursor
    (epoch, offset) is the same on all ranks.

    :param dataset: the samples.
    :param rank: this process; ``world_size``: processes.
    :param seed: shuffling seed (the same on every rank).
    """

    def __init__(self, dataset: Dataset, *, rank: int, world_size: int, seed: int) -> None:
        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                          shuffle=True, seed=seed, drop_last=False)
        self.epoch = 0
        self.offset = 0
        self._order: list[int] | None = None

    def _current(self) -> list[int]:
        if self._order is None:
            self.sampler.set_epoch(self.epoch)
            self._order = list(self.sampler)
        return self._order

    def take(self, count: int) -> list[int]:
        """The next ``count`` indices, moving into the next epoch when one ends."""
        taken = []
        while len(taken) < count:
            order = self._current()
            if self.offset >= len(order):
                self.epoch, self.offset, self._order = self.epoch + 1, 0, None
                continue
            need = count - len(taken)
            taken.extend(order[self.offset:self.offset + need])
            self.offset += min(need, len(order) - self.offset)
        return taken

    def state(self) -> dict:
        """JSON position: ``{"epoch": e, "offset": o}``."""
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state(self, state: dict) -> None:
        """Continue from a :meth:`state`."""
        self.epoch, self.offset, self._order = int(state["epoch"]), int(state["offset"]), None
