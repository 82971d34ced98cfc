"""Subdivided box and cylinder triangle meshes, the building blocks of synthetic objects."""
from __future__ import annotations

import numpy as np

# Target edge length of the subdivision grid: small enough that per-vertex colour carries a
# texture and large faces split into several segments, large enough to keep scenes light.
DEFAULT_STEP_M = 0.1
_MAX_CELLS_PER_EDGE = 48


def _cells(length: float, step: float) -> int:
    return int(np.clip(np.ceil(length / step), 1, _MAX_CELLS_PER_EDGE))


def grid_quad(origin: np.ndarray, edge_u: np.ndarray, edge_v: np.ndarray, *,
              step: float = DEFAULT_STEP_M) -> tuple[np.ndarray, np.ndarray]:
    """Return a quad split into a regular grid of triangles.

    The quad spans ``origin + a * edge_u + b * edge_v`` for a, b in [0, 1]; its normal is
    ``edge_u x edge_v`` (counter-clockwise winding seen from that side).

    :param origin: float64 (3,) corner, metres.
    :param edge_u: float64 (3,) first edge vector.
    :param edge_v: float64 (3,) second edge vector.
    :param step: target cell size in metres.
    :return: vertices float64 (N, 3) and faces int64 (F, 3).
    """
    nu = _cells(float(np.linalg.norm(edge_u)), step)
    nv = _cells(float(np.linalg.norm(edge_v)), step)
    a, b = np.meshgrid(np.linspace(0.0, 1.0, nu + 1), np.linspace(0.0, 1.0, nv + 1),
                       indexing="ij")
    vertices = origin + a.reshape(-1, 1) * edge_u + b.reshape(-1, 1) * edge_v
    idx = np.arange((nu + 1) * (nv + 1)).reshape(nu + 1, nv + 1)
    v00, v10 = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
    v01, v11 = idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([v00, v10, v11], 1), np.stack([v00, v11, v01], 1)])
    return vertices, faces


def merge(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate (vertices, faces) pieces into one mesh, offsetting the face indices."""
    vertices, faces, offset = [], [], 0
    for v, f in pieces:
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(faces)


def box(lo: np.ndarray, hi: np.ndarray, *, step: float = DEFAULT_STEP_M,
        bottom: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return an axis-aligned box between corners ``lo`` and ``hi`` with outward normals.

    :param bottom: include the bottom face (objects resting on the floor never show it).
    :return: vertices float64 (N, 3) and faces int64 (F, 3).
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    dx, dy, dz = np.diag(hi - lo)
    quads = [
        (lo, dy, dx),                     # bottom, normal -z
        (lo + dz, dx, dy),                # top, normal +z
        (lo, dx, dz),                     # front (-y)
        (lo + dy, dz, dx),                # back (+y)
        (lo, dz, dy),                     # left (-x)
        (lo + dx, dy, dz),                # right (+x)
    ]
    if not bottom:
        quads = quads[1:]
    return merge([grid_quad(o, u, v, step=step) for o, u, v in quads])


def cylinder(center_xy: tuple[float, float], radius: float, z0: float, z1: float, *,
             sides: int = 16, step: float = DEFAULT_STEP_M) -> tuple[np.ndarray, np.ndarray]:
    """Return a closed vertical cylinder (prism with ``sides`` sides) from z0 to z1.

    :return: vertices float64 (N, 3) and faces int64 (F, 3).
    """
    cx, cy = center_xy
    angles = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    ring = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1)
    nz = _cells(z1 - z0, step)
    zs = np.linspace(z0, z1, nz + 1)
    side = np.concatenate([np.column_stack([ring, np.full(sides, z)]) for z in zs])
    idx = np.arange(len(side)).reshape(nz + 1, sides)
    nxt = np.roll(idx, -1, axis=1)
    faces = np.concatenate([
        np.stack([idx[:-1].ravel(), nxt[:-1].ravel(), nxt[1:].ravel()], 1),
        np.stack([idx[:-1].ravel(), nxt[1:].ravel(), idx[1:].ravel()], 1)])
    pieces = [(side, faces)]
    for z, up in ((z0, False), (z1, True)):
        cap = np.vstack([[cx, cy, z], np.column_stack([ring, np.full(sides, z)])])
        k = np.arange(sides)
        a, b = 1 + k, 1 + (k + 1) % sides
        tri = np.stack([np.zeros(sides, int), a, b], 1) if up else np.stack(
            [np.zeros(sides, int), b, a], 1)
        pieces.append((cap, tri))
    return merge(pieces)
