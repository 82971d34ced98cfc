"""One synthetic scene in memory: room, objects, mesh, posed RGB-D frames and annotations."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from scene_llm_ros.data.scannet import SegGroup
from scene_llm_ros.data.synth.annotate import SceneAnnotations, annotate
from scene_llm_ros.data.synth.assembly import SceneMesh, SynthObject, assemble
from scene_llm_ros.data.synth.config import SynthConfig
from scene_llm_ros.data.synth.layout import furnish
from scene_llm_ros.data.synth.relations import SceneFacts
from scene_llm_ros.data.synth.render import Renderer, random_lighting
from scene_llm_ros.data.synth.room import ROOM_SIZES, Room, make_room
from scene_llm_ros.data.synth.situated import situated_questions
from scene_llm_ros.data.synth.trajectory import camera_poses
from scene_llm_ros.data.types import CameraIntrinsics, RGBDFrame

_LOG = logging.getLogger(__name__)

ROOM_TYPES = tuple(sorted(ROOM_SIZES))
# First stamp of every sequence (2023-11-14T22:13:20Z); scenes differ by their seed below it.
_BASE_STAMP_S = 1_700_000_000


@dataclass
class SynthScene:
    """A generated scene.

    :ivar objects: ground truth; ``objects[i].object_id == i``; furniture first, then the
        floor, the walls and the ceiling (``structure=True``).
    :ivar frames: posed RGB-D frames (camera optical frame -> world poses, +Z up).
    """

    scene_id: str
    seed: int
    room: Room
    objects: list[SynthObject]
    mesh: SceneMesh
    intrinsics: CameraIntrinsics
    frames: list[RGBDFrame]
    annotations: SceneAnnotations
    path_length_m: float

    @property
    def furniture(self) -> list[SynthObject]:
        """Objects other than the floor, walls and ceiling."""
        return [o for o in self.objects if not o.structure]

    def seg_groups(self) -> list[SegGroup]:
        """Aggregation groups: one per object, segments sorted, raw ScanNet labels."""
        return [SegGroup(o.object_id, o.object_id, list(o.segments), o.label)
                for o in self.objects]


def scene_number(scene_id: str) -> int:
    """9000 for ``scene9000_00``."""
    return int(scene_id[5:9])


def generate_scene(seed: int, scene_id: str, config: SynthConfig | None = None) -> SynthScene:
    """Generate one scene from ``seed`` (same seed and config give identical arrays).

    Independent random streams drive the layout, the colours, the walk, the rendering and the
    text, so changing e.g. the frame count leaves the furniture and annotations unchanged.

    :param seed: non-negative integer.
    :param scene_id: ScanNet-style id written into annotations (``scene9000_00``...).
    :param config: generator settings (defaults: :class:`SynthConfig`).
    :raises TrajectoryError: when no camera path fits in the room (does not happen with the
        built-in room recipes, which keep the door area and room centre walkable).
    """
    config = config or SynthConfig()
    streams = np.random.SeedSequence(int(seed)).spawn(5)
    layout_rng, color_rng, walk_rng, render_rng, text_rng = (np.random.default_rng(s)
                                                             for s in streams)
    room = make_room(ROOM_TYPES[int(layout_rng.integers(len(ROOM_TYPES)))], layout_rng)
    placements = furnish(room, layout_rng)
    mesh, objects = assemble(room, placements, color_rng, ceiling=config.ceiling)
    frames: list[RGBDFrame] = []
    length = 0.0
    if config.num_frames > 0:
        poses, length = camera_poses(room, placements, config.num_frames, walk_rng)
        # Kept frames are a regular subsample of a 30 Hz stream at walking speed.
        step = max(1, int(round(length / config.walking_speed_mps * config.fps
                                / max(config.num_frames - 1, 1))))
        period_ns = 1e9 / config.fps
        base_ns = (_BASE_STAMP_S + int(seed) % 100_000) * 1_000_000_000
        stamps = [base_ns + int(round(i * step * period_ns)) for i in range(config.num_frames)]
        lamp = np.array([*room.centroid, room.height - 0.05])
        renderer = Renderer(mesh, config, random_lighting(render_rng, lamp))
        frames = renderer.render(poses, stamps, render_rng)
    facts = SceneFacts(room, objects)
    sqa = situated_questions(scene_id, facts, text_rng,
                             first_question_id=scene_number(scene_id) * 1000)
    annotations = annotate(scene_id, facts, text_rng, sqa3d=sqa)
    _LOG.debug("%s: %s with %d objects, %d vertices, %d frames", scene_id, room.room_type,
               len(placements), len(mesh.vertices), len(frames))
    return SynthScene(scene_id, int(seed), room, objects, mesh, config.intrinsics, frames,
                      annotations, length)
