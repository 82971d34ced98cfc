"""Writing synthetic scenes to disk in the ScanNet layout with splits and annotation files."""
from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scene_llm_ros.data import annotations as ann
from scene_llm_ros.data.scannet import (
    ScanNetMesh,
    SceneMeta,
    write_aggregation,
    write_exported_frames,
    write_mesh,
    write_meta,
    write_segs,
    write_sens,
    write_tsv,
)
from scene_llm_ros.data.synth.annotate import SceneAnnotations
from scene_llm_ros.data.synth.config import SynthConfig
from scene_llm_ros.data.synth.labels import label_rows
from scene_llm_ros.data.synth.scene import SynthScene, generate_scene

_LOG = logging.getLogger(__name__)

FIRST_SCENE_NUMBER = 9000  # real ScanNet ids stop at scene0806: no collisions
SPLITS = ("train", "val", "test")


def scene_ids(count: int) -> list[str]:
    """``scene9000_00``, ``scene9001_00``... for ``count`` scenes."""
    return [f"scene{FIRST_SCENE_NUMBER + i:04d}_00" for i in range(count)]


def scene_seeds(seed: int, count: int) -> list[int]:
    """Independent per-scene seeds derived from the dataset ``seed``."""
    return [int(s.generate_state(1, np.uint32)[0]) for s in
            np.random.SeedSequence(int(seed)).spawn(count)]


def split_scenes(ids: list[str], ratios: tuple[float, float, float],
                 seed: int) -> dict[str, list[str]]:
    """Shuffle ``ids`` with ``seed`` and cut them into train / val / test by ``ratios``.

    With three or more scenes every split with a positive ratio gets at least one scene.
    """
    order = [ids[i] for i in np.random.default_rng(int(seed)).permutation(len(ids))]
    n = len(ids)
    n_val, n_test = (int(round(n * r)) for r in ratios[1:])
    if n >= 3:
        n_val, n_test = max(n_val, int(ratios[1] > 0)), max(n_test, int(ratios[2] > 0))
    n_val, n_test = min(n_val, n), min(n_test, max(0, n - n_val))
    n_train = n - n_val - n_test
    return {"train": sorted(order[:n_train]), "val": sorted(order[n_train:n_train + n_val]),
            "test": sorted(order[n_train + n_val:])}


def write_scene(scene: SynthScene, scene_dir: str | Path, config: SynthConfig) -> None:
    """Write one scene's ScanNet files (mesh, labels, segments, aggregation, meta, frames).

    :param scene_dir: ``<out>/scans/<scene_id>``; created if missing.
    """
    scene_dir = Path(scene_dir)
    scene_dir.mkdir(parents=True, exist_ok=True)
    sid = scene.scene_id
    m = scene.mesh
    write_mesh(scene_dir / f"{sid}_vh_clean_2.ply", ScanNetMesh(m.vertices, m.colors, m.faces))
    write_mesh(scene_dir / f"{sid}_vh_clean_2.labels.ply",
               ScanNetMesh(m.vertices, m.colors, m.faces, m.labels))
    segs_name = f"{sid}_vh_clean_2.0.010000.segs.json"
    write_segs(scene_dir / segs_name, m.segments, scene_id=sid)
    write_aggregation(scene_dir / f"{sid}.aggregation.json", scene.seg_groups(), scene_id=sid,
                      segs_file=segs_name)
    k = scene.intrinsics
    n = len(scene.frames)
    write_meta(scene_dir / f"{sid}.txt", SceneMeta(
        axis_alignment=np.eye(4), color_width=k.width, color_height=k.height,
        depth_width=k.width, depth_height=k.height, color_intrinsics=k, depth_intrinsics=k,
        num_color_frames=n, num_depth_frames=n,
        extra={"sceneType": scene.room.room_type.title().replace(" ", "")}))
    if n:
        write_exported_frames(scene_dir / "frames", scene.frames,
                              jpeg_quality=config.jpeg_quality)
        if config.write_sens:
            write_sens(scene_dir / f"{sid}.sens", scene.frames,
                       sensor_name="scene_llm_ros synthetic", jpeg_quality=config.jpeg_quality)
    truth = {"scene_id": sid, "seed": scene.seed, "room_type": scene.room.room_type,
             "room_polygon": scene.room.polygon.round(4).tolist(),
             "room_height": scene.room.height,
             "objects": [o.to_json() for o in scene.objects]}
    (scene_dir / f"{sid}_objects.json").write_text(json.dumps(truth, indent=1, sort_keys=True),
                                                   encoding="utf-8")


