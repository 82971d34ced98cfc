"""A TF buffer without tf2: stamped transforms looked up through frame chains at any stamp.

Used offline over a whole bag and online by the fusion node where tf2_ros is not installed.
"""
from __future__ import annotations

import bisect
import logging

import numpy as np

from scene_llm_ros.data.transforms import interpolate_transform, invert_transform
from scene_llm_ros.errors import SceneLlmError

_LOG = logging.getLogger(__name__)

#: How far outside its samples a time series may be read (the nearest sample is used).
DEFAULT_TOLERANCE_NS = 50_000_000


class TransformLookupError(SceneLlmError):
    """A transform is not available at the requested time (unknown frame or extrapolation)."""


class TransformTrack:
    """A time series of one transform ``T_parent_child``, interpolated between samples.

    Between two samples the rotation is slerped and the translation is linear, as in tf2.
    Outside the samples the nearest sample is used up to ``tolerance_ns``; beyond, lookups fail.
    """

    def __init__(self, name: str, *, tolerance_ns: int = DEFAULT_TOLERANCE_NS,
                 history_ns: int | None = None, jump_back_ns: int | None = None) -> None:
        """:param name: what the track is, for error messages (e.g. ``map -> camera_link``).
        :param history_ns: keep only samples this much older than the newest one (a live
            stream would otherwise grow without bound); None keeps everything.
        :param jump_back_ns: a sample this much older than the newest one means the source
            started over (a bag loop): the earlier samples are forgotten. None never forgets.
        """
        self.name = name
        self.tolerance_ns = int(tolerance_ns)
        self.history_ns = history_ns
        self.jump_back_ns = jump_back_ns
        self._stamps: list[int] = []
        self._transforms: list[np.ndarray] = []
        self._sorted = True
        self._newest_ns: int | None = None

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp_ns: int, T: np.ndarray) -> None:
        """Add a sample; a repeated stamp replaces the earlier sample."""
        stamp_ns = int(stamp_ns)
        newest = self._newest_ns
        if (self.jump_back_ns is not None and newest is not None
                and stamp_ns < newest - self.jump_back_ns):
            self.clear()
            newest = None
        if self._stamps and stamp_ns <= self._stamps[-1]:
            self._sorted = False
        self._newest_ns = stamp_ns if newest is None else max(newest, stamp_ns)
        self._stamps.append(stamp_ns)
        self._transforms.append(np.asarray(T, dtype=np.float64))
        if self.history_ns is not None and len(self._stamps) % 64 == 0:
            self._prune()

    def _prune(self) -> None:
        if not self._sorted:
            self._sort()
        first_kept = bisect.bisect_left(self._stamps, self._stamps[-1] - self.history_ns)
        del self._stamps[:first_kept], self._transforms[:first_kept]

    def clear(self) -> None:
        """Forget every sample (e.g. after time jumped back)."""
        self._stamps.clear()
        self._transforms.clear()
        self._sorted = True
        self._newest_ns = None

    def _sort(self) -> None:
        # Keep the last sample of each stamp: a later message corrects an earlier one.
        latest = dict(zip(self._stamps, self._transforms, strict=True))
        self._stamps = sorted(latest)
        self._transforms = [latest[s] for s in self._stamps]
        self._sorted = True

    @property
    def span_ns(self) -> tuple[int, int]:
        """First and last sample stamps."""
        if not self._sorted:
            self._sort()
        if not self._stamps:
            raise TransformLookupError(f"{self.name} has no samples")
        return self._stamps[0], self._stamps[-1]

    def at(self, stamp_ns: int, *, tolerance_ns: int | None = None) -> np.ndarray:
        """float64 (4, 4) transform at ``stamp_ns``.

        :param tolerance_ns: overrides the track's tolerance for this lookup.
        :raises TransformLookupError: if the track is empty or ``stamp_ns`` lies more than
            the tolerance outside its samples.
        """
        tolerance = self.tolerance_ns if tolerance_ns is None else int(tolerance_ns)
        first, last = self.span_ns
        stamps = self._stamps
        if stamp_ns <= first or stamp_ns >= last:
            gap = first - stamp_ns if stamp_ns <= first else stamp_ns - last
            if gap > tolerance:
                raise TransformLookupError(
                    f"{self.name} would extrapolate {gap * 1e-9:.3f} s to {stamp_ns} ns "
                    f"(samples {first}..{last} ns, tolerance {tolerance * 1e-9:.3f} s)")
            return self._transforms[0 if stamp_ns <= first else -1]
        i = bisect.bisect_right(stamps, stamp_ns)  # stamps[i - 1] <= stamp_ns < stamps[i]
        t0, t1 = stamps[i - 1], stamps[i]
        if stamp_ns == t0:
            return self._transforms[i - 1]
        return interpolate_transform(self._transforms[i - 1], self._transforms[i],
                                     (stamp_ns - t0) / (t1 - t0))


