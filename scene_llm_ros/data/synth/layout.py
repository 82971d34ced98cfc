"""Furnishing a room: sampling objects per room type and placing them without collisions."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from scene_llm_ros.data.synth.library import CATEGORIES, ROLE_COLORS, Category, Part
from scene_llm_ros.data.synth.room import Room, Wall

_LOG = logging.getLogger(__name__)

CLEARANCE_M = 0.05      # minimum gap between the footprints of two floor objects
DOOR_KEEPOUT_M = 0.9    # free floor depth in front of a door
_ATTEMPTS = 40
# Parts whose top is a surface other objects may stand on.
_SURFACE_PARTS = {"top", "mattress", "cushion", "countertop", "body"}


@dataclass
class Placement:
    """One placed object before meshing.

    :ivar center: float64 (2,) footprint centre in the world, metres.
    :ivar yaw: rotation about +Z (radians) of the local frame; the object faces
        ``(-sin(yaw), cos(yaw))``.
    :ivar size: (w, d, h) metres.
    :ivar elevation: height of the object's base above the floor, metres.
    :ivar wall: index of the wall it hangs on or stands against, else None.
    :ivar support: index (into the placement list) of the object it stands on, else None.
    """

    category: Category
    center: np.ndarray
    yaw: float
    size: tuple[float, float, float]
    elevation: float
    parts: list[Part]
    color: str
    second_color: str
    texture: str
    wall: int | None = None
    support: int | None = None
    children: list[int] = field(default_factory=list)

    @property
    def front(self) -> np.ndarray:
        """Unit (2,) direction the object faces."""
        return np.array([-np.sin(self.yaw), np.cos(self.yaw)])

    @property
    def rotation(self) -> np.ndarray:
        """float64 (2, 2) local xy -> world xy."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, -s], [s, c]])

    def footprint(self, pad: float = 0.0) -> np.ndarray:
        """float64 (4, 2) world corners of the footprint grown by ``pad`` on each side."""
        w, d = self.size[0] / 2 + pad, self.size[1] / 2 + pad
        local = np.array([(-w, -d), (w, -d), (w, d), (-w, d)])
        return local @ self.rotation.T + self.center

    @property
    def top(self) -> float:
        """Height of the highest point above the floor, metres."""
        return self.elevation + self.size[2]

    def surface(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Local (lo_xy, hi_xy) and height of the surface other objects may stand on."""
        boxes = [p for p in self.parts if p.kind == "box" and p.name in _SURFACE_PARTS]
        if not boxes:
            return None
        z = max(p.b[2] for p in boxes)
        top = [p for p in boxes if p.b[2] > z - 1e-6]
        lo = np.min([p.a[:2] for p in top], axis=0)
        hi = np.max([p.b[:2] for p in top], axis=0)
        return lo, hi, self.elevation + z


def rects_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """True when the convex (4, 2) rectangles ``a`` and ``b`` overlap (separating axes)."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


def _rect_boundary(corners: np.ndarray, spacing: float = 0.05) -> np.ndarray:
    points = []
    for i in range(4):
        p, q = corners[i], corners[(i + 1) % 4]
        n = max(2, int(np.ceil(np.linalg.norm(q - p) / spacing)))
        points.append(p + np.linspace(0.0, 1.0, n, endpoint=False)[:, None] * (q - p))
    return np.concatenate(points)


class RoomLayout:
    """Places objects in a room one at a time, rejecting collisions."""

    def __init__(self, room: Room, rng: np.random.Generator) -> None:
        self.room = room
        self.rng = rng
        self.walls: list[Wall] = room.walls
        self.placements: list[Placement] = []
        self._keepouts: list[np.ndarray] = []

    # -- object construction ------------------------------------------------------------
    def _new(self, label: str, *, size: tuple[float, float, float] | None = None) -> Placement:
        cat = CATEGORIES[label]
        rng = self.rng
        if size is None:
            size = tuple(round(float(rng.uniform(lo, hi)), 3) for lo, hi in cat.size)
        color = str(rng.choice(cat.colors))
        second_choices = [c for c in cat.second if c != color] or list(cat.second)
        second = str(rng.choice(second_choices))
        texture = str(rng.choice(cat.textures))
        if texture == "wood" and color not in ("brown", "dark brown", "beige"):
            texture = "plain"  # painted furniture shows no grain
        parts = cat.build(rng, *size)
        # Some parts rise above the nominal height (a bed's headboard): use the real top.
        top = max(part.b[2] if part.kind == "box" else part.b[1] for part in parts)
        size = (size[0], size[1], round(max(size[2], top), 4))
        return Placement(cat, np.zeros(2), 0.0, size, 0.0, parts, color, second, texture)

    # -- checks ------------------------------------------------------------------------
    def _collides(self, p: Placement, ignore: tuple[int, ...] = ()) -> bool:
        """True when ``p`` would touch a placed object.

        Two floor objects must keep :data:`CLEARANCE_M` between their footprints whatever
        their heights; when a wall or supported object is involved, boxes collide only if
        both their footprints and their height ranges overlap (a picture above a sofa is fine).
        """
        p_floor = p.category.mount == "floor" and p.support is None
        for i, other in enumerate(self.placements):
            if i in ignore:
                continue
            both_floor = p_floor and other.category.mount == "floor" and other.support is None
            pad = CLEARANCE_M / 2 if both_floor else 0.005
            if not rects_overlap(p.footprint(pad), other.footprint(pad)):
                continue
            if both_floor or (p.elevation < other.top - 1e-6 and other.elevation < p.top - 1e-6):
                return True
        return False

    def _floor_ok(self, p: Placement) -> bool:
        corners = p.footprint()
        if not np.all(self.room.contains(_rect_boundary(corners))):
            return False
        if self._collides(p):
            return False
        return not any(rects_overlap(corners, k) for k in self._keepouts)

    def _commit(self, p: Placement) -> int:
        self.placements.append(p)
        if p.category.label == "door":
            self._keepouts.append(self._door_keepout(p).footprint())
        return len(self.placements) - 1

    def _door_keepout(self, door: Placement) -> Placement:
        wall = self.walls[door.wall]
        return Placement(door.category, door.center + wall.normal * (DOOR_KEEPOUT_M / 2),
                         door.yaw, (door.size[0], DOOR_KEEPOUT_M, door.size[2]), 0.0, [], "", "",
                         "")

    # -- placement strategies -------------------------------------------------------------
    def _pick_wall(self, min_length: float) -> Wall | None:
        walls = [w for w in self.walls if w.length >= min_length]
        if not walls:
            return None
        lengths = np.array([w.length for w in walls])
        return walls[int(self.rng.choice(len(walls), p=lengths / lengths.sum()))]

    def _at_wall(self, p: Placement, wall: Wall, t: float, gap: float = 0.0) -> None:
        p.yaw = float(np.arctan2(wall.normal[1], wall.normal[0]) - np.pi / 2)
        p.center = wall.p0 + wall.direction * t + wall.normal * (p.size[1] / 2 + gap)
        p.wall = wall.index

    def place_on_wall(self, label: str, *, wall: Wall | None = None, t: float | None = None,
                      size=None) -> int | None:
        """Hang a wall object (door, window, picture, ...); return its index or None."""
        for _ in range(_ATTEMPTS):
            p = self._new(label, size=size)
            lo, hi = p.category.elevation
            p.elevation = float(self.rng.uniform(lo, hi))
            w = wall or self._pick_wall(p.size[0] + 0.3)
            if w is None or p.top > self.room.height - 0.05:
                return None
            margin = p.size[0] / 2 + 0.15
            if w.length < 2 * margin:
                continue
            tt = t if t is not None else float(self.rng.uniform(margin, w.length - margin))
            if not margin - 0.1 <= tt <= w.length - margin + 0.1:
                return None
            self._at_wall(p, w, tt)
            if self._collides(p):
                if t is not None:
                    return None
                continue
            # The door swing area must stay free of furniture placed before it.
            if label == "door" and self._collides(self._door_keepout(p)):
                continue
            return self._commit(p)
        return None

    def place_against_wall(self, label: str, *, size=None, wall: Wall | None = None,
                           t: float | None = None) -> int | None:
        """Stand a floor object with its back to a wall; return its index or None."""
        for _ in range(_ATTEMPTS if t is None else 1):
            p = self._new(label, size=size)
            w = wall or self._pick_wall(p.size[0] + 0.1)
            if w is None:
                return None
            half = p.size[0] / 2
            tt = t if t is not None else float(self.rng.uniform(half + 0.02,
                                                                max(half + 0.03,
                                                                    w.length - half - 0.02)))
            self._at_wall(p, w, tt, gap=0.02)
            if self._floor_ok(p):
                return self._commit(p)
        return None

    def place_free(self, label: str, *, center: np.ndarray | None = None,
                   yaw: float | None = None, size=None, min_wall_gap: float = 0.5,
                   attempts: int = _ATTEMPTS) -> int | None:
        """Stand a floor object away from the walls; return its index or None."""
        for _ in range(attempts):
            p = self._new(label, size=size)
            if center is None:
                x0, y0, x1, y1 = self.room.rects[int(self.rng.integers(len(self.room.rects)))]
                p.center = self.rng.uniform((x0, y0), (x1, y1))
                if self.room.wall_distance(p.center)[0] < min_wall_gap + max(p.size[:2]) / 2:
                    continue
            else:
                p.center = np.asarray(center, dtype=float)
            p.yaw = yaw if yaw is not None else float(self.rng.integers(4) * np.pi / 2
                                                      + self.rng.normal(0.0, 0.05))
            if self._floor_ok(p):
                return self._commit(p)
            if center is not None:
                return None
        return None

    def place_near(self, label: str, anchor: int, local_xy: tuple[float, float],
                   yaw_offset: float, *, size=None) -> int | None:
        """Stand a floor object at ``local_xy`` in the anchor's frame, facing it."""
        a = self.placements[anchor]
        p = self._new(label, size=size)
        p.center = a.center + a.rotation @ np.asarray(local_xy, dtype=float)
        p.yaw = float(a.yaw + yaw_offset + self.rng.normal(0.0, 0.04))
        if self._floor_ok(p):
            return self._commit(p)
        return None

    def place_on(self, label: str, support: int, *, near_back: bool = False,
                 size=None) -> int | None:
        """Stand an object on the top surface of ``support``; return its index or None."""
        s = self.placements[support]
        surface = s.surface()
        if surface is None:
            return None
        lo, hi, z = surface
        for _ in range(_ATTEMPTS // 2):
            p = self._new(label, size=size)
            half = np.array(p.size[:2]) / 2
            if np.any(hi - lo < 2 * half + 0.02):
                return None
            local = self.rng.uniform(lo + half + 0.01, hi - half - 0.01)
            if near_back:
                local[1] = lo[1] + half[1] + 0.03
            p.center = s.center + s.rotation @ local
            p.yaw = float(s.yaw + self.rng.normal(0.0, 0.06 if label == "pillow" else 0.03))
            p.elevation = z
            p.support = support
            grown = p.footprint(0.01)
            if any(rects_overlap(grown, self.placements[c].footprint(0.01)) for c in s.children):
                continue
            if self._collides(p, ignore=(support,)):
                continue
            # Rotation jitter may push a corner over the edge: keep every corner on top.
            inv = (p.footprint() - s.center) @ s.rotation
            if np.any(inv < lo - 1e-3) or np.any(inv > hi + 1e-3):
                continue
            index = self._commit(p)
            s.children.append(index)
            return index
        return None


# -- room recipes ---------------------------------------------------------------------------

def _maybe(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _count(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _windows(layout: RoomLayout, n: int) -> None:
    rng = layout.rng
    for _ in range(n):
        window = layout.place_on_wall("window")
        if window is None or not _maybe(rng, 0.6):
            continue
        win = layout.placements[window]
        wall = layout.walls[win.wall]
        t = float((win.center - wall.p0) @ wall.direction)
        for side in (-1, 1):
            cw = float(rng.uniform(*CATEGORIES["curtain"].size[0]))
            d = float(rng.uniform(*CATEGORIES["curtain"].size[1]))
            h = float(rng.uniform(*CATEGORIES["curtain"].size[2]))
            layout.place_on_wall("curtain", wall=wall, t=t + side * (win.size[0] / 2 + cw / 2
                                                                      + 0.03),
                                 size=(cw, d, min(h, layout.room.height - 0.3)))


def _chairs_around(layout: RoomLayout, table: int, n: int, label: str = "chair") -> None:
    t = layout.placements[table]
    w, d = t.size[:2]
    size = tuple(round(float(layout.rng.uniform(lo, hi)), 3) for lo, hi in
                 CATEGORIES[label].size)
    # Chair centres sit outside the table footprint by the clearance plus a little play.
    gap = size[1] / 2 + CLEARANCE_M + 0.06
    slots = []
    per_side = max(1, int(w // 0.6))
    for i in range(per_side):
        x = -w / 2 + (i + 0.5) * w / per_side
        slots.append(((x, -d / 2 - gap), 0.0))        # faces +y, towards the table
        slots.append(((x, d / 2 + gap), np.pi))
    slots.append(((-w / 2 - gap, 0.0), -np.pi / 2))
    slots.append(((w / 2 + gap, 0.0), np.pi / 2))
    order = layout.rng.permutation(len(slots))
    placed = 0
    for k in order:
        if placed >= n:
            break
        xy, yaw = slots[int(k)]
        if layout.place_near(label, table, xy, yaw, size=size) is not None:
            placed += 1


def _bedroom(layout: RoomLayout) -> None:
    rng = layout.rng
    bed = layout.place_against_wall("bed")
    if bed is not None:
        b = layout.placements[bed]
        wall = layout.walls[b.wall]
        t = float((b.center - wall.p0) @ wall.direction)
        for side in rng.permutation([-1, 1])[:_count(rng, 1, 2)]:
            size = tuple(float(rng.uniform(lo, hi)) for lo, hi in CATEGORIES["nightstand"].size)
            ns = layout.place_against_wall("nightstand", wall=wall, size=size,
                                           t=t + side * (b.size[0] / 2 + size[0] / 2 + 0.08))
            if ns is not None and _maybe(rng, 0.6):
                layout.place_on("table lamp", ns)
        for _ in range(_count(rng, 1, 2)):
            layout.place_on("pillow", bed, near_back=True)
    for label, p in (("dresser", 0.6), ("bookshelf", 0.4), ("cabinet", 0.3)):
        if _maybe(rng, p):
            layout.place_against_wall(label)
    if _maybe(rng, 0.5):
        desk = layout.place_against_wall("desk")
        if desk is not None:
            _chair_at_desk(layout, desk, "chair")
    if _maybe(rng, 0.4):
        layout.place_free("trash can", min_wall_gap=0.05)


def _chair_at_desk(layout: RoomLayout, desk: int, label: str) -> None:
    d = layout.placements[desk]
    chair_d = CATEGORIES[label].size[1][1]
    layout.place_near(label, desk, (-0.1, d.size[1] / 2 + chair_d / 2 + CLEARANCE_M + 0.04), np.pi)
    if _maybe(layout.rng, 0.7):
        layout.place_on("monitor", desk, near_back=True)


def _living_room(layout: RoomLayout) -> None:
    rng = layout.rng
    for _ in range(_count(rng, 1, 2)):
        sofa = layout.place_against_wall("sofa")
        if sofa is None:
            continue
        s = layout.placements[sofa]
        for _ in range(_count(rng, 0, 2)):
            layout.place_on("pillow", sofa, near_back=True)
        if _maybe(rng, 0.8):
            ct = CATEGORIES["coffee table"]
            size = tuple(float(rng.uniform(lo, hi)) for lo, hi in ct.size)
            layout.place_near("coffee table", sofa,
                              (0.0, s.size[1] / 2 + size[1] / 2 + rng.uniform(0.35, 0.55)), 0.0,
                              size=size)
        if _maybe(rng, 0.4):
            layout.place_near("lamp", sofa, (s.size[0] / 2 + 0.3, 0.0), 0.0)
    if _maybe(rng, 0.7):
        stand = layout.place_against_wall("tv stand")
        if stand is not None:
            layout.place_on("tv", stand, near_back=True)
    for _ in range(_count(rng, 0, 2)):
        layout.place_against_wall("bookshelf")
    for _ in range(_count(rng, 0, 2)):
        layout.place_free("chair", min_wall_gap=0.3)
    for _ in range(_count(rng, 0, 2)):
        layout.place_free("plant", min_wall_gap=0.05)
    if _maybe(rng, 0.3):
        layout.place_against_wall("cabinet")


def _office(layout: RoomLayout) -> None:
    rng = layout.rng
    for _ in range(_count(rng, 1, 4)):
        desk = layout.place_against_wall("desk")
        if desk is not None:
            _chair_at_desk(layout, desk, "office chair" if _maybe(rng, 0.7) else "chair")
    if _maybe(rng, 0.5):
        table = layout.place_free("table", min_wall_gap=0.8)
        if table is not None:
            _chairs_around(layout, table, _count(rng, 2, 4))
    for _ in range(_count(rng, 0, 2)):
        layout.place_against_wall("bookshelf")
    for _ in range(_count(rng, 0, 2)):
        layout.place_against_wall("cabinet")
    for _ in range(_count(rng, 0, 2)):
        layout.place_free("trash can", min_wall_gap=0.05)
    if _maybe(rng, 0.5):
        layout.place_on_wall("whiteboard")
    if _maybe(rng, 0.3):
        layout.place_free("plant", min_wall_gap=0.05)


def _kitchen(layout: RoomLayout) -> None:
    rng = layout.rng
    layout.place_against_wall("refrigerator")
    for _ in range(_count(rng, 1, 2)):
        layout.place_against_wall("kitchen counter")
    for _ in range(_count(rng, 1, 3)):
        layout.place_against_wall("kitchen cabinet")
    if _maybe(rng, 0.6):
        layout.place_against_wall("sink")
    if _maybe(rng, 0.8):
        table = layout.place_free("table", min_wall_gap=0.8)
        if table is not None:
            _chairs_around(layout, table, _count(rng, 2, 6))
    if _maybe(rng, 0.6):
        layout.place_free("trash can", min_wall_gap=0.05)


def _bathroom(layout: RoomLayout) -> None:
    rng = layout.rng
    layout.place_against_wall("bathtub")
    layout.place_against_wall("toilet")
    layout.place_against_wall("sink")
    if _maybe(rng, 0.5):
        layout.place_against_wall("cabinet", size=(0.6, 0.4, 0.8))
    if _maybe(rng, 0.6):
        layout.place_free("trash can", min_wall_gap=0.05)


_RECIPES = {"bedroom": _bedroom, "living room": _living_room, "office": _office,
            "kitchen": _kitchen, "bathroom": _bathroom}
_FILLERS = ("picture", "trash can", "plant", "cabinet", "picture", "bookshelf")

MIN_OBJECTS, MAX_OBJECTS = 6, 20


def furnish(room: Room, rng: np.random.Generator) -> list[Placement]:
    """Return the objects of a furnished ``room`` (between 6 and 20 of them).

    Order of placement: the door first (its swing area stays free), windows and curtains,
    the room type's furniture with companions, pictures, then fillers up to six objects.
    """
    layout = RoomLayout(room, rng)
    layout.place_on_wall("door")
    _windows(layout, _count(rng, 0 if room.room_type == "bathroom" else 1, 2))
    _RECIPES[room.room_type](layout)
    for _ in range(_count(rng, 0, 3)):
        layout.place_on_wall("picture")
    for label in _FILLERS:
        if len(layout.placements) >= MIN_OBJECTS:
            break
        if CATEGORIES[label].mount == "wall":
            layout.place_on_wall(label)
        elif label in ("trash can", "plant"):
            layout.place_free(label, min_wall_gap=0.05)
        else:
            layout.place_against_wall(label)
    placements = layout.placements
    if len(placements) > MAX_OBJECTS:
        placements = _trim(placements, MAX_OBJECTS)
    _LOG.debug("furnished a %s with %d objects", room.room_type, len(placements))
    return placements


def _trim(placements: list[Placement], limit: int) -> list[Placement]:
    """Drop the last-placed objects (and their children) beyond ``limit``."""
    keep = list(range(len(placements)))
    while len(keep) > limit:
        victim = keep[-1]
        keep = [i for i in keep if i != victim and placements[i].support != victim]
    remap = {old: new for new, old in enumerate(keep)}
    out = []
    for old in keep:
        p = placements[old]
        p.children = [remap[c] for c in p.children if c in remap]
        p.support = remap.get(p.support) if p.support is not None else None
        out.append(p)
    return out


def role_color(placement: Placement, role: str, rng: np.random.Generator) -> tuple[str, str]:
    """Return (colour name, texture) of a part with ``role`` on ``placement``."""
    if role == "main":
        return placement.color, placement.texture
    if role == "second":
        return placement.second_color, "wood" if placement.second_color in (
            "brown", "dark brown") else "plain"
    colors, texture = ROLE_COLORS[role]
    return str(rng.choice(colors)), texture
