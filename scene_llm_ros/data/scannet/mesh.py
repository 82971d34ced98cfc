"""ScanNet reconstructed meshes (``_vh_clean_2.ply`` and ``_vh_clean_2.labels.ply``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scene_llm_ros.data.ply import read_ply, write_ply
from scene_llm_ros.errors import DataFormatError

logger = logging.getLogger(__name__)

_VERTEX_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"),
                          ("green", "u1"), ("blue", "u1"), ("alpha", "u1")])
_LABELLED_VERTEX_DTYPE = np.dtype(_VERTEX_DTYPE.descr + [("label", "<u2")])
_FACE_DTYPE = np.dtype([("vertex_indices", "<i4", (3,))])


@dataclass
class ScanNetMesh:
    """A triangle mesh in ScanNet's scan frame (metres, +Z up).

    :ivar vertices: float32 (N, 3) positions.
    :ivar colors: uint8 (N, 4) RGBA.
    :ivar faces: int32 (F, 3) vertex indices.
    :ivar labels: uint16 (N,) NYU40 ids from a ``.labels.ply`` (0 = unannotated), or None.
    """

    vertices: np.ndarray
    colors: np.ndarray
    faces: np.ndarray
    labels: np.ndarray | None = None


def read_mesh(path: str | Path) -> ScanNetMesh:
    """Read a ScanNet mesh; ``labels`` is filled when the vertices carry a ``label`` property.

    :param path: a ``_vh_clean_2.ply`` or ``_vh_clean_2.labels.ply`` file.
    :return: the mesh.
    :raises DataFormatError: when the file is unreadable, truncated, lacks a vertex property
        ScanNet meshes have, or has non-triangle faces or out-of-range indices.
    """
    path = Path(path)
    ply = read_ply(path)
    if "vertex" not in ply.elements:
        raise DataFormatError(f"{path}: PLY file has no 'vertex' element")
    vertex = ply.elements["vertex"]
    missing = [n for n in ("x", "y", "z", "red", "green", "blue") if n not in vertex.dtype.names]
    if missing:
        raise DataFormatError(f"{path}: vertex element lacks properties {missing}; "
                              f"it has {list(vertex.dtype.names)}")
    vertices = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    # Meshes without alpha are opaque; ScanNet writes alpha=255 everywhere.
    alpha = vertex["alpha"] if "alpha" in vertex.dtype.names else np.full(len(vertex), 255)
    colors = np.stack([vertex["red"], vertex["green"], vertex["blue"], alpha],
                      axis=1).astype(np.uint8)
    labels = vertex["label"].astype(np.uint16) if "label" in vertex.dtype.names else None
    faces = _read_faces(ply.elements.get("face"), len(vertices), path)
    return ScanNetMesh(vertices, colors, faces, labels)


def _read_faces(face: np.ndarray | None, num_vertices: int, path: Path) -> np.ndarray:
    if face is None or len(face) == 0:
        return np.zeros((0, 3), np.int32)
    if "vertex_indices" not in face.dtype.names:
        raise DataFormatError(f"{path}: face element lacks 'vertex_indices'; it has "
                              f"{list(face.dtype.names)}")
    column = face["vertex_indices"]
    if column.dtype == object or column.shape[1:] != (3,):
        raise DataFormatError(f"{path}: faces must all be triangles")
    faces = column.astype(np.int32)
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise DataFormatError(f"{path}: face indices span [{faces.min()}, {faces.max()}] but "
                              f"there are {num_vertices} vertices")
    return faces


def write_mesh(path: str | Path, mesh: ScanNetMesh, *, comment: str | None = None) -> None:
    """Write a mesh in ScanNet's exact layout (binary little-endian).

    Vertex properties are ``float x y z``, ``uchar red green blue alpha`` and, when
    ``mesh.labels`` is set, ``ushort label``; faces are ``list uchar int vertex_indices``.

    :param path: output ``.ply`` file.
    :param mesh: the mesh to write.
    :param comment: header comment; by default the one ScanNet's own tools write
        (``VCGLIB generated``, or ``MLIB generated`` for labelled meshes), so a mesh read from
        ScanNet is written back byte for byte.
    :raises ValueError: when array shapes disagree.
    """
    n = len(mesh.vertices)
    if mesh.vertices.shape != (n, 3) or mesh.colors.shape != (n, 4):
        raise ValueError(f"vertices {mesh.vertices.shape} and colors {mesh.colors.shape} must be "
                         f"(N, 3) and (N, 4)")
    if mesh.faces.ndim != 2 or mesh.faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {mesh.faces.shape}")
    if mesh.labels is not None and mesh.labels.shape != (n,):
        raise ValueError(f"labels must be ({n},), got {mesh.labels.shape}")
    vertex = np.empty(n, _VERTEX_DTYPE if mesh.labels is None else _LABELLED_VERTEX_DTYPE)
    for axis, name in enumerate(("x", "y", "z")):
        vertex[name] = mesh.vertices[:, axis]
    for channel, name in enumerate(("red", "green", "blue", "alpha")):
        vertex[name] = mesh.colors[:, channel]
    if mesh.labels is not None:
        vertex["label"] = mesh.labels
    face = np.empty(len(mesh.faces), _FACE_DTYPE)
    face["vertex_indices"] = mesh.faces
    if comment is None:
        comment = "VCGLIB generated" if mesh.labels is None else "MLIB generated"
    write_ply(path, {"vertex": vertex, "face": face}, comments=[comment],
              list_count_types={"vertex_indices": "uchar"})
    logger.debug("wrote %s: %d vertices, %d faces", path, n, len(face))
