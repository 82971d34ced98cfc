"""Turning placed objects and the room shell into one labelled, segmented scene mesh."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scene_llm_ros.data.synth import primitives
from scene_llm_ros.data.synth.layout import Placement, role_color
from scene_llm_ros.data.synth.library import STRUCTURE_LABELS
from scene_llm_ros.data.synth.palette import shade_vertices
from scene_llm_ros.data.synth.room import Room

# Over-segmentation cell sizes: parts are cut into pieces about this big, like ScanNet's
# graph-cut segments (smaller on furniture than on walls and floors).
OBJECT_SEGMENT_M = 0.5
STRUCTURE_SEGMENT_M = 1.2


@dataclass
class SynthObject:
    """Ground truth of one object (or wall, floor, ceiling) of a synthetic scene.

    :ivar object_id: id in the aggregation file (objects first, then structures).
    :ivar label: raw ScanNet category written to the aggregation file.
    :ivar nyu40_id: NYU40 class of ``label``.
    :ivar noun: canonical noun used in the annotations.
    :ivar color: colour name of the main parts.
    :ivar box_min: float64 (3,) axis-aligned box of its vertices, world metres.
    :ivar box_max: float64 (3,) see ``box_min``.
    :ivar yaw: heading about +Z (radians); the object faces ``front``.
    :ivar size: (w, d, h) of its oriented box, metres.
    :ivar front: float64 (2,) unit direction it faces (structures: inward normal or zero).
    :ivar wall: index of the wall it hangs on or stands against, or None.
    :ivar support: object id it stands on, or None.
    :ivar parts: names of its parts, in mesh order.
    :ivar segments: ids of its segments, sorted.
    :ivar structure: True for floor, walls and ceiling.
    :ivar origin: float64 (3,) origin of the object's local frame (footprint centre at its
        base); with ``yaw`` and ``size`` it gives the oriented box
        x in [-w/2, w/2], y in [-d/2, d/2], z in [0, h] in that frame.
    """

    object_id: int
    label: str
    nyu40_id: int
    noun: str
    color: str
    box_min: np.ndarray
    box_max: np.ndarray
    yaw: float
    size: tuple[float, float, float]
    front: np.ndarray
    wall: int | None
    support: int | None
    parts: list[str]
    segments: list[int] = field(default_factory=list)
    structure: bool = False
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def center(self) -> np.ndarray:
        """float64 (3,) centre of the axis-aligned box."""
        return (self.box_min + self.box_max) / 2

    @property
    def volume(self) -> float:
        """Volume of the axis-aligned box, cubic metres."""
        return float(np.prod(self.box_max - self.box_min))

    def to_json(self) -> dict:
        """JSON-ready dict of the ground truth (lists instead of arrays)."""
        return {"object_id": self.object_id, "label": self.label, "nyu40_id": self.nyu40_id,
                "noun": self.noun, "color": self.color,
                "box_min": [round(float(v), 5) for v in self.box_min],
                "box_max": [round(float(v), 5) for v in self.box_max],
                "yaw": round(float(self.yaw), 6), "size": [round(v, 5) for v in self.size],
                "front": [round(float(v), 6) for v in self.front], "wall": self.wall,
                "support": self.support, "parts": self.parts, "segments": self.segments,
                "structure": self.structure,
                "origin": [round(float(v), 5) for v in self.origin]}


@dataclass
class SceneMesh:
    """Triangle mesh of a whole scene with per-vertex annotations.

    :ivar vertices: float32 (N, 3) world metres, +Z up.
    :ivar colors: uint8 (N, 4) RGBA albedo.
    :ivar faces: int32 (F, 3) vertex indices.
    :ivar labels: uint16 (N,) NYU40 id.
    :ivar segments: int32 (N,) segment id (over-segmentation, consecutive from 0).
    :ivar instances: int32 (N,) object id of :class:`SynthObject` owning the vertex.
    """

    vertices: np.ndarray
    colors: np.ndarray
    faces: np.ndarray
    labels: np.ndarray
    segments: np.ndarray
    instances: np.ndarray


class _Builder:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.offset = 0
        self.next_segment = 0

    def add(self, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, label: int,
            instance: int, segment_size: float) -> list[int]:
        """Append a piece; return the ids of the segments it was cut into."""
        cells = np.floor(vertices / segment_size).astype(np.int64)
        _, inverse = np.unique(cells, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        segments = inverse + self.next_segment
        ids = list(range(self.next_segment, self.next_segment + int(inverse.max()) + 1))
        self.next_segment = ids[-1] + 1
        n = len(vertices)
        self.chunks.append((vertices, faces + self.offset, colors, np.full(n, label),
                            segments, np.full(n, instance)))
        self.offset += n
        return ids

    def build(self) -> SceneMesh:
        v, f, c, lab, seg, inst = (np.concatenate(x) for x in zip(*self.chunks, strict=False))
        rgba = np.concatenate([c, np.full((len(c), 1), 255, np.uint8)], axis=1)
        return SceneMesh(v.astype(np.float32), rgba, f.astype(np.int32), lab.astype(np.uint16),
                         seg.astype(np.int32), inst.astype(np.int32))


def _part_mesh(part) -> tuple[np.ndarray, np.ndarray]:
    if part.kind == "box":
        return primitives.box(np.array(part.a), np.array(part.b), bottom=part.a[2] > 0.005)
    cx, cy, r = part.a
    z0, z1, sides = part.b
    return primitives.cylinder((cx, cy), r, z0, z1, sides=int(sides))


def _structure_colors(room: Room, rng: np.random.Generator) -> dict[str, tuple[str, str]]:
    floor = [("brown", "wood"), ("beige", "wood"), ("gray", "checker"), ("white", "checker"),
             ("beige", "noise"), ("blue", "noise"), ("gray", "noise")]
    wall = [("white", "plain"), ("beige", "plain"), ("light blue", "noise"), ("gray", "noise"),
            ("yellow", "plain"), ("white", "noise"), ("pink", "plain")]
    if room.room_type == "bathroom":
        floor = [("white", "checker"), ("gray", "checker"), ("light blue", "checker")]
    return {"floor": floor[int(rng.integers(len(floor)))],
            "wall": wall[int(rng.integers(len(wall)))], "ceiling": ("white", "plain")}


def assemble(room: Room, placements: list[Placement], rng: np.random.Generator, *,
             ceiling: bool = True) -> tuple[SceneMesh, list[SynthObject]]:
    """Mesh ``placements`` and the room shell into one scene.

    :param ceiling: also mesh the ceiling (a closed room, as a sensor inside it sees).
    :return: the mesh and the ground truth of every object; objects keep the order of
        ``placements`` (object id = index), then the floor, the walls in order, the ceiling.
    """
    builder = _Builder(rng)
    objects: list[SynthObject] = []
    for object_id, p in enumerate(placements):
        c, s = np.cos(p.yaw), np.sin(p.yaw)
        rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        translation = np.array([p.center[0], p.center[1], p.elevation])
        segments, lo, hi = [], np.full(3, np.inf), np.full(3, -np.inf)
        for part in p.parts:
            local, faces = _part_mesh(part)
            color, texture = role_color(p, part.role, rng)
            colors = shade_vertices(local, color, texture, rng)
            world = local @ rotation.T + translation
            lo, hi = np.minimum(lo, world.min(0)), np.maximum(hi, world.max(0))
            segments += builder.add(world, faces, colors, p.category.nyu40_id, object_id,
                                    OBJECT_SEGMENT_M)
        objects.append(SynthObject(
            object_id, p.category.label, p.category.nyu40_id, p.category.noun, p.color,
            lo, hi, float(p.yaw), tuple(float(v) for v in p.size), p.front, p.wall, p.support,
            [part.name for part in p.parts], segments, origin=translation))

    shell = _structure_colors(room, rng)
    pieces: list[tuple[str, np.ndarray, list, int | None, np.ndarray]] = []
    floor = [primitives.grid_quad(np.array([x0, y0, 0.0]), np.array([x1 - x0, 0, 0]),
                                  np.array([0, y1 - y0, 0.0])) for x0, y0, x1, y1 in room.rects]
    pieces.append(("floor", np.array([0.0, 0.0]), floor, None, np.zeros(2)))
    for wall in room.walls:
        up = np.array([0.0, 0.0, room.height])
        along = np.array([*(wall.p1 - wall.p0), 0.0])
        quad = primitives.grid_quad(np.array([*wall.p0, 0.0]), up, along)
        pieces.append(("wall", wall.p0, [quad], wall.index, wall.normal))
    if ceiling:
        top = [primitives.grid_quad(np.array([x0, y0, room.height]), np.array([0, y1 - y0, 0.0]),
                                    np.array([x1 - x0, 0, 0.0])) for x0, y0, x1, y1 in room.rects]
        pieces.append(("ceiling", np.array([0.0, 0.0]), top, None, np.zeros(2)))
    for label, origin, quads, wall_index, normal in pieces:
        object_id = len(objects)
        color, texture = shell[label]
        vertices, faces = primitives.merge(quads)
        if wall_index is not None:
            # Texture in wall coordinates (along, out, up) so patterns run along the wall.
            d = vertices[:, :2] - origin
            tex = np.column_stack([np.linalg.norm(d, axis=1), np.zeros(len(d)), vertices[:, 2]])
        else:
            tex = vertices
        colors = shade_vertices(tex, color, texture, rng)
        segments = builder.add(vertices, faces, colors, STRUCTURE_LABELS[label], object_id,
                               STRUCTURE_SEGMENT_M)
        size = tuple(float(v) for v in vertices.max(0) - vertices.min(0))
        objects.append(SynthObject(object_id, label, STRUCTURE_LABELS[label], label, color,
                                   vertices.min(0), vertices.max(0), 0.0, size, normal,
                                   wall_index, None, [label], segments, structure=True))
    return builder.build(), objects
