"""The object segments of a split's fused scenes, as the side stages (segment listener,
segment answerer) learn from them, and their padded batches.

Segments are computed from the cached fused scene exactly as the inference node computes them
(:class:`~scene_llm_ros.grounding.SnapshotGrounder`), so what a stage learns holds online.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from scene_llm_ros.geometry.boxes import pairwise_box_iou
from scene_llm_ros.grounding import SnapshotGrounder
from scene_llm_ros.grounding.segment_features import (
    COLOUR_FEATURES,
    PAIR_FEATURES,
    SegmentFeatures,
    quarter_turned,
)
from scene_llm_ros.model import SceneLlm
from training.checkpoints import TRAINING_JSON, fusion_settings
from training.dataset import SplitScenes
from training.errors import TrainingConfigError
from training.objects import ObjectBox
from training.scene_cache import FrameSelection, SceneTokenCache


def checkpoint_scene_cache(model: SceneLlm, checkpoint_dir: Path, root: str,
                           cache_dir: str | None) -> SceneTokenCache:
    """The scene cache of a dataset fused the way the checkpoint's model was trained
    (default ``<root>/scene_token_cache``, shared with the LLM stages and eval-offline).

    :raises TrainingConfigError: when the checkpoint has no ``training.json``.
    """
    settings = fusion_settings(checkpoint_dir)
    if settings is None:
        raise TrainingConfigError(f"{checkpoint_dir} has no {TRAINING_JSON}: a side stage "
                                  "must see the scenes the way the model was trained on them")
    fusion, frames = settings
    return SceneTokenCache(Path(cache_dir) if cache_dir else Path(root) / "scene_token_cache",
                           encoder=model.patch_encoder, fusion=fusion,
                           frames=FrameSelection(int(frames.get("every_nth", 1)),
                                                 frames.get("max_frames")))


class SceneSegments:
    """Segment features of the scenes of one split that have any.

    :param scenes: the split's scenes.
    :param cache: the fused scenes.
    :param scene_ids: which scenes to describe.
    :param max_segments: the largest segments kept per scene.
    :param split: named in the progress bar.
    """

    def __init__(self, scenes: SplitScenes, cache: SceneTokenCache, scene_ids: list[str], *,
                 max_segments: int, split: str) -> None:
        self.features: dict[str, SegmentFeatures] = {}
        #: float32 (S, ...) what a box completer reads of each segment, per scene.
        self.completion_inputs: dict[str, np.ndarray] = {}
        #: The semantic map's classes (the segments' one-hot order).
        self.class_names: tuple[str, ...] = ()
        for scene_id in tqdm(scene_ids, desc=f"segments ({split})", unit="scene"):
            snapshot = cache.get(scenes.scene_dirs[scene_id])
            if not len(snapshot.points) or snapshot.point_classes is None:
                continue
            grounder = SnapshotGrounder(snapshot)
            features = grounder.segment_features(max_segments)
            if len(features.segments):
                self.features[scene_id] = features
                self.completion_inputs[scene_id] = grounder.completion_inputs(
                    list(features.segments))
                self.class_names = snapshot.class_names

    def ious(self, scene_id: str, box: ObjectBox) -> np.ndarray:
        """float64 (S,) IoU of each segment's box with an annotated box (thresholds compare
        these, not a float32 copy, so an item at the threshold stays where it was)."""
        segments = self.features[scene_id].segments
        return pairwise_box_iou(box.center[None], box.size[None],
                                np.array([s.center for s in segments]),
                                np.array([s.size for s in segments]))[0]

    def collate(self, scene_ids: list[str], questions: list[tuple[int, ...]],
                quarter_turns: list[int] | None = None) -> tuple[torch.Tensor, ...]:
        """:func:`collate_segments` of these scenes."""
        return collate_segments([self.features[s] for s in scene_ids], len(self.class_names),
                                questions, quarter_turns)


def collate_segments(scenes: list[SegmentFeatures], class_count: int,
                     questions: list[tuple[int, ...]], quarter_turns: list[int] | None = None
                     ) -> tuple[torch.Tensor, ...]:
    """Padded (question ids, segments, pairs, segment mask, relative colours) of a batch of
    scenes' segments (labelled with ``class_count`` classes); question ids are padded with
    -1. Scene ``i`` is turned by ``quarter_turns[i]`` quarter turns (:func:`quarter_turned`)
    when given."""
    count = max(len(scene.segments) for scene in scenes)
    length = max(len(q) for q in questions)
    width = scenes[0].objects.shape[1]
    ids = np.full((len(scenes), length), -1, np.int64)
    segments = np.zeros((len(scenes), count, width), np.float32)
    pairs = np.zeros((len(scenes), count, count, PAIR_FEATURES), np.float32)
    mask = np.zeros((len(scenes), count), bool)
    colours = np.zeros((len(scenes), count, COLOUR_FEATURES), np.float32)
    for row, (scene, question) in enumerate(zip(scenes, questions, strict=True)):
        n = len(scene.segments)
        ids[row, :len(question)] = question
        segments[row, :n], pairs[row, :n, :n] = quarter_turned(
            scene.objects, scene.pairs, class_count, quarter_turns[row] if quarter_turns else 0)
        mask[row, :n] = True
        colours[row, :n] = scene.colours
    return tuple(torch.from_numpy(a) for a in (ids, segments, pairs, mask, colours))
