"""One ScanNet scene folder: mesh, segmentation, instances with boxes, meta and RGB-D frames.

Folder convention of the project (ScanNet v2 names)::

    <root>/scans/<scene_id>/<scene_id>_vh_clean_2.ply
                            <scene_id>_vh_clean_2.labels.ply
                            <scene_id>_vh_clean_2.0.010000.segs.json
                            <scene_id>.aggregation.json
                            <scene_id>.txt
                            <scene_id>.sens
                            frames/{color,depth,pose,intrinsic}/
    <root>/meta/scannetv2-labels.combined.tsv, scannetv2_{train,val,test}.txt
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from scene_llm_ros.data.scannet.frames import count_exported_frames, read_exported_frames
from scene_llm_ros.data.scannet.labels import LabelMap
from scene_llm_ros.data.scannet.mesh import ScanNetMesh, read_mesh
from scene_llm_ros.data.scannet.meta import SceneMeta, read_meta
from scene_llm_ros.data.scannet.segmentation import SegGroup, read_aggregation, read_segs
from scene_llm_ros.data.scannet.sens import read_sens
from scene_llm_ros.data.types import RGBDFrame
from scene_llm_ros.errors import DataFormatError

logger = logging.getLogger(__name__)

LABEL_TSV_NAME = "scannetv2-labels.combined.tsv"
#: Structural labels that ScanRefer (and most grounding benchmarks) do not treat as objects.
EXCLUDED_LABELS = frozenset({"wall", "floor", "ceiling"})
# How many parent folders to search for meta/<LABEL_TSV_NAME>: <root>/scans/<id> needs two.
_LABEL_MAP_SEARCH_DEPTH = 3


@dataclass
class ObjectInstance:
    """One annotated object of a scene.

    :ivar object_id: ``objectId`` of the aggregation (the ``object_id`` of ScanRefer/ScanQA).
    :ivar label: the aggregation label, verbatim.
    :ivar nyu40_id: NYU40 id from the label map, or None when unmapped.
    :ivar benchmark_class: one of the 18 benchmark classes, or None.
    :ivar vertex_indices: int64 (K,) mesh vertices of the object.
    :ivar box_min: float32 (3,) axis-aligned box corner, metres, scene frame.
    :ivar box_max: float32 (3,) opposite corner.
    """

    object_id: int
    label: str
    nyu40_id: int | None
    benchmark_class: str | None
    vertex_indices: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray

    @property
    def center(self) -> np.ndarray:
        """float32 (3,) box centre, metres."""
        return (self.box_min + self.box_max) / np.float32(2)

    @property
    def size(self) -> np.ndarray:
        """float32 (3,) box extent along x, y, z, metres."""
        return self.box_max - self.box_min


@dataclass
class ScanNetScene:
    """A loaded scene.

    :ivar mesh: the ``_vh_clean_2`` mesh (with labels when the ``.labels.ply`` exists), in the
        aligned frame when ``axis_alignment`` is set.
    :ivar seg_indices: int64 (N,) segment id per vertex, or None without a segs file.
    :ivar groups: aggregation groups (all of them, including walls and floors).
    :ivar meta: the meta file content, or None.
    :ivar instances: objects other than wall/floor/ceiling, with boxes in the mesh frame.
    :ivar axis_alignment: float64 (4, 4) ``T_aligned_scan`` applied to the mesh and boxes, or
        None when none was applied; RGB-D poses are in the scan frame, so left-multiply them by it.
    """

    scene_id: str
    mesh: ScanNetMesh
    seg_indices: np.ndarray | None
    groups: list[SegGroup]
    meta: SceneMeta | None
    instances: list[ObjectInstance]
    axis_alignment: np.ndarray | None


def scene_file_paths(scene_dir: str | Path) -> dict[str, Path]:
    """The conventional path of every file of a scene, whether it exists or not."""
    scene_dir = Path(scene_dir)
    scene_id = scene_dir.name
    return {
        "mesh": scene_dir / f"{scene_id}_vh_clean_2.ply",
        "labels": scene_dir / f"{scene_id}_vh_clean_2.labels.ply",
        "segs": scene_dir / f"{scene_id}_vh_clean_2.0.010000.segs.json",
        "aggregation": scene_dir / f"{scene_id}.aggregation.json",
        "meta": scene_dir / f"{scene_id}.txt",
        "sens": scene_dir / f"{scene_id}.sens",
        "frames": scene_dir / "frames",
    }


def find_scene_files(scene_dir: str | Path) -> dict[str, Path | None]:
    """Which files of a scene exist.

    :param scene_dir: ``<root>/scans/<scene_id>``.
    :return: keys ``mesh labels segs aggregation meta sens frames``, each the path when present
        (``frames`` only when it holds at least one exported frame) or None.
    """
    found: dict[str, Path | None] = {}
    for key, path in scene_file_paths(scene_dir).items():
        exists = count_exported_frames(path) > 0 if key == "frames" else path.is_file()
        found[key] = path if exists else None
    return found


def find_label_map(scene_dir: str | Path) -> Path | None:
    """The nearest ``meta/scannetv2-labels.combined.tsv`` in the parents of ``scene_dir``."""
    for parent in list(Path(scene_dir).resolve().parents)[:_LABEL_MAP_SEARCH_DEPTH]:
        candidate = parent / "meta" / LABEL_TSV_NAME
        if candidate.is_file():
            return candidate
    return None


def load_scene(scene_dir: str | Path, *, label_map: LabelMap | None = None,
               align: bool = True) -> ScanNetScene:
    """Load a scene's mesh, segmentation, aggregation and meta, and build object boxes.

    :param scene_dir: ``<root>/scans/<scene_id>``; the folder name is the scene id.
    :param label_map: raw label -> NYU40 map; when None, ``meta/scannetv2-labels.combined.tsv``
        is looked up in the parent folders, and without it instances carry no NYU40 ids.
    :param align: apply the meta file's ``axisAlignment`` (when present) to mesh and boxes.
    :return: the scene; instances exclude wall, floor and ceiling.
    :raises DataFormatError: when the mesh is missing, only one of segs/aggregation exists,
        the segs do not cover the mesh, or a file is malformed.
    """
    scene_dir = Path(scene_dir)
    files = find_scene_files(scene_dir)
    mesh_path = files["labels"] or files["mesh"]
    if mesh_path is None:
        raise DataFormatError(f"{scene_dir}: no {scene_dir.name}_vh_clean_2.ply or "
                              f".labels.ply mesh")
    mesh = read_mesh(mesh_path)
    if files["labels"] and files["mesh"] is None:
        logger.debug("%s: using the labelled mesh for geometry", scene_dir)
    meta = read_meta(files["meta"]) if files["meta"] else None
    axis_alignment = meta.axis_alignment if (align and meta is not None) else None
    if axis_alignment is not None:
        mesh = replace(mesh, vertices=_transform(mesh.vertices, axis_alignment))
    if label_map is None:
        tsv = find_label_map(scene_dir)
        label_map = LabelMap.from_tsv(tsv) if tsv else None
        if label_map is None:
            logger.warning("%s: no label map found; instances get no NYU40 ids", scene_dir)
    seg_indices, groups = _read_segmentation(files, len(mesh.vertices), scene_dir)
    instances = _build_instances(groups, seg_indices, mesh.vertices, label_map, scene_dir)
    return ScanNetScene(scene_dir.name, mesh, seg_indices, groups, meta, instances,
                        axis_alignment)


def _read_segmentation(files: dict[str, Path | None], num_vertices: int,
                       scene_dir: Path) -> tuple[np.ndarray | None, list[SegGroup]]:
    if files["segs"] is None and files["aggregation"] is None:
        logger.info("%s: no segmentation or aggregation; scene has no instances", scene_dir)
        return None, []
    if files["segs"] is None or files["aggregation"] is None:
        missing = "segs" if files["segs"] is None else "aggregation"
        raise DataFormatError(f"{scene_dir}: has one of segs/aggregation but no {missing} file")
    seg_indices = read_segs(files["segs"])
    if len(seg_indices) != num_vertices:
        raise DataFormatError(f"{files['segs']}: {len(seg_indices)} segment ids for a mesh of "
                              f"{num_vertices} vertices")
    return seg_indices, read_aggregation(files["aggregation"])


def _build_instances(groups: list[SegGroup], seg_indices: np.ndarray | None,
                     vertices: np.ndarray, label_map: LabelMap | None,
                     scene_dir: Path) -> list[ObjectInstance]:
    instances = []
    for group in groups:
        name = (label_map.normalize(group.label) if label_map else None) or group.label
        if name.lower() in EXCLUDED_LABELS:
            continue
        vertex_indices = np.flatnonzero(np.isin(seg_indices, group.segments))
        if len(vertex_indices) == 0:
            logger.warning("%s: object %d (%r) has no vertices; skipped", scene_dir,
                           group.object_id, group.label)
            continue
        points = vertices[vertex_indices]
        nyu40 = label_map.raw_to_nyu40(group.label) if label_map else None
        instances.append(ObjectInstance(
            object_id=group.object_id, label=group.label,
            nyu40_id=None if nyu40 is None else nyu40[0],
            benchmark_class=label_map.benchmark_class(group.label) if label_map else None,
            vertex_indices=vertex_indices, box_min=points.min(axis=0).astype(np.float32),
            box_max=points.max(axis=0).astype(np.float32)))
    return instances


def _transform(points: np.ndarray, T: np.ndarray) -> np.ndarray:
    return (points.astype(np.float64) @ T[:3, :3].T + T[:3, 3]).astype(np.float32)


def iter_scene_frames(scene_dir: str | Path, *, every_nth: int = 1, fps: float = 30.0,
                      align: bool = False) -> Iterator[RGBDFrame]:
    """RGB-D frames of a scene from ``frames/`` (exported) when present, else ``<id>.sens``.

    :param scene_dir: ``<root>/scans/<scene_id>``.
    :param every_nth: keep every n-th frame.
    :param fps: frame rate giving the stamps of exported frames (``.sens`` has its own stamps).
    :param align: left-multiply poses by the meta file's ``axisAlignment`` so they match a scene
        loaded with ``load_scene(align=True)``.
    :return: iterator of frames; frames with lost tracking are skipped.
    :raises DataFormatError: when the scene has neither exported frames nor a ``.sens`` file.
    """
    scene_dir = Path(scene_dir)
    files = find_scene_files(scene_dir)
    if files["frames"] is not None:
        frames = read_exported_frames(files["frames"], fps=fps, every_nth=every_nth)
    elif files["sens"] is not None:
        frames = read_sens(files["sens"]).iter_frames(every_nth=every_nth)
    else:
        raise DataFormatError(f"{scene_dir}: no exported frames/ folder and no "
                              f"{scene_dir.name}.sens file")
    T_aligned_scan = None
    if align and files["meta"] is not None:
        T_aligned_scan = read_meta(files["meta"]).axis_alignment
    if T_aligned_scan is None:
        return frames
    return (replace(frame, T_world_cam=T_aligned_scan @ frame.T_world_cam) for frame in frames)
