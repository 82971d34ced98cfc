"""The training mixture of a split: scenes, their objects and the weighted instruction samples."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.model import GROUND_TOKEN, POINT_TOKEN
from scene_llm_ros.model.configuration_scene_llm import DEFAULT_SYSTEM_PROMPT
from scene_llm_ros.model.processing_scene_llm import TASK_INSTRUCTIONS
from training import templates
from training.config import DataConfig
from training.errors import EmptyDatasetError
from training.examples import BUILDERS, InstructionSample, Objects, record_scene_id
from training.objects import load_scene_objects
from training.sources import read_source, split_scene_ids

logger = logging.getLogger(__name__)


@dataclass
class SplitScenes:
    """The scenes of a split that exist on disk, with their objects loaded on demand.

    :ivar scene_dirs: scene id -> ``<root>/scans/<scene_id>``.
    """

    scene_dirs: dict[str, Path]
    _objects: dict[str, Objects] = field(default_factory=dict)

    @classmethod
    def discover(cls, root: str | Path, split: str) -> SplitScenes:
        """Scenes of ``meta/scannetv2_{split}.txt`` under ``<root>/scans`` (all when unlisted).

        :raises DataFormatError: when ``<root>/scans`` does not exist or none is present.
        """
        scans = Path(root) / "scans"
        if not scans.is_dir():
            raise DataFormatError(f"{root} has no scans/ folder (expected the ScanNet layout "
                                  f"<root>/scans/<scene_id>/)")
        present = {d.name: d for d in sorted(scans.iterdir()) if d.is_dir()}
        listed = split_scene_ids(root, split)
        if listed is None:
            logger.warning("%s: no meta/scannetv2_%s.txt; using every scene in scans/",
                           root, split)
            listed = list(present)
        missing = [sid for sid in listed if sid not in present]
        if missing:
            logger.warning("%d %s scenes are not under %s, e.g. %s", len(missing), split, scans,
                           missing[:3])
        dirs = {sid: present[sid] for sid in listed if sid in present}
        if not dirs:
            raise DataFormatError(f"none of the {len(listed)} {split} scenes is under {scans}")
        return cls(dirs)

    def objects(self, scene_id: str) -> Objects:
        """The scene's objects by id (loaded once)."""
        if scene_id not in self._objects:
            self._objects[scene_id] = load_scene_objects(self.scene_dirs[scene_id])
        return self._objects[scene_id]


def _source_records(data: DataConfig, source: str, scenes: SplitScenes) -> list:
    if source == "scene_caption":
        records = list(scenes.scene_dirs)
    else:
        records = [r for r in read_source(data.annotations_path, source, data.split)
                   if r.scene_id in scenes.scene_dirs]
    if data.max_examples_per_source is not None:
        records = records[:data.max_examples_per_source]
    return records


def build_samples(data: DataConfig, scenes: SplitScenes, *, seed: int
                  ) -> tuple[list[InstructionSample], dict[str, int]]:
    """The weighted mixture of every configured source.

    A source of N records with weight w gives ``max(1, round(w * N))`` samples, cycling
    through its records; each repeat draws its phrasing from ``(seed, source, record,
    repeat)``.

    :return: the samples (sources in config order) and the sample count per source.
    :raises DataFormatError: when an annotation file is missing or malformed.
    :raises EmptyDatasetError: when no sample could be built.
    """
    samples: list[InstructionSample] = []
    counts: Counter = Counter()
    for source, weight in data.sources.items():
        records = _source_records(data, source, scenes)
        if not records:
            logger.warning("source %s has no records in the %s scenes", source, data.split)
            continue
        built = [BUILDERS[source](record, scenes.objects(record_scene_id(record)), None)
                 for record in records]
        usable = [i for i, sample in enumerate(built) if sample is not None]
        if len(usable) < len(records):
            logger.warning("source %s: %d of %d records refer to objects not in their scene; "
                           "skipped", source, len(records) - len(usable), len(records))
        for j in range(max(1, round(weight * len(usable))) if usable else 0):
            index, repeat = usable[j % len(usable)], j // len(usable)
            record = records[index]
            sample = BUILDERS[source](record, scenes.objects(record_scene_id(record)),
                                      f"{seed}:{source}:{index}:{repeat}")
            samples.append(InstructionSample(**{**sample.__dict__,
                                                "sample_id": f"{sample.sample_id}#{repeat}"}))
            counts[source] += 1
    if not samples:
        raise EmptyDatasetError(f"sources {sorted(data.sources)} gave no example for split "
                                f"{data.split!r} of {data.root}")
    return samples, dict(counts)


def corpus_texts(samples: list[InstructionSample]) -> list[str]:
    """Text a fresh tokenizer is trained on: the samples, every phrasing and the prompt."""
    texts = [DEFAULT_SYSTEM_PROMPT, *TASK_INSTRUCTIONS.values(), "Marked points:",
             "Situation:", "Question:", templates.NO_OBJECT_ANSWER]
    for phrasings in (templates.QA_PHRASINGS, templates.GROUND_PHRASINGS,
                      templates.MULTI_GROUND_PHRASINGS, templates.CAPTION_PHRASINGS,
                      templates.SCENE_PHRASINGS):
        texts.extend(p.replace("{question}", "").replace("{description}", "")
                     .replace(POINT_TOKEN, "") for p in phrasings)
    for sample in samples:
        texts.extend([sample.question, sample.answer.replace(f" {GROUND_TOKEN}", "")])
        if sample.situation:
            texts.append(sample.situation)
    return texts


class InstructionDataset(Dataset):
    """Samples by index, for ``DistributedSampler``; encoding happens in the trainer."""

    def __init__(self, samples: list[InstructionSample]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> InstructionSample:
        return self.samples[index]
