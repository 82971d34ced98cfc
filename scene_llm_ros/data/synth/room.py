"""Room shapes (rectangles and L-shapes) with walls, and inside-the-room tests."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Wall:
    """One straight wall; the room lies on its left (``normal`` points into the room).

    :ivar p0: float64 (2,) start corner, metres.
    :ivar p1: float64 (2,) end corner, metres.
    """

    index: int
    p0: np.ndarray
    p1: np.ndarray

    @property
    def length(self) -> float:
        """Length in metres."""
        return float(np.linalg.norm(self.p1 - self.p0))

    @property
    def direction(self) -> np.ndarray:
        """Unit (2,) vector from p0 to p1."""
        return (self.p1 - self.p0) / self.length

    @property
    def normal(self) -> np.ndarray:
        """Unit (2,) vector pointing into the room."""
        d = self.direction
        return np.array([-d[1], d[0]])


@dataclass(frozen=True)
class Room:
    """A room with a flat floor at z = 0 and walls of height ``height``.

    :ivar room_type: ``"bedroom"``, ``"living room"``, ``"office"``, ``"kitchen"`` or
        ``"bathroom"``.
    :ivar polygon: float64 (K, 2) floor outline, counter-clockwise, metres.
    :ivar rects: axis-aligned rectangles (x0, y0, x1, y1) whose union is the floor.
    """

    room_type: str
    polygon: np.ndarray
    rects: tuple[tuple[float, float, float, float], ...]
    height: float

    @property
    def walls(self) -> list[Wall]:
        """Walls along the polygon edges, in order."""
        k = len(self.polygon)
        return [Wall(i, self.polygon[i], self.polygon[(i + 1) % k]) for i in range(k)]

    @property
    def is_l_shaped(self) -> bool:
        """True for the six-cornered L-shaped rooms."""
        return len(self.polygon) == 6

    @property
    def area(self) -> float:
        """Floor area in square metres."""
        return float(sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in self.rects))

    @property
    def centroid(self) -> np.ndarray:
        """float64 (2,) area-weighted centre of the floor."""
        weights = np.array([(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in self.rects])
        centres = np.array([((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in self.rects])
        return weights @ centres / weights.sum()

    def wall_distance(self, points: np.ndarray) -> np.ndarray:
        """float64 (N,) distance of (N, 2) points to the nearest wall line segment."""
        points = np.atleast_2d(points)
        best = np.full(len(points), np.inf)
        for wall in self.walls:
            seg = wall.p1 - wall.p0
            t = np.clip((points - wall.p0) @ seg / (seg @ seg), 0.0, 1.0)
            best = np.minimum(best, np.linalg.norm(points - (wall.p0 + t[:, None] * seg), axis=1))
        return best

    def contains(self, points: np.ndarray, *, margin: float = 0.0) -> np.ndarray:
        """bool (N,): (N, 2) points lie on the floor at least ``margin`` metres from walls."""
        points = np.atleast_2d(points)
        inside = np.zeros(len(points), dtype=bool)
        eps = 1e-9
        for x0, y0, x1, y1 in self.rects:
            inside |= ((points[:, 0] >= x0 - eps) & (points[:, 0] <= x1 + eps)
                       & (points[:, 1] >= y0 - eps) & (points[:, 1] <= y1 + eps))
        if margin > 0.0:
            inside &= self.wall_distance(points) >= margin
        return inside


ROOM_SIZES = {  # (min, max) side lengths in metres of the bounding rectangle
    "bedroom": (3.2, 5.5),
    "living room": (4.0, 8.0),
    "office": (3.5, 8.0),
    "kitchen": (3.2, 6.5),
    "bathroom": (3.0, 4.0),
}


def make_room(room_type: str, rng: np.random.Generator) -> Room:
    """Return a random rectangular or L-shaped room of ``room_type`` with its corner at 0."""
    lo, hi = ROOM_SIZES[room_type]
    width, depth = rng.uniform(lo, hi, 2).round(2)
    height = round(float(rng.uniform(2.5, 3.0)), 2)
    if min(width, depth) >= 4.5 and rng.random() < 0.45:
        cut_w = float((width * rng.uniform(0.3, 0.45)).round(2))
        cut_d = float((depth * rng.uniform(0.3, 0.45)).round(2))
        polygon = np.array([(0, 0), (width, 0), (width, depth - cut_d), (width - cut_w,
                                                                         depth - cut_d),
                            (width - cut_w, depth), (0, depth)], dtype=float)
        rects = [(0.0, 0.0, width, depth - cut_d), (0.0, depth - cut_d, width - cut_w, depth)]
        # Mirror so that any of the four corners may be the missing one.
        for axis, size in ((0, width), (1, depth)):
            if rng.random() < 0.5:
                polygon[:, axis] = size - polygon[:, axis]
                polygon = polygon[::-1]
                rects = [(size - r[2], r[1], size - r[0], r[3]) if axis == 0 else
                         (r[0], size - r[3], r[2], size - r[1]) for r in rects]
        polygon = np.roll(polygon, -int(np.argmin(polygon[:, 0] * 100 + polygon[:, 1])), axis=0)
    else:
        polygon = np.array([(0, 0), (width, 0), (width, depth), (0, depth)], dtype=float)
        rects = [(0.0, 0.0, float(width), float(depth))]
    return Room(room_type, polygon, tuple(tuple(float(v) for v in r) for r in rects), height)