def _with_split(records: list[ann.ScanQARecord], split: str) -> list[ann.ScanQARecord]:
    return [dataclasses.replace(r, question_id=f"{split}-{r.question_id}") for r in records]


def write_annotations(out_dir: str | Path, per_split: dict[str, list[SceneAnnotations]]) -> None:
    """Write every annotation file of every split under ``<out>/annotations``."""
    root = Path(out_dir) / "annotations"
    root.mkdir(parents=True, exist_ok=True)
    for split, items in per_split.items():
        ann.write_scanrefer(root / f"ScanRefer_filtered_{split}.json",
                            [r for a in items for r in a.scanrefer])
        ann.write_scan2cap(root / f"Scan2Cap_{split}.json", [r for a in items for r in a.scan2cap])
        ann.write_scanqa(root / f"ScanQA_v1.0_{split}.json",
                         _with_split([r for a in items for r in a.scanqa], split))
        ann.write_multi3drefer(root / f"multi3drefer_{split}.json",
                               [r for a in items for r in a.multi3drefer])
        ann.write_sqa3d(root / f"v1_balanced_questions_{split}_scannetv2.json",
                        root / f"v1_balanced_sqa_annotations_{split}_scannetv2.json",
                        [r for a in items for r in a.sqa3d])


def write_dataset(out_dir: str | Path, config: SynthConfig | None = None, *, scenes: int,
                  seed: int, progress: Callable[[str], None] | None = None) -> dict:
    """Generate ``scenes`` scenes from ``seed`` and write them in the ScanNet layout.

    Layout: ``<out>/scans/<scene_id>/`` (ScanNet files, ``frames/``, ``.sens``,
    ``_objects.json``), ``<out>/meta/`` (label map, ``scannetv2_{split}.txt``),
    ``<out>/annotations/`` (ScanRefer, Scan2Cap, ScanQA, SQA3D, Multi3DRefer per split).

    :param progress: called with each scene id once that scene is written.
    :return: summary: scene ids per split and annotation counts per type.
    """
    config = config or SynthConfig()
    out = Path(out_dir)
    ids = scene_ids(scenes)
    splits = split_scenes(ids, config.split_ratios, seed)
    split_of = {sid: split for split, members in splits.items() for sid in members}
    per_split: dict[str, list[SceneAnnotations]] = {s: [] for s in SPLITS}
    label_counts: Counter = Counter()
    totals: Counter = Counter()
    for sid, scene_seed in zip(ids, scene_seeds(seed, scenes), strict=False):
        scene = generate_scene(scene_seed, sid, config)
        write_scene(scene, out / "scans" / sid, config)
        per_split[split_of[sid]].append(scene.annotations)
        label_counts.update(o.label for o in scene.objects)
        totals.update(scene.annotations.counts())
        if progress is not None:
            progress(sid)
    meta = out / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    write_tsv(meta / "scannetv2-labels.combined.tsv", label_rows(dict(label_counts)))
    for split in SPLITS:
        text = "".join(f"{sid}\n" for sid in splits[split])
        (meta / f"scannetv2_{split}.txt").write_text(text, encoding="utf-8")
    write_annotations(out, per_split)
    summary = {"splits": splits, "annotations": dict(sorted(totals.items())),
               "labels": dict(sorted(label_counts.items()))}
    _LOG.info("wrote %d scenes to %s: %s", scenes, out, summary["annotations"])
    return summary
