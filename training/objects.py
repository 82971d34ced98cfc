"""Ground-truth objects of a scene: axis-aligned boxes and class names from its instances."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scene_llm_ros.data.scannet import load_scene


@dataclass(frozen=True)
class ObjectBox:
    """One annotated object.

    :ivar object_id: the aggregation ``objectId`` annotations refer to.
    :ivar label: class name (the benchmark class when mapped, else the raw label).
    :ivar center: float64 (3,) box centre, axis-aligned scene frame, metres.
    :ivar size: float64 (3,) full extents, metres (at least 1 cm on every axis).
    """

    object_id: int
    label: str
    center: np.ndarray
    size: np.ndarray

    @property
    def box(self) -> np.ndarray:
        """float64 (6,) centre + size, as the metrics take it."""
        return np.concatenate([self.center, self.size])


#: Flat objects (a poster, a rug) have a zero extent on one axis; the box loss takes logs.
MIN_SIZE_M = 0.01


def load_scene_objects(scene_dir: str | Path) -> dict[int, ObjectBox]:
    """Objects of a ScanNet-format scene by object id, in the axis-aligned frame.

    :raises DataFormatError: when the scene's mesh or segmentation cannot be read.
    """
    scene = load_scene(scene_dir, align=True)
    objects = {}
    for instance in scene.instances:
        objects[int(instance.object_id)] = ObjectBox(
            object_id=int(instance.object_id),
            label=instance.benchmark_class or instance.label,
            center=instance.center.astype(np.float64),
            size=np.maximum(instance.size.astype(np.float64), MIN_SIZE_M))
    return objects
