"""Synthetic dataset on disk: readable by the ScanNet and annotation readers, reproducible."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scene_llm_ros.cli import main
from scene_llm_ros.data import annotations as ann
from scene_llm_ros.data.scannet import LabelMap, load_scene, read_exported_frames, read_sens
from scene_llm_ros.data.synth import SynthConfig, generate_scene, split_scenes, write_dataset

TINY = SynthConfig(width=64, height=48, num_frames=5)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = write_dataset(out, TINY, scenes=3, seed=11)
    return out, summary


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_layout_and_splits(dataset):
    out, summary = dataset
    ids = sorted(p.name for p in (out / "scans").iterdir())
    assert ids == ["scene9000_00", "scene9001_00", "scene9002_00"]
    listed = []
    for split in ("train", "val", "test"):
        lines = (out / "meta" / f"scannetv2_{split}.txt").read_text().split()
        assert lines == summary["splits"][split]
        listed += lines
    assert sorted(listed) == ids
    for name in ("ScanRefer_filtered_train.json", "ScanQA_v1.0_val.json", "Scan2Cap_test.json",
                 "multi3drefer_train.json", "v1_balanced_questions_val_scannetv2.json",
                 "v1_balanced_sqa_annotations_test_scannetv2.json"):
        assert (out / "annotations" / name).is_file()


def test_scenes_load_back_with_matching_ground_truth(dataset):
    out, _ = dataset
    label_map = LabelMap.from_tsv(out / "meta" / "scannetv2-labels.combined.tsv")
    for scene_dir in sorted((out / "scans").iterdir()):
        sid = scene_dir.name
        truth = json.loads((scene_dir / f"{sid}_objects.json").read_text())
        loaded = load_scene(scene_dir, label_map=label_map)
        furniture = [o for o in truth["objects"] if not o["structure"]]
        assert [i.object_id for i in loaded.instances] == [o["object_id"] for o in furniture]
        for inst, obj in zip(loaded.instances, furniture, strict=False):
            assert inst.label == obj["label"]
            assert inst.nyu40_id == obj["nyu40_id"]
            np.testing.assert_allclose(inst.box_min, obj["box_min"], atol=1e-4)
            np.testing.assert_allclose(inst.box_max, obj["box_max"], atol=1e-4)
        assert loaded.mesh.labels is not None and loaded.meta.depth_width == 64
        frames = list(read_exported_frames(scene_dir / "frames"))
        assert len(frames) == 5
        sens = read_sens(scene_dir / f"{sid}.sens")
        assert sens is not None


def test_annotation_files_read_back(dataset):
    out, summary = dataset
    root = out / "annotations"
    total = 0
    for split in ("train", "val", "test"):
        refer = ann.read_scanrefer(root / f"ScanRefer_filtered_{split}.json")
        qa = ann.read_scanqa(root / f"ScanQA_v1.0_{split}.json")
        m3d = ann.read_multi3drefer(root / f"multi3drefer_{split}.json")
        sqa = ann.read_sqa3d(root / f"v1_balanced_questions_{split}_scannetv2.json",
                             root / f"v1_balanced_sqa_annotations_{split}_scannetv2.json")
        assert {r.scene_id for r in refer + qa + m3d + sqa} <= set(summary["splits"][split])
        assert all(q.question_id.startswith(f"{split}-scene9") for q in qa)
        total += len(refer) + len(qa) + len(m3d) + len(sqa)
    assert total == sum(v for k, v in summary["annotations"].items() if k != "scan2cap")


def test_same_seed_gives_identical_bytes(tmp_path):
    config = SynthConfig(width=32, height=24, num_frames=3)
    write_dataset(tmp_path / "a", config, scenes=2, seed=4)
    write_dataset(tmp_path / "b", config, scenes=2, seed=4)
    write_dataset(tmp_path / "c", config, scenes=2, seed=5)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    assert a["scans/scene9000_00/scene9000_00_vh_clean_2.ply"] != \
        c["scans/scene9000_00/scene9000_00_vh_clean_2.ply"]


def test_frame_count_does_not_change_the_scene():
    a = generate_scene(2, "scene9002_00", SynthConfig(num_frames=0))
    b = generate_scene(2, "scene9002_00", SynthConfig(width=32, height=24, num_frames=2))
    assert np.array_equal(a.mesh.vertices, b.mesh.vertices)
    assert [r.question for r in a.annotations.scanqa] == [r.question for r in b.annotations.scanqa]


def test_split_ratios():
    ids = [f"scene{9000 + i}_00" for i in range(20)]
    splits = split_scenes(ids, (0.8, 0.1, 0.1), 0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    assert split_scenes(ids, (0.8, 0.1, 0.1), 0) == splits


def test_cli_synth_two_tiny_scenes(tmp_path):
    out = tmp_path / "cli"
    status = main(["synth", "--out", str(out), "--scenes", "2", "--seed", "1", "--frames", "3",
                   "--width", "32", "--height", "24", "--no-sens", "--no-noise",
                   "--split-ratios", "0.5,0.5,0"])
    assert status == 0
    assert sorted(p.name for p in (out / "scans").iterdir()) == ["scene9000_00", "scene9001_00"]
    assert not list(out.rglob("*.sens"))
    assert len(list((out / "scans" / "scene9000_00" / "frames" / "depth").iterdir())) == 3
    assert (out / "meta" / "scannetv2_val.txt").read_text().strip()


def test_cli_rejects_bad_ratios(tmp_path):
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(tmp_path), "--scenes", "1", "--split-ratios", "0.5,0.5"])
    assert main(["synth", "--out", str(tmp_path), "--scenes", "1",
                 "--split-ratios", "0.5,0.2,0.2"]) == 1
