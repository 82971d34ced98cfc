"""What each image patch shows, as words: the supervision of the patch-encoder alignment.

A frame's valid depth pixels are lifted into the scene with the frame's pose and take the
object of the nearest annotated mesh triangle (aggregation groups, walls and floors included;
triangles, not vertices, since a synthetic wall is two triangles with vertices metres apart).
Each object has a word profile: its class name, plus how often each word occurs in its
ScanRefer / Scan2Cap descriptions ("brown", "wooden", "chair"...). A patch's target is the
profile of the objects it covers, weighted by the share of its pixels each one covers, so the
encoder learns the words people use for what a patch shows, as CLIP patches do. The same code
labels real ScanNet scans and synthetic ones.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open3d as o3d

from scene_llm_ros.data.scannet import load_scene
from scene_llm_ros.data.types import RGBDFrame

#: Lifted pixels farther than this from the mesh are left unlabelled (noise, holes).
MAX_SURFACE_DISTANCE_M = 0.05
#: Words too common to say anything about one object.
STOPWORDS = frozenset(
    "a an the this that it its is are of to in on at by with and or there which one side "
    "you can see from be as has have near next closest".split())
_WORD = re.compile(r"[a-z]+")


def words_of(text: str) -> set[str]:
    """Lower-case words of ``text`` without stopwords."""
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


@dataclass
class WordVocabulary:
    """The words patches are aligned with; index ``i`` is ``words[i]``."""

    words: list[str]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def profile(self, label: str, descriptions: list[str]) -> np.ndarray:
        """float32 (V,) word profile of one object: 1 for its class words, else the share of
        its descriptions that use the word."""
        profile = np.zeros(len(self.words), np.float32)
        if descriptions:
            counts = Counter(w for d in descriptions for w in words_of(d))
            for word, count in counts.items():
                if word in self.index:
                    profile[self.index[word]] = count / len(descriptions)
        for word in words_of(label):
            if word in self.index:
                profile[self.index[word]] = 1.0
        return profile


def build_vocabulary(labels: Iterable[str], descriptions: Iterable[str], *,
                     min_count: int) -> WordVocabulary:
    """Every class-name word, plus description words used at least ``min_count`` times."""
    class_words = {w for label in labels for w in words_of(label)}
    counts = Counter(w for d in descriptions for w in words_of(d))
    described = {w for w, c in counts.items() if c >= min_count}
    return WordVocabulary(sorted(class_words | described))


class SceneObjectLookup:
    """The annotated object at 3D points of a scene (axis-aligned frame).

    :ivar labels: object id -> aggregation label, for every group (walls and floors too).
    """

    def __init__(self, scene_dir: str | Path) -> None:
        scene = load_scene(scene_dir, align=True)
        vertex_object = np.full(len(scene.mesh.vertices), -1, np.int64)
        self.labels: dict[int, str] = {}
        if scene.seg_indices is not None and len(scene.seg_indices):
            segment_object = np.full(int(scene.seg_indices.max()) + 1, -1, np.int64)
            for group in scene.groups:
                self.labels[int(group.object_id)] = group.label
                segments = np.asarray(group.segments, np.int64)
                segment_object[segments[segments < len(segment_object)]] = int(group.object_id)
            vertex_object = segment_object[scene.seg_indices]
        faces = np.asarray(scene.mesh.faces, np.int64)
        # A triangle belongs to an object when its first vertex does (segments follow faces).
        self._face_object = vertex_object[faces[:, 0]] if len(faces) else np.zeros(0, np.int64)
        self._scene = o3d.t.geometry.RaycastingScene()
        if len(faces):
            self._scene.add_triangles(o3d.core.Tensor(np.asarray(scene.mesh.vertices,
                                                                 np.float32)),
                                      o3d.core.Tensor(faces.astype(np.uint32)))

    def objects_at(self, points: np.ndarray) -> np.ndarray:
        """int64 (N,) object id of each point, -1 when no annotated surface is near."""
        ids = np.full(len(points), -1, np.int64)
        if not len(self._face_object) or not len(points):
            return ids
        query = o3d.core.Tensor(np.asarray(points, np.float32))
        closest = self._scene.compute_closest_points(query)
        distance = np.linalg.norm(closest["points"].numpy() - query.numpy(), axis=1)
        near = distance <= MAX_SURFACE_DISTANCE_M
        ids[near] = self._face_object[closest["primitive_ids"].numpy()[near].astype(np.int64)]
        return ids


def pixel_objects(frame: RGBDFrame, lookup: SceneObjectLookup, *, step: int) -> np.ndarray:
    """int64 (H // step, W // step) object id of every ``step``-th pixel, -1 when unknown.

    :raises ValueError: when the frame has no pose.
    """
    if frame.T_world_cam is None:
        raise ValueError("the frame has no pose")
    depth = frame.depth[::step, ::step]
    rows, cols = np.mgrid[0:frame.depth.shape[0]:step, 0:frame.depth.shape[1]:step]
    valid = np.isfinite(depth) & (depth > 0)
    k = frame.intrinsics
    z = depth[valid].astype(np.float64)
    camera = np.stack([(cols[valid] - k.cx) / k.fx * z, (rows[valid] - k.cy) / k.fy * z, z], 1)
    world = camera @ frame.T_world_cam[:3, :3].T + frame.T_world_cam[:3, 3]
    ids = np.full(depth.shape, -1, np.int64)
    ids[valid] = lookup.objects_at(world)
    return ids


def patch_targets(ids: np.ndarray, grid: tuple[int, int], profiles: dict[int, np.ndarray],
                  vocabulary_size: int, *, min_labelled: float = 0.25
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell word targets of one frame.

    :param ids: object id per sampled pixel (:func:`pixel_objects`).
    :param grid: (rows, cols) of the encoder's patch grid; cell (i, j) covers the same share
        of the image as the encoder's cell.
    :param profiles: object id -> word profile.
    :param min_labelled: cells with a smaller share of labelled pixels get weight 0.
    :return: float32 (rows, cols, V) targets, float32 (rows, cols) weights (the labelled
        share), int64 (rows, cols) the object covering most of the cell (-1: none).
    """
    rows, cols = grid
    height, width = ids.shape
    targets = np.zeros((rows, cols, vocabulary_size), np.float32)
    weights = np.zeros((rows, cols), np.float32)
    dominant = np.full((rows, cols), -1, np.int64)
    row_edges = np.linspace(0, height, rows + 1).round().astype(int)
    col_edges = np.linspace(0, width, cols + 1).round().astype(int)
    for i in range(rows):
        for j in range(cols):
            cell = ids[row_edges[i]:row_edges[i + 1], col_edges[j]:col_edges[j + 1]]
            labelled = cell[cell >= 0]
            if not cell.size or labelled.size < min_labelled * cell.size:
                continue
            objects, counts = np.unique(labelled, return_counts=True)
            shares = counts / labelled.size
            targets[i, j] = sum(s * profiles[o] for o, s in zip(objects, shares, strict=True))
            weights[i, j] = labelled.size / cell.size
            dominant[i, j] = objects[np.argmax(counts)]
    return targets, weights, dominant


def descriptions_by_object(records: Iterable) -> dict[tuple[str, int], list[str]]:
    """(scene id, object id) -> descriptions, from ScanRefer / Scan2Cap records."""
    found: dict[tuple[str, int], list[str]] = defaultdict(list)
    for record in records:
        found[(record.scene_id, int(record.object_id))].append(record.description)
    return found
