"""Approximate-time pairing of two image streams, and camera info matching."""
from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scene_llm_ros.data.stamps import nearest_within


@dataclass(order=True)
class Stamped:
    """A message with its header stamp (ordered by stamp)."""

    stamp_ns: int
    message: Any = field(compare=False)


class ApproximatePairSync:
    """Pairs messages of two streams whose stamps are nearest each other within ``slop_ns``.

    Each message is paired at most once. A pair is emitted only when no message still to come
    could be a closer partner (stamps on a stream arrive roughly in order), so equal stamps,
    as a depth registered to colour has, pair at once. A message that can no longer be paired,
    or that overflows its stream's buffer of ``buffer_size``, is passed to ``on_unpaired``.
    """

    def __init__(self, slop_ns: int, buffer_size: int,
                 on_unpaired: Callable[[int, Stamped], None]) -> None:
        """:param on_unpaired: called with the stream index (0 or 1) and the dropped message."""
        if slop_ns < 0 or buffer_size < 1:
            raise ValueError(f"need slop_ns >= 0 and buffer_size >= 1, got {slop_ns}, "
                             f"{buffer_size}")
        self.slop_ns = int(slop_ns)
        self.buffer_size = int(buffer_size)
        self._on_unpaired = on_unpaired
        self._streams: tuple[list[Stamped], list[Stamped]] = ([], [])
        self._newest: list[int | None] = [None, None]

    def clear(self) -> None:
        """Forget buffered messages without reporting them."""
        for stream in self._streams:
            stream.clear()
        self._newest = [None, None]

    def buffered(self, index: int) -> int:
        """Messages of stream ``index`` waiting for a partner."""
        return len(self._streams[index])

    def add(self, index: int, stamp_ns: int, message: Any) -> list[tuple[Any, Any]]:
        """Buffer a message of stream ``index`` and return the pairs (stream 0, stream 1) formed."""
        stream, other = self._streams[index], 1 - index
        item = Stamped(int(stamp_ns), message)
        newest_other = self._newest[other]
        if (not self._streams[other] and newest_other is not None
                and item.stamp_ns < newest_other - self.slop_ns):
            # Every partner it could have had was consumed; later ones are newer still.
            self._on_unpaired(index, item)
            return []
        self._newest[index] = max(item.stamp_ns, self._newest[index] or item.stamp_ns)
        bisect.insort(stream, item)
        if len(stream) > self.buffer_size:
            self._on_unpaired(index, stream.pop(0))
        return self._match()

    def _match(self) -> list[tuple[Any, Any]]:
        pairs = []
        a, b = self._streams
        while a and b:
            if self._drop_hopeless(a, b) or self._drop_hopeless(b, a):
                continue
            # The older head's nearest partner is the other head; find that head's nearest.
            older, other = (a, b) if a[0].stamp_ns <= b[0].stamp_ns else (b, a)
            target = other[0].stamp_ns
            k = min(range(len(older)), key=lambda i: abs(older[i].stamp_ns - target))
            if k == len(older) - 1 and older[k].stamp_ns < target:
                break  # a later message on `older` may still be nearer to `target`
            for _ in range(k):
                self._on_unpaired(0 if older is a else 1, older.pop(0))
            first, second = older.pop(0), other.pop(0)
            pairs.append((first.message, second.message) if older is a
                         else (second.message, first.message))
        return pairs

    def _drop_hopeless(self, stream: list[Stamped], other: list[Stamped]) -> bool:
        """Drop the head of ``stream`` if even the oldest message of ``other`` is too new."""
        if stream[0].stamp_ns < other[0].stamp_ns - self.slop_ns:
            self._on_unpaired(0 if stream is self._streams[0] else 1, stream.pop(0))
            return True
        return False


class CameraInfoCache:
    """Recent camera infos, matched to an image stamp.

    The info nearest the image stamp within the slop is used; when none is that near but
    every cached info is the same calibration (a driver publishing info at another rate), the
    latest one is used.
    """

    def __init__(self, slop_ns: int, size: int = 32) -> None:
        self.slop_ns = int(slop_ns)
        self.size = int(size)
        self._infos: list[Stamped] = []

    def __len__(self) -> int:
        return len(self._infos)

    def clear(self) -> None:
        self._infos.clear()

    def add(self, stamp_ns: int, info: Any) -> None:
        bisect.insort(self._infos, Stamped(int(stamp_ns), info))
        if len(self._infos) > self.size:
            self._infos.pop(0)

    def match(self, stamp_ns: int) -> Any | None:
        if not self._infos:
            return None
        j = nearest_within([i.stamp_ns for i in self._infos], stamp_ns, self.slop_ns)
        if j is not None:
            return self._infos[j].message
        if len({_calibration(i.message) for i in self._infos}) == 1:
            return self._infos[-1].message
        return None


def _calibration(info: Any) -> tuple:
    return (int(info.width), int(info.height), tuple(float(v) for v in info.k))