class TFBuffer:
    """Static and dynamic transforms of a tree of frames, looked up at any stamp.

    Each child frame has one parent; a lookup walks both frames up to their lowest common
    ancestor and interpolates every dynamic edge on the way at the requested stamp.
    """

    def __init__(self, *, tolerance_ns: int = DEFAULT_TOLERANCE_NS,
                 history_ns: int | None = None, jump_back_ns: int | None = None) -> None:
        """:param tolerance_ns: how far each dynamic edge may be read outside its samples.
        :param history_ns: how much history each dynamic edge keeps (None: everything).
        :param jump_back_ns: see :class:`TransformTrack`; applies to each dynamic edge.
        """
        self.tolerance_ns = int(tolerance_ns)
        self.history_ns = history_ns
        self.jump_back_ns = jump_back_ns
        self._parent: dict[str, str] = {}
        self._static: dict[str, np.ndarray] = {}
        self._dynamic: dict[str, TransformTrack] = {}

    @property
    def frames(self) -> set[str]:
        """Every frame name seen."""
        return set(self._parent) | set(self._parent.values())

    def _set_parent(self, parent: str, child: str) -> bool:
        known = self._parent.setdefault(child, parent)
        if known != parent:
            # tf2 would re-parent; a bag with two parents for one frame is broken, keep the first.
            _LOG.warning("frame %r has parents %r and %r; keeping %r", child, known, parent,
                         known)
            return False
        return True

    def add_static(self, parent: str, child: str, T_parent_child: np.ndarray) -> None:
        """Add a ``/tf_static`` edge (valid at all times)."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if self._set_parent(parent, child):
            self._static[child] = np.asarray(T_parent_child, dtype=np.float64)

    def add_dynamic(self, parent: str, child: str, stamp_ns: int,
                    T_parent_child: np.ndarray) -> None:
        """Add one ``/tf`` sample of an edge."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if self._set_parent(parent, child):
            track = self._dynamic.get(child)
            if track is None:
                track = self._dynamic[child] = TransformTrack(
                    f"{parent} -> {child}", tolerance_ns=self.tolerance_ns,
                    history_ns=self.history_ns, jump_back_ns=self.jump_back_ns)
            track.add(stamp_ns, T_parent_child)

    def clear_dynamic(self) -> None:
        """Forget every /tf sample, keep /tf_static (as tf2 does when time jumps back)."""
        for track in self._dynamic.values():
            track.clear()

    def _edge(self, child: str, stamp_ns: int, tolerance_ns: int | None) -> np.ndarray:
        static = self._static.get(child)
        if static is not None:
            return static
        return self._dynamic[child].at(stamp_ns, tolerance_ns=tolerance_ns)

    def _ancestors(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._parent:
            chain.append(self._parent[chain[-1]])
            if len(chain) > len(self._parent) + 1:
                raise TransformLookupError(f"TF frames around {frame!r} form a cycle")
        return chain

    def can_transform(self, target: str, source: str) -> bool:
        """Whether ``target`` and ``source`` are connected (at some time)."""
        return bool(set(self._ancestors(target.lstrip("/"))) &
                    set(self._ancestors(source.lstrip("/"))))

    def lookup(self, target: str, source: str, stamp_ns: int, *,
               tolerance_ns: int | None = None) -> np.ndarray:
        """``T_target_source`` at ``stamp_ns``: float64 (4, 4), ``source`` points to ``target``.

        :param tolerance_ns: overrides the buffer's tolerance for this lookup.

        :raises TransformLookupError: if the frames are not connected or an edge on the chain
            has no sample within the tolerance of ``stamp_ns``.
        """
        target, source = target.lstrip("/"), source.lstrip("/")
        up_source = self._ancestors(source)
        up_target = self._ancestors(target)
        common = next((f for f in up_target if f in set(up_source)), None)
        if common is None:
            known = ", ".join(sorted(self.frames)) or "none"
            raise TransformLookupError(
                f"no TF chain from {source!r} to {target!r} (frames known: {known})")
        T_common_source = np.eye(4)
        for child in up_source[:up_source.index(common)]:
            T_common_source = self._edge(child, stamp_ns, tolerance_ns) @ T_common_source
        T_common_target = np.eye(4)
        for child in up_target[:up_target.index(common)]:
            T_common_target = self._edge(child, stamp_ns, tolerance_ns) @ T_common_target
        return invert_transform(T_common_target) @ T_common_source
