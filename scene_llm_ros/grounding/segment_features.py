"""What a referring-expression listener knows about the object segments of one scene.

Each segment (:func:`~scene_llm_ros.grounding.class_segments.segment_by_class`) becomes a
vector of its class, colour, place in the room, size and mass; each ordered pair of segments
a vector of their offset, gap and size ratio, from which "closest to the window" or "the
larger of the two" can be read.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scene_llm_ros.grounding.errors import GroundingInputError
from scene_llm_ros.grounding.proposals import ObjectProposal

#: Numbers per segment besides the one-hot class: colour mean and spread (6), centre
#: relative to the room (3), log size (3), log point count (1), bottom above the floor (1).
SEGMENT_GEOMETRY_FEATURES = 14
#: Of those, the first: the colour's mean and spread per channel.
COLOUR_STATISTICS = 6
#: Of those, the centre relative to the room's middle and floor, and the log size along
#: each axis.
CENTRE = slice(6, 9)
LOG_SIZES = slice(9, 12)
#: Numbers per ordered pair: offset (3), horizontal distance (1), footprint gaps (2),
#: log size ratios (3).
PAIR_FEATURES = 9
#: Of those, the horizontal distance between the centres.
PAIR_DISTANCE = 3
_PAIR_OFFSET, _PAIR_GAPS, _PAIR_SIZE_RATIOS = slice(0, 3), slice(4, 6), slice(6, 9)
#: Numbers of a segment's colour relative to the room's (see :func:`relative_colours`).
COLOUR_FEATURES = 4
#: Numbers of a segment's room context: the gaps from its box to the room's low and high
#: bounds on each axis (an object against a wall is seen from the front only).
ROOM_CONTEXT_FEATURES = 6
# Keeps log sizes finite for one-voxel segments.
_SIZE_FLOOR_M = 0.02
# Keeps colour log ratios finite for black (0..1 RGB).
_COLOUR_FLOOR = 1e-2


@dataclass(frozen=True)
class SegmentFeatures:
    """Listener inputs for the first ``len(segments)`` segments of a scene.

    :ivar segments: the segments described, largest first.
    :ivar objects: float32 (S, len(class_names) + SEGMENT_GEOMETRY_FEATURES).
    :ivar pairs: float32 (S, S, PAIR_FEATURES); ``pairs[i, j]`` describes j as seen from i.
    :ivar colours: float32 (S, COLOUR_FEATURES) colours relative to the room's.
    """

    segments: tuple[ObjectProposal, ...]
    objects: np.ndarray
    pairs: np.ndarray
    colours: np.ndarray


def segment_features(segments: list[ObjectProposal], points: np.ndarray, colors: np.ndarray,
                     class_names: tuple[str, ...], *, floor_z: float,
                     max_segments: int) -> SegmentFeatures:
    """Describe the ``max_segments`` largest segments.

    :param segments: object segments of the scene, largest first.
    :param points: float (N, 3) fused surface points the segments index, scene frame (+Z up).
    :param colors: uint8 (N, 3) RGB of ``points``.
    :param class_names: the classes segment labels come from.
    :param floor_z: floor height, metres.
    :param max_segments: how many segments to describe (the rest are specks and parts).
    :raises GroundingInputError: (a ``ValueError``) on mismatched inputs or a segment label
        outside ``class_names``.
    """
    if max_segments < 1:
        raise GroundingInputError(f"max_segments must be >= 1, got {max_segments}")
    chosen = tuple(segments[:max_segments])
    objects = segment_rows(chosen, points, colors, class_names, floor_z=floor_z)
    if not chosen:
        return SegmentFeatures(chosen, objects, np.zeros((0, 0, PAIR_FEATURES), np.float32),
                               np.zeros((0, COLOUR_FEATURES), np.float32))
    classes = len(class_names)
    centers = np.array([segment.center for segment in chosen])
    sizes = np.array([segment.size for segment in chosen])
    return SegmentFeatures(chosen, objects, pair_features(centers, sizes),
                           relative_colours(objects[:, classes:classes + 3], colors))


def segment_rows(segments: tuple[ObjectProposal, ...] | list[ObjectProposal],
                 points: np.ndarray, colors: np.ndarray, class_names: tuple[str, ...], *,
                 floor_z: float) -> np.ndarray:
    """float32 (S, len(class_names) + SEGMENT_GEOMETRY_FEATURES): each segment's one-hot
    class, colour, place, size, mass and height (:attr:`SegmentFeatures.objects`).

    Takes :func:`segment_features`' inputs (all of ``segments`` are described).

    :raises GroundingInputError: (a ``ValueError``) on mismatched inputs or a segment label
        outside ``class_names``.
    """
    points = np.asarray(points, np.float64)
    colors = np.asarray(colors)
    if points.ndim != 2 or points.shape[1:] != (3,) or colors.shape != points.shape:
        raise GroundingInputError(f"need (N, 3) points and colours, got {points.shape} and "
                                  f"{colors.shape}")
    index = {name: i for i, name in enumerate(class_names)}
    classes = len(class_names)
    objects = np.zeros((len(segments), classes + SEGMENT_GEOMETRY_FEATURES), np.float32)
    if not len(segments):
        return objects
    room_middle = (points.min(axis=0) + points.max(axis=0)) / 2.0
    origin = np.array([room_middle[0], room_middle[1], floor_z])
    for row, segment in enumerate(segments):
        if segment.label not in index:
            raise GroundingInputError(f"segment class {segment.label!r} is not one of "
                                      f"{list(class_names)}")
        objects[row, index[segment.label]] = 1.0
        rgb = colors[segment.indices].astype(np.float64) / 255.0
        geometry = objects[row, classes:]
        geometry[0:3] = rgb.mean(axis=0)
        geometry[3:COLOUR_STATISTICS] = rgb.std(axis=0)
        geometry[CENTRE] = segment.center - origin
        geometry[LOG_SIZES] = np.log(segment.size + _SIZE_FLOOR_M)
        geometry[12] = np.log(len(segment.indices))
        geometry[13] = segment.center[2] - segment.size[2] / 2.0 - floor_z
    return objects


def relative_colours(means: np.ndarray, room_colors: np.ndarray) -> np.ndarray:
    """float32 (S, COLOUR_FEATURES) of segments' (S, 3) mean RGB (0..1) against the room's
    uint8 (N, 3) colours: the log ratio to the room's mean per channel (grey-world colour
    constancy) and the log ratio of brightness to the room's median.

    Fused colours carry each room's exposure, lamp tint and shading: a white cushion in a
    dim room is as bright as a grey one in a lit room, but not against its own walls.
    """
    room = np.asarray(room_colors, np.float64) / 255.0
    means = np.asarray(means, np.float64)
    channel = np.log((means + _COLOUR_FLOOR) / (room.mean(axis=0) + _COLOUR_FLOOR))
    brightness = np.log((means.mean(axis=1, keepdims=True) + _COLOUR_FLOOR)
                        / (np.median(room.mean(axis=1)) + _COLOUR_FLOOR))
    return np.concatenate([channel, brightness], axis=1).astype(np.float32)


def room_context(centers: np.ndarray, sizes: np.ndarray, room_low: np.ndarray,
                 room_high: np.ndarray) -> np.ndarray:
    """float32 (S, ROOM_CONTEXT_FEATURES) gaps between (S, 3) boxes and the room's bounds
    (the fused surface's lowest and highest corner)."""
    centers, sizes = np.asarray(centers, np.float64), np.asarray(sizes, np.float64)
    return np.concatenate([centers - sizes / 2.0 - room_low, room_high - centers - sizes / 2.0],
                          axis=-1).astype(np.float32)


def pair_features(centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """float32 (S, S, PAIR_FEATURES) of boxes given by (S, 3) centres and full sizes."""
    offset = centers[None, :, :] - centers[:, None, :]  # [i, j] = j - i
    half_extents = (sizes[None, :, :2] + sizes[:, None, :2]) / 2.0
    gap = np.maximum(np.abs(offset[..., :2]) - half_extents, 0.0)
    ratio = np.log((sizes[None, :, :] + _SIZE_FLOOR_M) / (sizes[:, None, :] + _SIZE_FLOOR_M))
    distance = np.linalg.norm(offset[..., :2], axis=-1, keepdims=True)
    return np.concatenate([offset, distance, gap, ratio], axis=-1).astype(np.float32)


def quarter_turned(objects: np.ndarray, pairs: np.ndarray, class_count: int,
                   turns: int) -> tuple[np.ndarray, np.ndarray]:
    """:attr:`SegmentFeatures.objects` and ``pairs`` of the same room turned by ``turns``
    quarter turns about +Z (anticlockwise seen from above).

    Every relation a description states survives the turn (closest, next to, left of the
    bed as you face it, in the corner), which makes turned rooms free training examples; a
    mirror image would not (left and right swap). Axis-aligned boxes stay axis-aligned.

    :param objects: float (..., S, class_count + SEGMENT_GEOMETRY_FEATURES).
    :param pairs: float (..., S, S, PAIR_FEATURES).
    :return: turned copies; the inputs themselves when the turns add up to whole turns
        (batches of unturned rooms copy nothing here).
    """
    if turns % 4 == 0:
        return objects, pairs
    objects, pairs = objects.copy(), pairs.copy()
    geometry = objects[..., class_count:]
    for _ in range(turns % 4):
        for xy in (geometry[..., CENTRE][..., :2], pairs[..., _PAIR_OFFSET][..., :2]):
            xy[...] = np.stack([-xy[..., 1], xy[..., 0]], axis=-1)
        for sizes in (geometry[..., LOG_SIZES], pairs[..., _PAIR_GAPS],
                      pairs[..., _PAIR_SIZE_RATIOS]):
            sizes[..., :2] = sizes[..., 1::-1].copy()
    return objects, pairs
