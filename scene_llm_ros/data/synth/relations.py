"""Spatial facts of a synthetic scene computed from geometry (closest, on, next to, left of...).

Every predicate used in a description is evaluated with a margin: a fact is stated for the
target only when it holds clearly, and a distractor is ruled out only when the fact clearly
fails for it, so that small geometric ties never produce false or ambiguous text.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scene_llm_ros.data.synth.assembly import SynthObject
from scene_llm_ros.data.synth.library import CATEGORIES
from scene_llm_ros.data.synth.room import Room

NEXT_TO_M = 0.45          # footprint gap below which two objects are "next to" each other
NOT_NEXT_TO_M = 0.9
DISTANCE_MARGIN_M = 0.3   # closest/farthest must win by this much
SIZE_RATIO = 1.3          # largest/smallest must win by this volume ratio
# Classes that share a NYU40 id but are lumped only as "other" (their members are unrelated).
_OTHER_CLASSES = (39, 40)


def footprint_gap(a: SynthObject, b: SynthObject) -> float:
    """Distance between the xy extents of two axis-aligned boxes (0 when they overlap)."""
    gap = np.maximum(0.0, np.maximum(a.box_min[:2] - b.box_max[:2], b.box_min[:2] - a.box_max[:2]))
    return float(np.linalg.norm(gap))


def near_gap(a: SynthObject, b: SynthObject) -> float:
    """:func:`footprint_gap` for objects at overlapping heights, else infinity (a picture
    above a bed is not next to it)."""
    if a.box_min[2] >= b.box_max[2] or b.box_min[2] >= a.box_max[2]:
        return float("inf")
    return footprint_gap(a, b)


def center_distance(a: SynthObject, b: SynthObject) -> float:
    """Horizontal distance between box centres, metres."""
    return float(np.linalg.norm(a.center[:2] - b.center[:2]))


@dataclass
class Fact:
    """A phrase about a target and the test that rules distractors in or out.

    :ivar kind: ``color``, ``size``, ``closest``, ``farthest``, ``on``, ``next_to``, ``left``,
        ``right``, ``front``, ``middle``, ``corner``, ``under``.
    :ivar anchor: object id of the other object the phrase mentions, or None.
    :ivar value: colour name or size adjective for ``color`` / ``size``.
    :ivar excludes: object ids for which the fact clearly does not hold.
    """

    kind: str
    anchor: int | None
    value: str
    excludes: frozenset[int]

    @property
    def spatial(self) -> bool:
        """True for relations to other objects or the room."""
        return self.kind not in ("color", "size")


class SceneFacts:
    """Geometry queries over the non-structural objects of one scene."""

    def __init__(self, room: Room, objects: list[SynthObject]) -> None:
        self.room = room
        self.objects = [o for o in objects if not o.structure]
        self.by_id = {o.object_id: o for o in self.objects}
        self.labels = sorted({o.label for o in self.objects})

    # -- classes -----------------------------------------------------------------------
    def same_class(self, obj: SynthObject) -> list[SynthObject]:
        """Objects a reader could confuse with ``obj``: the same NYU40 class (ScanRefer's
        rule), or the same label for the catch-all classes; ``obj`` included."""
        if obj.nyu40_id in _OTHER_CLASSES:
            return [o for o in self.objects if o.label == obj.label]
        return [o for o in self.objects if o.nyu40_id == obj.nyu40_id]

    def is_unique(self, obj: SynthObject) -> bool:
        """ScanRefer's "unique": the only object of its class in the scene."""
        return len(self.same_class(obj)) == 1

    def with_label(self, label: str) -> list[SynthObject]:
        """Objects whose aggregation label is ``label``."""
        return [o for o in self.objects if o.label == label]

    def nouns_of_others(self, label: str) -> set[str]:
        """Every noun of the other labels present in the scene."""
        return {n for other in self.labels if other != label for n in CATEGORIES[other].nouns}

    def nouns(self, label: str) -> list[str]:
        """Nouns of ``label`` that no other label present in the scene also uses."""
        taken = self.nouns_of_others(label)
        return [n for n in CATEGORIES[label].nouns if n not in taken]

    def anchor_noun(self, obj: SynthObject) -> str | None:
        """A noun naming ``obj`` unambiguously ("the window"), or None if it is not unique."""
        if len(self.with_label(obj.label)) != 1:
            return None
        if any(o.label != obj.label for o in self.same_class(obj)):
            return None
        nouns = self.nouns(obj.label)
        return nouns[0] if nouns else None

    def anchors(self, exclude: SynthObject) -> list[SynthObject]:
        """Objects that can be named by their noun alone, other than ``exclude``."""
        return [o for o in self.objects if o.object_id != exclude.object_id
                and self.anchor_noun(o) is not None]

    # -- geometry ------------------------------------------------------------------------
    def support_of(self, obj: SynthObject) -> SynthObject | None:
        """The object ``obj`` stands on."""
        return self.by_id.get(obj.support) if obj.support is not None else None

    def on_top(self, obj: SynthObject) -> list[SynthObject]:
        """Objects standing on ``obj``."""
        return [o for o in self.objects if o.support == obj.object_id]

    def wall_distance(self, obj: SynthObject) -> float:
        """Distance of the box centre to the nearest wall, metres."""
        return float(self.room.wall_distance(obj.center[:2])[0])

    def box_wall_distance(self, obj: SynthObject) -> float:
        """Distance of the nearest corner of the box's footprint to a wall, metres."""
        lo, hi = obj.box_min[:2], obj.box_max[:2]
        corners = np.array([lo, (hi[0], lo[1]), hi, (lo[0], hi[1])])
        return float(self.room.wall_distance(corners).min())

    def corner_distance(self, obj: SynthObject) -> float:
        """Distance of the box centre to the nearest convex room corner, metres."""
        corners = self._convex_corners()
        return float(np.min(np.linalg.norm(corners - obj.center[:2], axis=1)))

    def _convex_corners(self) -> np.ndarray:
        poly = self.room.polygon
        prev, nxt = np.roll(poly, 1, axis=0), np.roll(poly, -1, axis=0)
        a, b = poly - prev, nxt - poly
        convex = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0] > 0
        return poly[convex]

    def lateral(self, target: SynthObject, anchor: SynthObject) -> tuple[float, float]:
        """(right, ahead) offsets of target from anchor for a viewer facing the anchor's front.

        The viewer stands in front of the anchor looking at it (direction ``-front``); right is
        the viewer's right.
        """
        facing = -anchor.front[:2]
        right = np.array([facing[1], -facing[0]])
        d = target.center[:2] - anchor.center[:2]
        return float(d @ right), float(d @ anchor.front[:2])

    def has_front(self, obj: SynthObject) -> bool:
        """Objects with a clear front (not round, not lying on something)."""
        return (obj.label not in ("trash can", "plant", "lamp", "table lamp", "pillow", "table",
                                  "coffee table") and obj.support is None)

    # -- facts about a target --------------------------------------------------------------
    def facts(self, target: SynthObject) -> list[Fact]:
        """Every fact that clearly holds for ``target``, each with the distractors it rules
        out among :meth:`same_class` objects."""
        peers = [o for o in self.same_class(target) if o.object_id != target.object_id]
        out: list[Fact] = []

        def add(kind: str, anchor: int | None, value: str,
                fails: Callable[[SynthObject], bool]) -> None:
            out.append(Fact(kind, anchor, value,
                            frozenset(o.object_id for o in peers if fails(o))))

        add("color", None, target.color, lambda o: o.color != target.color and not _similar_color(
            o.color, target.color))
        same_label = self.with_label(target.label)
        if len(same_label) >= 2:
            volumes = sorted(o.volume for o in same_label)
            if target.volume >= SIZE_RATIO * volumes[-2] and target.volume == volumes[-1]:
                add("size", None, "large", lambda o: o.label == target.label)
            if target.volume * SIZE_RATIO <= volumes[1] and target.volume == volumes[0]:
                add("size", None, "small", lambda o: o.label == target.label)
        for anchor in self.anchors(target):
            if anchor.nyu40_id == target.nyu40_id and anchor.nyu40_id not in _OTHER_CLASSES:
                continue
            self._anchor_facts(target, anchor, peers, add)
        support = self.support_of(target)
        if support is not None and self.anchor_noun(support):
            add("on", support.object_id, "", lambda o: o.support != support.object_id)
        if target.wall is None and self.box_wall_distance(target) >= 0.6 and np.linalg.norm(
                target.center[:2] - self.room.centroid) <= 1.5:
            add("middle", None, "", lambda o: o.wall is not None or self.box_wall_distance(o)
                < 0.25)
        if self.corner_distance(target) <= 0.9 and target.support is None:
            add("corner", None, "", lambda o: self.corner_distance(o) > 1.8)
        return out

    def _anchor_facts(self, target, anchor, peers, add) -> None:
        dist = {o.object_id: center_distance(o, anchor) for o in [target, *peers]}
        d_t = dist[target.object_id]
        if peers:
            others = [dist[o.object_id] for o in peers]
            if d_t + DISTANCE_MARGIN_M <= min(others):
                add("closest", anchor.object_id, "",
                    lambda o: dist.get(o.object_id, 0.0) >= d_t + DISTANCE_MARGIN_M)
            if d_t - DISTANCE_MARGIN_M >= max(others):
                add("farthest", anchor.object_id, "",
                    lambda o: dist.get(o.object_id, 1e9) <= d_t - DISTANCE_MARGIN_M)
        if target.support != anchor.object_id and near_gap(target, anchor) <= NEXT_TO_M:
            add("next_to", anchor.object_id, "", lambda o: near_gap(o, anchor) >= NOT_NEXT_TO_M)
        if self.has_front(anchor) and target.support is None:
            right, ahead = self.lateral(target, anchor)
            half_w = anchor.size[0] / 2
            if abs(right) >= half_w + 0.1 and abs(ahead) <= abs(right) and abs(right) <= 2.5:
                side = "right" if right > 0 else "left"
                sign = 1 if right > 0 else -1

                def wrong_side(o, anchor=anchor, sign=sign):
                    r, _ = self.lateral(o, anchor)
                    return sign * r <= 0.0

                add(side, anchor.object_id, "", wrong_side)
            if ahead >= anchor.size[1] / 2 + 0.1 and abs(right) <= half_w and ahead <= 2.0:
                def not_in_front(o, anchor=anchor):
                    r, a = self.lateral(o, anchor)
                    return a <= 0.0 or abs(r) > anchor.size[0] / 2 + 0.5
                add("front", anchor.object_id, "", not_in_front)
        if anchor.label == "window" and target.wall == anchor.wall and target.support is None \
                and target.label not in ("curtain",) and target.box_max[2] <= anchor.box_min[2]:
            w_lo, w_hi = anchor.box_min[:2], anchor.box_max[:2]
            t_c = target.center[:2]
            if np.all(t_c >= w_lo - 0.35) and np.all(t_c <= w_hi + 0.35):
                add("under", anchor.object_id, "", lambda o: o.wall != anchor.wall
                    or footprint_gap(o, anchor) > 0.8)

    def sector(self, position: np.ndarray, facing: float, obj: SynthObject) -> str | None:
        """Where ``obj`` is for an agent at ``position`` (2,) facing yaw ``facing``.

        :return: ``front``, ``left``, ``back`` or ``right``, or None within 12 degrees of a
            sector border (too close to call).
        """
        d = obj.center[:2] - position
        bearing = np.degrees(np.arctan2(d[1], d[0]) - facing)
        bearing = (bearing + 180.0) % 360.0 - 180.0
        for name, centre in (("front", 0.0), ("left", 90.0), ("right", -90.0)):
            if abs(bearing - centre) <= 45.0 - 12.0:
                return name
        if abs(bearing) >= 135.0 + 12.0:
            return "back"
        return None


def _similar_color(a: str, b: str) -> bool:
    from scene_llm_ros.data.synth.palette import COLOR_SYNONYMS
    return b in COLOR_SYNONYMS.get(a, ()) or a in COLOR_SYNONYMS.get(b, ())
