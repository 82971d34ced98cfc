"""The semantic map: the patch encoder's class probabilities lifted per pixel onto the surface.

Scene tokens pool patches over 0.25 m voxels, too coarse to tell a pillow from its bed. This
map keeps, per fine voxel (the TSDF's edge), the running mean of the class probabilities of
every depth pixel that landed in it, so each fused surface point can be given a class.
"""
from __future__ import annotations

import cv2
import numpy as np

from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.fusion.lifting import backproject_grid
from scene_llm_ros.fusion.patch_memory import PatchMemory, pack_voxel_keys

#: Class of a surface point no classified pixel came near.
UNKNOWN_CLASS = -1
#: Classes that bound the room rather than sit in it.
STRUCTURE_CLASSES = frozenset({"wall", "floor", "ceiling"})
# A point's own voxel decides when observed; otherwise its 26 neighbours vote (a TSDF zero
# crossing and the depth pixels of the same surface can fall one voxel apart).
_NEIGHBOUR_OFFSETS = np.array([(x, y, z) for x in (-1, 0, 1) for y in (-1, 0, 1)
                               for z in (-1, 0, 1) if (x, y, z) != (0, 0, 0)], np.int64)


class SemanticMap:
    """Sparse voxel hash of per-class probability means.

    :param voxel_size_m: voxel edge, metres (the TSDF's, so every surface point has one).
    :param class_names: what the probabilities are over.
    :param pixel_stride: every n-th pixel of a keyframe (both axes) is lifted.
    """

    def __init__(self, voxel_size_m: float, class_names: tuple[str, ...], *,
                 pixel_stride: int = 4) -> None:
        if not class_names:
            raise ValueError("a semantic map needs at least one class")
        if pixel_stride < 1:
            raise ValueError(f"pixel_stride must be >= 1, got {pixel_stride}")
        self.class_names = tuple(class_names)
        self.pixel_stride = int(pixel_stride)
        self._memory = PatchMemory(voxel_size_m, len(class_names))

    def __len__(self) -> int:
        return len(self._memory)

    @property
    def memory_bytes(self) -> int:
        return self._memory.memory_bytes

    def add(self, probabilities: np.ndarray, depth: np.ndarray, intrinsics: CameraIntrinsics,
            T_world_cam: np.ndarray) -> int:
        """Lift one keyframe's patch class probabilities onto its depth pixels.

        :param probabilities: float32 (grid_height, grid_width, classes) over the whole image.
        :param depth: float32 (H, W) metres, NaN = invalid (already range-limited).
        :param T_world_cam: float64 (4, 4) camera optical frame -> world.
        :return: voxels newly observed.
        """
        world, valid = backproject_grid(depth, intrinsics, T_world_cam,
                                        stride=self.pixel_stride)
        # Bilinear between patch centres, so class borders fall between patches, not on
        # the patch grid.
        per_pixel = cv2.resize(np.ascontiguousarray(probabilities, np.float32),
                               (valid.shape[1], valid.shape[0]),
                               interpolation=cv2.INTER_LINEAR)
        per_pixel = per_pixel.reshape(valid.shape + (len(self.class_names),))
        return self._memory.add(world, per_pixel[valid])

    def classes_at(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The most probable class at each point, and the most probable object class.

        A patch at an object's edge is mostly the floor or wall behind it, so thin parts
        (chair legs, a lamp) often come out as structure; the object class is what such a
        point is if geometry shows it is no floor or wall.

        :param points: float (N, 3) world metres.
        :return: ``(classes int16 (N,), object_classes int16 (N,))``, indices into
            ``class_names``; object classes never name one of :data:`STRUCTURE_CLASSES`.
            Both are :data:`UNKNOWN_CLASS` where no classified pixel came within a voxel.
        """
        keys, _, means, counts = self._memory.arrays()
        classes = np.full(len(points), UNKNOWN_CLASS, np.int16)
        object_classes = classes.copy()
        if not len(keys) or not len(points):
            return classes, object_classes
        cells = np.floor(np.asarray(points, np.float64) / self._memory.voxel_size_m)
        cells = cells.astype(np.int64)
        votes = np.zeros((len(points), len(self.class_names)), np.float32)
        slot, hit = _lookup(keys, pack_voxel_keys(cells))
        votes[hit] = means[slot[hit]]
        missing = np.flatnonzero(~hit)
        for offset in _NEIGHBOUR_OFFSETS:
            if not len(missing):
                break
            slot, near = _lookup(keys, pack_voxel_keys(cells[missing] + offset))
            votes[missing[near]] += means[slot[near]] * counts[slot[near], None]
        seen = votes.sum(axis=1) > 0
        classes[seen] = votes[seen].argmax(axis=1)
        objects = np.array([name not in STRUCTURE_CLASSES for name in self.class_names])
        if objects.any():
            object_index = np.flatnonzero(objects)
            object_classes[seen] = object_index[votes[seen][:, objects].argmax(axis=1)]
        return classes, object_classes

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays for saving (see :meth:`from_state_dict`)."""
        return {**self._memory.state_dict(), "class_names": np.array(self.class_names),
                "pixel_stride": np.array(self.pixel_stride)}

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> SemanticMap:
        """Rebuild a map saved with :meth:`state_dict`.

        :raises DataFormatError: when arrays are missing or inconsistent.
        """
        try:
            names = tuple(str(n) for n in state["class_names"].tolist())
            stride = int(state["pixel_stride"])
        except KeyError as exc:
            raise DataFormatError(f"semantic map is missing array {exc}") from exc
        memory = PatchMemory.from_state_dict(state)
        if memory.feature_dim != len(names):
            raise DataFormatError(f"semantic map holds {memory.feature_dim} probabilities per "
                                  f"voxel for {len(names)} classes")
        semantic = cls(memory.voxel_size_m, names, pixel_stride=stride)
        semantic._memory = memory
        return semantic


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slots of ``keys`` in ``sorted_keys`` and whether each is there."""
    slot = np.searchsorted(sorted_keys, keys).clip(max=len(sorted_keys) - 1)
    return slot, sorted_keys[slot] == keys
