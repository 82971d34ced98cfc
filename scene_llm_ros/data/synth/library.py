"""Object categories: ScanNet labels, size ranges, colours and part-based builders."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Part:
    """One rigid part of an object in the object's local frame.

    Local frame: origin at the centre of the footprint at the object's base, +x to the
    object's right, +y towards its front, +z up; metres.

    :ivar name: part name, e.g. ``"leg"`` (several parts may share it).
    :ivar kind: ``"box"`` (``a`` = min corner, ``b`` = max corner) or ``"cylinder"``
        (``a`` = (cx, cy, radius), ``b`` = (z0, z1, sides)).
    :ivar role: colour role: ``"main"``, ``"second"`` or a fixed material (see
        :data:`ROLE_COLORS`).
    """

    name: str
    kind: str
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    role: str = "main"


# Fixed materials: colour choices and texture of parts that do not take the object's colours.
ROLE_COLORS: dict[str, tuple[tuple[str, ...], str]] = {
    "metal": (("silver", "gray"), "noise"),
    "dark": (("black",), "noise"),
    "white": (("white",), "plain"),
    "glass": (("light blue",), "plain"),
    "wood": (("brown", "dark brown"), "wood"),
    "books": (("red", "blue", "green", "yellow", "white", "black", "orange"), "noise"),
    "canvas": (("red", "blue", "green", "yellow", "orange", "purple", "pink"), "stripes"),
    "leaf": (("green",), "noise"),
}


def _box(name: str, lo, hi, role: str = "main") -> Part:
    return Part(name, "box", tuple(float(x) for x in lo), tuple(float(x) for x in hi), role)


def _cyl(name: str, cx: float, cy: float, r: float, z0: float, z1: float,
         role: str = "main", sides: int = 16) -> Part:
    return Part(name, "cylinder", (float(cx), float(cy), float(r)),
                (float(z0), float(z1), float(sides)), role)


def _legs(w: float, d: float, h: float, t: float, inset: float, role: str) -> list[Part]:
    xs, ys = w / 2 - inset - t / 2, d / 2 - inset - t / 2
    return [_box("leg", (sx * xs - t / 2, sy * ys - t / 2, 0.0),
                 (sx * xs + t / 2, sy * ys + t / 2, h), role)
            for sx in (-1, 1) for sy in (-1, 1)]


def build_chair(rng, w, d, h):
    seat = rng.uniform(0.42, 0.48)
    return [_box("seat", (-w / 2, -d / 2, seat - 0.05), (w / 2, d / 2, seat)),
            _box("back", (-w / 2, -d / 2, seat), (w / 2, -d / 2 + 0.05, h)),
            *_legs(w, d, seat - 0.05, 0.04, 0.01, "second")]


def build_office_chair(rng, w, d, h):
    seat = rng.uniform(0.45, 0.52)
    return [_box("seat", (-w / 2 + 0.03, -d / 2 + 0.05, seat - 0.08), (w / 2 - 0.03, d / 2, seat)),
            _box("back", (-w / 2 + 0.05, -d / 2, seat + 0.05), (w / 2 - 0.05, -d / 2 + 0.07, h)),
            _box("armrest", (-w / 2, -d / 4, seat + 0.15), (-w / 2 + 0.05, d / 3, seat + 0.2),
                 "dark"),
            _box("armrest", (w / 2 - 0.05, -d / 4, seat + 0.15), (w / 2, d / 3, seat + 0.2),
                 "dark"),
            _cyl("column", 0, 0, 0.03, 0.08, seat - 0.08, "metal", 8),
            _cyl("base", 0, 0, min(w, d) / 2 - 0.02, 0.0, 0.08, "dark", 10)]


def build_table(rng, w, d, h):
    return [_box("top", (-w / 2, -d / 2, h - 0.04), (w / 2, d / 2, h)),
            *_legs(w, d, h - 0.04, 0.06, 0.05, "second")]


def build_coffee_table(rng, w, d, h):
    return [_box("top", (-w / 2, -d / 2, h - 0.04), (w / 2, d / 2, h)),
            _box("shelf", (-w / 2 + 0.06, -d / 2 + 0.06, 0.1), (w / 2 - 0.06, d / 2 - 0.06, 0.13)),
            *_legs(w, d, h - 0.04, 0.05, 0.03, "second")]


def build_desk(rng, w, d, h):
    drawer_w = min(0.4, w * 0.35)
    return [_box("top", (-w / 2, -d / 2, h - 0.03), (w / 2, d / 2, h)),
            _box("side", (-w / 2, -d / 2 + 0.02, 0), (-w / 2 + 0.03, d / 2 - 0.02, h - 0.03)),
            _box("drawers", (w / 2 - drawer_w, -d / 2 + 0.02, 0), (w / 2, d / 2 - 0.03, h - 0.03)),
            _box("handle", (w / 2 - drawer_w / 2 - 0.06, d / 2 - 0.03, h - 0.15),
                 (w / 2 - drawer_w / 2 + 0.06, d / 2, h - 0.13), "metal"),
            _box("panel", (-w / 2 + 0.03, -d / 2 + 0.02, 0.3), (w / 2 - drawer_w, -d / 2 + 0.04,
                                                                  h - 0.03), "second")]


def build_bed(rng, w, d, h):
    mattress = h
    frame = mattress - rng.uniform(0.18, 0.25)
    head = rng.uniform(0.9, 1.2)
    return [_box("frame", (-w / 2, -d / 2 + 0.06, 0.0), (w / 2, d / 2, frame), "second"),
            _box("mattress", (-w / 2 + 0.03, -d / 2 + 0.08, frame), (w / 2 - 0.03, d / 2 - 0.02,
                                                                      mattress)),
            _box("headboard", (-w / 2, -d / 2, 0.0), (w / 2, -d / 2 + 0.06, head), "second")]


def build_sofa(rng, w, d, h):
    seat, arm = rng.uniform(0.4, 0.46), rng.uniform(0.15, 0.22)
    n_cushions = 2 if w < 1.9 else 3
    cw = (w - 2 * arm) / n_cushions
    parts = [_box("base", (-w / 2, -d / 2, 0.05), (w / 2, d / 2, seat - 0.12)),
             _box("back", (-w / 2, -d / 2, seat - 0.12), (w / 2, -d / 2 + 0.22, h)),
             _box("arm", (-w / 2, -d / 2 + 0.2, seat - 0.12), (-w / 2 + arm, d / 2, seat + 0.2)),
             _box("arm", (w / 2 - arm, -d / 2 + 0.2, seat - 0.12), (w / 2, d / 2, seat + 0.2)),
             *_legs(w, d, 0.05, 0.05, 0.04, "dark")]
    for i in range(n_cushions):
        x0 = -w / 2 + arm + i * cw
        parts.append(_box("cushion", (x0 + 0.01, -d / 2 + 0.22, seat - 0.12),
                          (x0 + cw - 0.01, d / 2 - 0.02, seat)))
    return parts


def build_cabinet(rng, w, d, h):
    n_doors = 1 if w < 0.6 else 2
    dw = w / n_doors
    parts = [_box("body", (-w / 2, -d / 2, 0.0), (w / 2, d / 2 - 0.02, h))]
    for i in range(n_doors):
        x0 = -w / 2 + i * dw
        parts.append(_box("door", (x0 + 0.01, d / 2 - 0.02, 0.05),
                          (x0 + dw - 0.01, d / 2, h - 0.02), "second"))
        hx = x0 + (dw - 0.06 if i == 0 else 0.06)
        parts.append(_box("handle", (hx - 0.01, d / 2, h - 0.3),
                          (hx + 0.01, d / 2 + 0.02, h - 0.15), "metal"))
    return parts


def build_drawers(rng, w, d, h, n):
    parts = [_box("body", (-w / 2, -d / 2, 0.0), (w / 2, d / 2 - 0.02, h))]
    dh = (h - 0.06) / n
    for i in range(n):
        z0 = 0.04 + i * dh
        parts.append(_box("drawer", (-w / 2 + 0.02, d / 2 - 0.02, z0 + 0.01),
                          (w / 2 - 0.02, d / 2, z0 + dh - 0.01), "second"))
        parts.append(_box("handle", (-0.06, d / 2, z0 + dh / 2 - 0.01), (0.06, d / 2 + 0.02,
                                                                         z0 + dh / 2 + 0.01),
                          "metal"))
    return parts


def build_nightstand(rng, w, d, h):
    return build_drawers(rng, w, d, h, 2)


def build_dresser(rng, w, d, h):
    return build_drawers(rng, w, d, h, 3)


def build_bookshelf(rng, w, d, h):
    t = 0.025
    n_shelves = int(np.clip(round(h / 0.38), 3, 6))
    parts = [_box("side", (-w / 2, -d / 2, 0), (-w / 2 + t, d / 2, h)),
             _box("side", (w / 2 - t, -d / 2, 0), (w / 2, d / 2, h)),
             _box("back", (-w / 2 + t, -d / 2, 0), (w / 2 - t, -d / 2 + 0.01, h))]
    shelf_z = np.linspace(0.05, h - t, n_shelves + 1)
    for z in shelf_z:
        parts.append(_box("shelf", (-w / 2 + t, -d / 2 + 0.01, z), (w / 2 - t, d / 2, z + t)))
    for z0, z1 in zip(shelf_z[:-1], shelf_z[1:], strict=False):
        # A run of books of random widths on most shelves; gaps are left where it ends.
        x = -w / 2 + t + 0.01
        end = w / 2 - t - rng.uniform(0.0, 0.4) * w
        while x < end - 0.03:
            bw = rng.uniform(0.02, 0.06)
            bh = min(z1 - z0 - t - 0.02, rng.uniform(0.18, 0.3))
            parts.append(_box("books", (x, -d / 2 + 0.02, z0 + t),
                              (x + bw, -d / 2 + 0.02 + rng.uniform(0.15, d - 0.05), z0 + t + bh),
                              "books"))
            x += bw + 0.002
    return parts


def build_toilet(rng, w, d, h):
    tank_d = 0.2
    r = min(w, d - tank_d) / 2
    return [_cyl("bowl", 0, d / 2 - r, r, 0.0, 0.4),
            _cyl("seat", 0, d / 2 - r, r + 0.01, 0.4, 0.44, "main"),
            _box("tank", (-w / 2, -d / 2, 0.4), (w / 2, -d / 2 + tank_d, h)),
            _box("pipe", (-0.06, -d / 2 + 0.05, 0.0), (0.06, -d / 2 + tank_d, 0.4))]


def build_sink(rng, w, d, h):
    return [_box("vanity", (-w / 2, -d / 2, 0.0), (w / 2, d / 2 - 0.02, h - 0.05), "second"),
            _box("basin", (-w / 2, -d / 2, h - 0.05), (w / 2, d / 2, h)),
            _cyl("faucet", 0, -d / 2 + 0.06, 0.02, h, h + 0.2, "metal", 8)]


def build_bathtub(rng, w, d, h):
    t = 0.08
    return [_box("bottom", (-w / 2, -d / 2, 0), (w / 2, d / 2, 0.1)),
            _box("rim", (-w / 2, -d / 2, 0.1), (w / 2, -d / 2 + t, h)),
            _box("rim", (-w / 2, d / 2 - t, 0.1), (w / 2, d / 2, h)),
            _box("rim", (-w / 2, -d / 2 + t, 0.1), (-w / 2 + t, d / 2 - t, h)),
            _box("rim", (w / 2 - t, -d / 2 + t, 0.1), (w / 2, d / 2 - t, h)),
            _cyl("faucet", -w / 2 + 0.1, -d / 2 + 0.05, 0.02, h, h + 0.15, "metal", 8)]


def build_refrigerator(rng, w, d, h):
    split = h * rng.uniform(0.6, 0.7)
    return [_box("body", (-w / 2, -d / 2, 0.0), (w / 2, d / 2 - 0.03, h)),
            _box("door", (-w / 2, d / 2 - 0.03, 0.02), (w / 2, d / 2, split - 0.01)),
            _box("door", (-w / 2, d / 2 - 0.03, split + 0.01), (w / 2, d / 2, h - 0.01)),
            _box("handle", (w / 2 - 0.08, d / 2, split - 0.5), (w / 2 - 0.05, d / 2 + 0.04,
                                                               split - 0.1), "metal"),
            _box("handle", (w / 2 - 0.08, d / 2, split + 0.1), (w / 2 - 0.05, d / 2 + 0.04,
                                                               split + 0.4), "metal")]


def build_counter(rng, w, d, h):
    return [_box("base", (-w / 2, -d / 2, 0.0), (w / 2, d / 2 - 0.05, h - 0.04), "second"),
            _box("countertop", (-w / 2, -d / 2, h - 0.04), (w / 2, d / 2, h))]


def build_lamp(rng, w, d, h):
    r = min(w, d) / 2
    return [_cyl("base", 0, 0, r * 0.6, 0.0, 0.03, "dark"),
            _cyl("pole", 0, 0, 0.015, 0.03, h * 0.7, "metal", 8),
            _cyl("shade", 0, 0, r, h * 0.7, h)]


def build_trash_can(rng, w, d, h):
    r = min(w, d) / 2
    return [_cyl("bin", 0, 0, r, 0.0, h - 0.03), _cyl("lid", 0, 0, r + 0.01, h - 0.03, h,
                                                        "second")]


def build_monitor(rng, w, d, h):
    return [_box("stand", (-0.1, -d / 2, 0.0), (0.1, d / 2, 0.02), "dark"),
            _box("neck", (-0.025, -0.03, 0.02), (0.025, 0.0, h * 0.35), "dark"),
            _box("screen", (-w / 2, 0.0, h * 0.3), (w / 2, 0.03, h), "dark"),
            _box("display", (-w / 2 + 0.015, 0.03, h * 0.3 + 0.015), (w / 2 - 0.015, 0.032,
                                                                      h - 0.015))]


def build_tv(rng, w, d, h):
    return [_box("stand", (-w / 4, -d / 2, 0.0), (w / 4, d / 2, 0.03), "dark"),
            _box("screen", (-w / 2, -0.03, 0.05), (w / 2, 0.02, h), "dark"),
            _box("display", (-w / 2 + 0.02, 0.02, 0.07), (w / 2 - 0.02, 0.022, h - 0.02))]


def build_tv_stand(rng, w, d, h):
    return [_box("body", (-w / 2, -d / 2, 0.05), (w / 2, d / 2, h)),
            _box("compartment", (-w / 2 + 0.05, d / 2 - 0.005, 0.1), (w / 2 - 0.05, d / 2 + 0.005,
                                                                       h - 0.05), "dark"),
            *_legs(w, d, 0.05, 0.04, 0.02, "metal")]


def build_pillow(rng, w, d, h):
    return [_box("cushion", (-w / 2, -d / 2, 0.0), (w / 2, d / 2, h))]


def build_plant(rng, w, d, h):
    r = min(w, d) / 2
    pot_h = h * rng.uniform(0.25, 0.35)
    return [_cyl("pot", 0, 0, r * 0.6, 0.0, pot_h),
            _cyl("stem", 0, 0, 0.02, pot_h, pot_h + 0.1, "leaf", 6),
            _cyl("foliage", 0, 0, r, pot_h + 0.1, h, "leaf", 10)]


def build_door(rng, w, d, h):
    t = 0.06
    return [_box("jamb", (-w / 2, -d / 2, 0.0), (-w / 2 + t, d / 2, h)),
            _box("jamb", (w / 2 - t, -d / 2, 0.0), (w / 2, d / 2, h)),
            _box("head", (-w / 2 + t, -d / 2, h - t), (w / 2 - t, d / 2, h)),
            _box("leaf", (-w / 2 + t, -d / 2, 0.01), (w / 2 - t, d / 2 - 0.01, h - t), "second"),
            _cyl("knob", w / 2 - t - 0.08, d / 2 + 0.02, 0.025, h * 0.47 - 0.03, h * 0.47, "metal",
                 8)]


def build_window(rng, w, d, h):
    t = 0.05
    return [_box("sill", (-w / 2, -d / 2, 0.0), (w / 2, d / 2, 0.04)),
            _box("frame", (-w / 2, -d / 2, 0.04), (-w / 2 + t, d / 2, h)),
            _box("frame", (w / 2 - t, -d / 2, 0.04), (w / 2, d / 2, h)),
            _box("frame", (-w / 2 + t, -d / 2, h - t), (w / 2 - t, d / 2, h)),
            _box("mullion", (-t / 3, -d / 2, 0.04), (t / 3, d / 2, h - t)),
            _box("pane", (-w / 2 + t, -d / 2, 0.04), (w / 2 - t, -d / 2 + 0.01, h - t), "glass")]


def build_picture(rng, w, d, h):
    t = 0.03
    return [_box("frame", (-w / 2, -d / 2, 0), (w / 2, d / 2, t)),
            _box("frame", (-w / 2, -d / 2, h - t), (w / 2, d / 2, h)),
            _box("frame", (-w / 2, -d / 2, t), (-w / 2 + t, d / 2, h - t)),
            _box("frame", (w / 2 - t, -d / 2, t), (w / 2, d / 2, h - t)),
            _box("canvas", (-w / 2 + t, -d / 2, t), (w / 2 - t, d / 2 - 0.005, h - t), "canvas")]


def build_curtain(rng, w, d, h):
    # Folds: alternating deep and shallow vertical strips.
    n = max(2, int(round(w / 0.1)))
    xs = np.linspace(-w / 2, w / 2, n + 1)
    return [_box("fold", (x0, -d / 2, 0.0), (x1, d / 2 - (0.0 if i % 2 else d * 0.4), h))
            for i, (x0, x1) in enumerate(zip(xs[:-1], xs[1:], strict=False))]


def build_whiteboard(rng, w, d, h):
    back = -d / 2 + 0.03
    return [_box("frame", (-w / 2, -d / 2, 0.04), (w / 2, back - 0.005, h), "metal"),
            _box("board", (-w / 2 + 0.03, back - 0.005, 0.07), (w / 2 - 0.03, back, h - 0.03),
                 "white"),
            _box("tray", (-w / 4, -d / 2, 0.0), (w / 4, d / 2, 0.04), "metal")]


@dataclass(frozen=True)
class Category:
    """An object category of the synthetic scenes.

    :ivar label: raw ScanNet category (a ``raw_category`` of scannetv2-labels.combined.tsv).
    :ivar nyu40_id: NYU40 class id of ``label``.
    :ivar nouns: names used in text, the first is the canonical one.
    :ivar plural: plural of the canonical noun.
    :ivar size: ((w_min, w_max), (d_min, d_max), (h_min, h_max)) metres; w across the
        object's front, d front to back, h height.
    :ivar mount: ``"floor"``, ``"wall"`` (hangs on a wall at ``elevation``) or ``"on"``
        (stands on a supporting object).
    :ivar colors: colour names the main parts may take.
    :ivar second: colour names of the secondary parts (legs, frames, doors).
    :ivar textures: textures of the main parts.
    :ivar elevation: (min, max) height of the base above the floor for wall objects.
    """

    label: str
    nyu40_id: int
    nouns: tuple[str, ...]
    plural: str
    size: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    mount: str
    colors: tuple[str, ...]
    second: tuple[str, ...]
    textures: tuple[str, ...]
    build: Callable[..., list[Part]]
    elevation: tuple[float, float] = (0.0, 0.0)

    @property
    def noun(self) -> str:
        """Canonical singular noun."""
        return self.nouns[0]


_WOODS = ("brown", "dark brown", "white", "black", "beige")
_FABRICS = ("red", "blue", "green", "gray", "beige", "black", "orange", "yellow", "purple",
            "brown", "white")
_PLASTIC = ("black", "white", "gray", "blue", "red", "green")

CATEGORIES: dict[str, Category] = {c.label: c for c in [
    Category("chair", 5, ("chair", "seat"), "chairs", ((0.42, 0.55), (0.45, 0.56), (0.8, 1.0)),
             "floor", _WOODS + ("red", "blue", "green", "orange"), ("black", "brown", "silver"),
             ("wood", "plain", "noise"), build_chair),
    Category("office chair", 5, ("office chair", "desk chair", "swivel chair"), "office chairs",
             ((0.55, 0.65), (0.55, 0.65), (0.95, 1.15)), "floor", _PLASTIC, ("black",),
             ("noise", "plain"), build_office_chair),
    Category("table", 7, ("table", "dining table"), "tables",
             ((0.9, 1.9), (0.7, 1.1), (0.72, 0.78)), "floor", _WOODS + ("gray",),
             ("black", "brown", "silver"), ("wood", "plain"), build_table),
    Category("coffee table", 7, ("coffee table", "low table"), "coffee tables",
             ((0.8, 1.3), (0.45, 0.7), (0.4, 0.5)), "floor", _WOODS, ("black", "brown"),
             ("wood", "plain"), build_coffee_table),
    Category("desk", 14, ("desk", "work desk"), "desks", ((1.0, 1.6), (0.6, 0.8), (0.72, 0.78)),
             "floor", _WOODS + ("gray",), ("gray", "black", "white"), ("wood", "plain"),
             build_desk),
    Category("bed", 4, ("bed",), "beds", ((1.0, 1.9), (1.95, 2.2), (0.5, 0.62)), "floor",
             ("white", "blue", "red", "gray", "green", "beige", "yellow", "pink"),
             ("brown", "dark brown", "white", "black"), ("stripes", "noise", "plain"),
             build_bed),
    Category("sofa", 6, ("sofa", "couch"), "sofas", ((1.5, 2.4), (0.8, 1.0), (0.75, 0.9)),
             "floor", _FABRICS, ("black", "brown"), ("noise", "plain", "checker"), build_sofa),
    Category("cabinet", 3, ("cabinet", "cupboard"), "cabinets",
             ((0.5, 1.2), (0.4, 0.6), (0.7, 1.3)), "floor", _WOODS + ("gray",),
             _WOODS + ("gray",), ("wood", "plain"), build_cabinet),
    Category("kitchen cabinet", 3, ("kitchen cabinet", "cabinet"), "kitchen cabinets",
             ((0.6, 1.2), (0.55, 0.65), (0.85, 0.92)), "floor", ("white", "brown", "gray", "blue",
                                                                  "green", "beige"),
             ("white", "brown", "gray"), ("plain", "wood"), build_cabinet),
    Category("bookshelf", 10, ("bookshelf", "bookcase", "shelf"), "bookshelves",
             ((0.6, 1.2), (0.28, 0.4), (1.3, 2.0)), "floor", _WOODS, _WOODS, ("wood", "plain"),
             build_bookshelf),
    Category("toilet", 33, ("toilet",), "toilets", ((0.38, 0.45), (0.62, 0.72), (0.72, 0.8)),
             "floor", ("white",), ("white",), ("plain",), build_toilet),
    Category("sink", 34, ("sink", "washbasin"), "sinks", ((0.5, 0.8), (0.45, 0.55), (0.82, 0.9)),
             "floor", ("white",), ("white", "brown", "gray"), ("plain",), build_sink),
    Category("bathtub", 36, ("bathtub", "tub", "bath"), "bathtubs",
             ((1.5, 1.8), (0.7, 0.8), (0.5, 0.6)), "floor", ("white", "beige"), ("white",),
             ("plain",), build_bathtub),
    Category("refrigerator", 24, ("refrigerator", "fridge"), "refrigerators",
             ((0.6, 0.85), (0.6, 0.75), (1.6, 1.9)), "floor", ("white", "silver", "black",
                                                                "gray"), ("gray",), ("plain",),
             build_refrigerator),
    Category("kitchen counter", 12, ("counter", "kitchen counter", "countertop"), "counters",
             ((1.2, 2.4), (0.6, 0.65), (0.88, 0.94)), "floor", ("white", "gray", "black",
                                                                "beige", "brown"),
             ("white", "brown", "gray", "blue"), ("noise", "plain"), build_counter),
    Category("nightstand", 32, ("nightstand", "night stand", "bedside table"), "nightstands",
             ((0.4, 0.55), (0.35, 0.45), (0.5, 0.65)), "floor", _WOODS, _WOODS,
             ("wood", "plain"), build_nightstand),
    Category("dresser", 17, ("dresser", "chest of drawers"), "dressers",
             ((0.8, 1.4), (0.42, 0.5), (0.75, 1.1)), "floor", _WOODS, _WOODS, ("wood", "plain"),
             build_dresser),
    Category("lamp", 35, ("lamp", "floor lamp"), "lamps", ((0.3, 0.45), (0.3, 0.45), (1.4, 1.8)),
             "floor", ("white", "beige", "black", "yellow", "orange"), ("black",), ("plain",),
             build_lamp),
    Category("trash can", 39, ("trash can", "garbage bin", "trash bin"), "trash cans",
             ((0.25, 0.38), (0.25, 0.38), (0.3, 0.6)), "floor", ("black", "gray", "blue",
                                                                 "green", "white", "silver"),
             ("black", "gray"), ("plain", "noise"), build_trash_can),
    Category("tv stand", 39, ("tv stand", "tv cabinet"), "tv stands",
             ((1.0, 1.8), (0.4, 0.5), (0.45, 0.6)), "floor", _WOODS, ("black",),
             ("wood", "plain"), build_tv_stand),
    Category("plant", 40, ("plant", "potted plant"), "plants",
             ((0.35, 0.6), (0.35, 0.6), (0.6, 1.4)), "floor", ("white", "brown", "gray",
                                                              "orange", "black"), ("green",),
             ("plain", "noise"), build_plant),
    Category("door", 8, ("door",), "doors", ((0.8, 0.95), (0.05, 0.06), (2.0, 2.1)), "wall",
             ("white", "brown", "dark brown", "gray"), ("white", "brown", "dark brown", "gray"),
             ("plain", "wood"), build_door, (0.0, 0.0)),
    Category("window", 9, ("window",), "windows", ((0.8, 1.6), (0.05, 0.07), (1.0, 1.4)), "wall",
             ("white", "black", "brown", "gray"), ("white",), ("plain",), build_window,
             (0.8, 1.0)),
    Category("picture", 11, ("picture", "painting", "framed picture"), "pictures",
             ((0.4, 1.0), (0.03, 0.04), (0.3, 0.8)), "wall", ("black", "brown", "white",
                                                               "yellow", "silver"),
             ("black",), ("plain",), build_picture, (1.15, 1.5)),
    Category("curtain", 16, ("curtain", "drape"), "curtains", ((0.35, 0.6), (0.08, 0.12),
                                                              (1.8, 2.2)), "wall",
             ("red", "blue", "white", "beige", "green", "gray", "yellow", "purple"),
             ("white",), ("stripes", "noise"), build_curtain, (0.1, 0.15)),
    Category("whiteboard", 30, ("whiteboard", "white board"), "whiteboards",
             ((0.9, 1.8), (0.08, 0.1), (0.6, 1.2)), "wall", ("silver",), ("white",),
             ("plain",), build_whiteboard, (0.9, 1.1)),
    Category("monitor", 40, ("monitor", "computer monitor", "screen"), "monitors",
             ((0.45, 0.65), (0.18, 0.22), (0.38, 0.5)), "on", ("black", "white", "gray"),
             ("black",), ("plain",), build_monitor),
    Category("tv", 25, ("tv", "television"), "tvs", ((0.9, 1.4), (0.2, 0.3), (0.55, 0.85)), "on",
             ("black", "gray"), ("black",), ("plain",), build_tv),
    Category("pillow", 18, ("pillow", "cushion"), "pillows", ((0.4, 0.6), (0.3, 0.4),
                                                              (0.1, 0.16)), "on",
             ("white", "red", "blue", "yellow", "green", "orange", "pink", "gray", "purple"),
             ("white",), ("plain", "stripes", "noise"), build_pillow),
    Category("table lamp", 35, ("lamp", "table lamp"), "lamps",
             ((0.22, 0.32), (0.22, 0.32), (0.35, 0.55)), "on",
             ("white", "beige", "black", "yellow", "orange"), ("black",), ("plain",),
             build_lamp),
]}




# Structural elements: (raw label, NYU40 id).
STRUCTURE_LABELS = {"floor": 2, "wall": 1, "ceiling": 22}
