"""Ground-truth boxes for grounding questions: from the question file or a ScanNet-format scene.

A bag's poses define its scene frame. A ScanNet-format scene's boxes are computed in its mesh
frame (``load_scene(align=False)``: the ``axisAlignment`` of the meta file is *not* applied,
because ScanNet's camera poses and ``scene-llm bag`` bags are in the unaligned scan frame).
When the bag's frame differs, ``--gt-transform`` gives ``T_bag_mesh``; each object's vertices
are transformed before its axis-aligned box is taken, so a rotation gives the tight box, not
the box of a rotated box.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from scene_llm_ros.evaluation.errors import GroundTruthError
from scene_llm_ros.evaluation.questions import GROUNDING_BENCHMARKS, EvalQuestion

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def read_transform(path: str | Path) -> np.ndarray:
    """A 4x4 rigid transform from a text file: 16 numbers, row-major, in any layout.

    Accepts plain ``4 x 4`` text (as numpy ``savetxt`` writes), one line of 16 numbers, JSON
    ``[[...], ...]`` or a ScanNet meta line ``axisAlignment = ...``.

    :return: float64 (4, 4) ``T_bag_mesh``.
    :raises GroundTruthError: when the file is unreadable, does not hold exactly 16 numbers, or
        is not a rigid transform (last row 0 0 0 1, orthonormal rotation).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GroundTruthError(f"{path}: cannot read the GT transform: {exc}") from exc
    numbers = [float(v) for v in _NUMBER.findall(text)]
    if len(numbers) != 16:
        raise GroundTruthError(f"{path}: a 4x4 transform needs 16 numbers, found "
                               f"{len(numbers)}")
    T = np.array(numbers, dtype=np.float64).reshape(4, 4)
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-6):
        raise GroundTruthError(f"{path}: the last row must be 0 0 0 1, got {T[3].tolist()}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4):
        raise GroundTruthError(f"{path}: the rotation part is not orthonormal (scaling or "
                               f"shear): {R.tolist()}")
    return T


@dataclass(frozen=True)
class SceneBoxes:
    """Axis-aligned boxes of a scene's objects in the bag's scene frame.

    :ivar scene_id: the scene's folder name.
    :ivar boxes: object id -> float64 (6,) centre + full size, metres.
    :ivar labels: object id -> aggregation label.
    :ivar classes: object id -> class used for ScanRefer's unique/multiple split (benchmark
        class, "others" outside the benchmark, or the raw label without a label map).
    """

    scene_id: str
    boxes: dict[int, np.ndarray]
    labels: dict[int, str]
    classes: dict[int, str]

    def is_unique(self, object_id: int) -> bool:
        """Whether no other object of the scene has the object's class (ScanRefer "unique")."""
        counts = Counter(self.classes.values())
        return counts[self.classes[object_id]] == 1

    def boxes_of(self, object_ids: Sequence[int], *, question_id: str) -> np.ndarray:
        """float64 (len(object_ids), 6) boxes of the given objects.

        :raises GroundTruthError: naming the question when an object is not in the scene.
        """
        missing = [i for i in object_ids if i not in self.boxes]
        if missing:
            raise GroundTruthError(f"question {question_id!r} refers to object ids {missing}, "
                                   f"which {self.scene_id} does not have (it has "
                                   f"{len(self.boxes)} objects, ids {min(self.boxes, default=0)}"
                                   f"..{max(self.boxes, default=0)})")
        return np.array([self.boxes[i] for i in object_ids], dtype=np.float64).reshape(-1, 6)


def scene_boxes(scene_dir: str | Path, T_bag_mesh: np.ndarray | None = None) -> SceneBoxes:
    """Object boxes of a ScanNet-format scene (aggregation + segs + mesh).

    :param scene_dir: ``.../scans/<scene_id>``.
    :param T_bag_mesh: float64 (4, 4) bag scene frame <- mesh frame; None = the same frame.
    :raises GroundTruthError: when the scene cannot be loaded or has no objects.
    """
    from scene_llm_ros.data.scannet import load_scene
    from scene_llm_ros.errors import DataFormatError

    try:
        scene = load_scene(scene_dir, align=False)
    except DataFormatError as exc:
        raise GroundTruthError(f"--gt-scene {scene_dir}: {exc}") from exc
    if not scene.instances:
        raise GroundTruthError(f"--gt-scene {scene_dir}: no annotated objects (needs "
                               "aggregation + segs files)")
    vertices = scene.mesh.vertices.astype(np.float64)
    if T_bag_mesh is not None:
        vertices = vertices @ T_bag_mesh[:3, :3].T + T_bag_mesh[:3, 3]
    boxes, labels, classes = {}, {}, {}
    for instance in scene.instances:
        points = vertices[instance.vertex_indices]
        lo, hi = points.min(axis=0), points.max(axis=0)
        boxes[instance.object_id] = np.concatenate([(lo + hi) / 2, hi - lo])
        labels[instance.object_id] = instance.label
        if instance.nyu40_id is not None:
            classes[instance.object_id] = instance.benchmark_class or "others"
        else:
            classes[instance.object_id] = instance.label
    return SceneBoxes(scene.scene_id, boxes, labels, classes)


def attach_ground_truth(questions: Sequence[EvalQuestion],
                        gt: SceneBoxes | None) -> list[EvalQuestion]:
    """Fill in the GT boxes (and ScanRefer's unique flag) of the scored grounding questions.

    Boxes given in the question file are kept; the others are looked up by object id in
    ``gt``.

    :raises GroundTruthError: when scored grounding questions have no boxes and no GT scene
        was given, or refer to objects the GT scene lacks.
    """
    out, lacking = [], []
    for q in questions:
        if q.benchmark not in GROUNDING_BENCHMARKS:
            out.append(q)
            continue
        if q.gt_boxes is None:
            if gt is None or q.object_ids is None:
                lacking.append(q.id)
                out.append(q)
                continue
            q = replace(q, gt_boxes=gt.boxes_of(q.object_ids, question_id=q.id))
        if q.benchmark == "scanrefer" and q.unique is None and gt is not None \
                and q.object_ids:
            q = replace(q, unique=gt.is_unique(q.object_ids[0]))
        out.append(q)
    if lacking:
        shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
        raise GroundTruthError(
            f"{len(lacking)} grounding questions have no ground-truth boxes ({shown}): pass "
            "--gt-scene SCENE_DIR (a ScanNet-format scene with aggregation + segs + mesh) or "
            "put 'box' in the question file")
    _scanrefer_unique_all_or_none(out)
    return out


def _scanrefer_unique_all_or_none(questions: list[EvalQuestion]) -> None:
    # The metrics need the unique flag on every ScanRefer record or none (otherwise they
    # raise); when only some questions have it, drop the split rather than fail.
    flags = [q.unique is not None for q in questions if q.benchmark == "scanrefer"]
    if any(flags) and not all(flags):
        for index, q in enumerate(questions):
            if q.benchmark == "scanrefer":
                questions[index] = replace(q, unique=None)
