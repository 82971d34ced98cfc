"""Matching of header stamps, shared by the bag reader and the live synchroniser."""
from __future__ import annotations

import bisect
from collections.abc import Sequence


def nearest_within(stamps: Sequence[int], stamp_ns: int, slop_ns: int) -> int | None:
    """Index of the stamp nearest ``stamp_ns`` in sorted ``stamps``, or None beyond ``slop_ns``."""
    i = bisect.bisect_left(stamps, stamp_ns)
    best = min((j for j in (i - 1, i) if 0 <= j < len(stamps)),
               key=lambda j: abs(stamps[j] - stamp_ns), default=None)
    if best is None or abs(stamps[best] - stamp_ns) > slop_ns:
        return None
    return best
