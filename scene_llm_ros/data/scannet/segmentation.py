"""ScanNet over-segmentation (``.segs.json``) and instance aggregation (``.aggregation.json``).

The writers reproduce the text layout of ScanNet's own tools (CRLF line ends, tab indents), so a
file read from ScanNet and written back with the same ids is byte-identical.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scene_llm_ros.data.scannet.jsonio import load_json, require_key, require_list_of
from scene_llm_ros.errors import DataFormatError

logger = logging.getLogger(__name__)

_SCANNET_PREFIX = "scannet."
_NEWLINE = "\r\n"


@dataclass
class SegGroup:
    """One annotated object: the segments (ids of ``segIndices``) that make it up."""

    id: int
    object_id: int
    segments: list[int]
    label: str


def read_segs(path: str | Path) -> np.ndarray:
    """Read the per-vertex segment ids of a ``.segs.json`` file.

    :param path: a ``<scene>_vh_clean_2.0.010000.segs.json`` file.
    :return: int64 (N,) segment id of each mesh vertex.
    :raises DataFormatError: when the file is not JSON or ``segIndices`` is missing or not a
        list of integers.
    """
    path = Path(path)
    data = load_json(path)
    indices = require_key(data, "segIndices", list, path, "top level")
    try:
        seg = np.asarray(indices)
    except ValueError as exc:
        raise DataFormatError(f"{path}: 'segIndices' must be a flat list of integers: {exc}") \
            from exc
    # JSON floats, strings, booleans and nested lists all give a non-integer dtype or ndim.
    if seg.ndim != 1 or (seg.size and seg.dtype.kind != "i"):
        raise DataFormatError(f"{path}: 'segIndices' must be a flat list of integers, got "
                              f"dtype {seg.dtype} with {seg.ndim} dimensions")
    seg = seg.astype(np.int64)
    return seg


def write_segs(path: str | Path, seg_indices: np.ndarray, *, scene_id: str,
               kthresh: str = "0.0001", seg_min_verts: str = "20", min_points: str = "750",
               max_points: str = "30000", thin_thresh: str = "0.05", flat_thresh: str = "0.001",
               min_length: str = "0.02", max_length: str = "1") -> None:
    """Write per-vertex segment ids as ScanNet's segmentator does.

    Parameters are strings because ScanNet stores them as JSON strings.

    :param path: output ``.segs.json`` file.
    :param seg_indices: integer (N,) segment id per vertex.
    :param scene_id: e.g. ``scene0000_00``.
    :raises ValueError: when ``seg_indices`` is not a 1-D integer array.
    """
    seg = np.asarray(seg_indices)
    if seg.ndim != 1 or (seg.size and seg.dtype.kind not in "iu"):
        raise ValueError(f"seg_indices must be a 1-D integer array, got {seg.dtype} {seg.shape}")
    params = {"kThresh": kthresh, "segMinVerts": seg_min_verts, "minPoints": min_points,
              "maxPoints": max_points, "thinThresh": thin_thresh, "flatThresh": flat_thresh,
              "minLength": min_length, "maxLength": max_length}
    lines = ["{", '"params": {']
    lines.append(("," + _NEWLINE).join(f"\t{json.dumps(k)}: {json.dumps(str(v))}"
                                       for k, v in params.items()))
    lines += ["}", ",", f'"sceneId": {json.dumps(scene_id)},',
              '"segIndices": [' + ",".join(map(str, seg.tolist())) + "]", "}"]
    Path(path).write_bytes((_NEWLINE.join(lines) + _NEWLINE).encode("utf-8"))


def read_aggregation(path: str | Path) -> list[SegGroup]:
    """Read the object groups of an ``.aggregation.json`` file.

    ``sceneId`` may carry the ``scannet.`` prefix of v2 files or not (v1); it is not needed here.

    :param path: a ``<scene>.aggregation.json`` or ``<scene>_vh_clean.aggregation.json`` file.
    :return: the groups in file order.
    :raises DataFormatError: naming the file, the group index and the field when a group is
        malformed.
    """
    path = Path(path)
    data = load_json(path)
    groups_json = require_key(data, "segGroups", list, path, "top level")
    groups = []
    for index, group in enumerate(groups_json):
        where = f"segGroups[{index}]"
        groups.append(SegGroup(
            id=require_key(group, "id", int, path, where),
            object_id=require_key(group, "objectId", int, path, where),
            segments=list(require_list_of(group, "segments", int, path, where)),
            label=require_key(group, "label", str, path, where)))
    return groups


def aggregation_scene_id(path: str | Path) -> str | None:
    """The ``sceneId`` of an aggregation file without the ``scannet.`` prefix, or None."""
    path = Path(path)
    scene_id = load_json(path).get("sceneId")
    if not isinstance(scene_id, str):
        return None
    return scene_id.removeprefix(_SCANNET_PREFIX)


def write_aggregation(path: str | Path, groups: Sequence[SegGroup], *, scene_id: str,
                      segs_file: str | Path, app_id: str = "Aggregator.v2",
                      id_prefix: str = _SCANNET_PREFIX) -> None:
    """Write object groups in the layout of ScanNet v2's ``.aggregation.json``.

    :param path: output file.
    :param groups: the groups, written in order.
    :param scene_id: e.g. ``scene0000_00``; written as ``<id_prefix><scene_id>``.
    :param segs_file: the matching ``.segs.json`` (only its name is written, prefixed likewise).
    :param app_id: the ``appId`` value; ScanNet v1 files say ``Aggregator.v1``.
    :param id_prefix: ``scannet.`` as in v2 files; ``""`` writes the v1 layout.
    """
    lines = ["{", f'"sceneId": {json.dumps(id_prefix + scene_id)},',
             f'"appId": {json.dumps(app_id)},', '"segGroups": [']
    for index, group in enumerate(groups):
        lines += ["\t{", f'\t"id": {int(group.id)},', f'\t"objectId": {int(group.object_id)},',
                  '\t"segments": [' + ",".join(str(int(s)) for s in group.segments) + "],",
                  f'\t"label": {json.dumps(group.label)}',
                  "\t}," if index < len(groups) - 1 else "\t}"]
    lines += ["],", f'"segmentsFile": {json.dumps(id_prefix + Path(segs_file).name)}}}']
    Path(path).write_bytes((_NEWLINE.join(lines) + _NEWLINE).encode("utf-8"))
