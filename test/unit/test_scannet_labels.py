"""Tests of the ScanNet label map and of scene loading (instances and boxes) on scene0000_00."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from scene_llm_ros.data.scannet import (
    BENCHMARK_CLASSES,
    BENCHMARK_NYU40_IDS,
    TSV_COLUMNS,
    LabelMap,
    find_scene_files,
    load_scene,
    read_mesh,
    write_meta,
    write_tsv,
)
from scene_llm_ros.data.scannet.meta import read_meta
from scene_llm_ros.errors import DataFormatError

SCENE = "scene0000_00"


@pytest.fixture(scope="module")
def tsv_path(shared_data):
    return shared_data / "scannet" / "meta" / "scannetv2-labels.combined.tsv"


@pytest.fixture(scope="module")
def label_map(tsv_path):
    return LabelMap.from_tsv(tsv_path)


def test_benchmark_classes_are_the_official_18():
    assert len(BENCHMARK_CLASSES) == 18
    assert BENCHMARK_CLASSES[:3] == ("cabinet", "bed", "chair")
    assert BENCHMARK_CLASSES[-1] == "otherfurniture"
    assert dict(zip(BENCHMARK_CLASSES, BENCHMARK_NYU40_IDS, strict=True))["refrigerator"] == 24
    assert dict(zip(BENCHMARK_CLASSES, BENCHMARK_NYU40_IDS, strict=True))["shower curtain"] == 28


def test_real_tsv_lookups(label_map):
    assert len(label_map) == 607
    assert label_map.raw_to_nyu40("chair") == (5, "chair")
    assert label_map.benchmark_class("chair") == "chair"
    assert label_map.raw_to_nyu40("refrigerator")[0] == 24
    assert label_map.benchmark_class("refrigerator") == "refrigerator"
    assert label_map.benchmark_class("mini fridge") == "refrigerator"
    assert label_map.raw_to_nyu40("couch") == (6, "sofa")
    assert label_map.benchmark_class("couch") == "sofa"
    assert label_map.benchmark_class("tv") is None  # NYU40 25 television is not benchmarked
    assert label_map.raw_to_nyu40("books") == (23, "books")


def test_v1_labels_are_normalised(label_map):
    assert label_map.normalize("trashcan") == "trash can"
    assert label_map.raw_to_nyu40("trashcan") == (39, "otherfurniture")
    assert label_map.benchmark_class("trashcan") == "otherfurniture"
    assert label_map.normalize("dishrack") == "dish rack"
    assert label_map.normalize("Kitchen Cabinet") == "kitchen cabinet"
    assert label_map.normalize("trash_can") == "trash can"


def test_unknown_label_is_none_and_logged_once(label_map, caplog):
    with caplog.at_level(logging.WARNING):
        assert label_map.raw_to_nyu40("flux capacitor") is None
        assert label_map.benchmark_class("flux capacitor") is None
    assert sum("flux capacitor" in r.getMessage() for r in caplog.records) == 1


def test_benchmark_class_follows_nyu40_id_not_spelling(tmp_path):
    path = tmp_path / "labels.tsv"
    write_tsv(path, [{"raw_category": "fridge", "nyu40id": 24, "nyu40class": "refridgerator"},
                     {"raw_category": "widget", "nyu40id": 40, "nyu40class": "otherprop",
                      "count": 3}])
    labels = LabelMap.from_tsv(path)
    assert labels.raw_to_nyu40("fridge") == (24, "refridgerator")
    assert labels.benchmark_class("fridge") == "refrigerator"
    assert labels.row("widget")["id"] == "2" and labels.row("widget")["category"] == "widget"


def test_write_tsv_reproduces_the_real_file(label_map, tsv_path, tmp_path):
    out = tmp_path / "copy.tsv"
    write_tsv(out, label_map.rows)
    assert out.read_bytes() == tsv_path.read_bytes()
    assert tsv_path.read_text().splitlines()[0].split("\t") == list(TSV_COLUMNS)


def test_write_tsv_rejects_bad_rows(tmp_path):
    with pytest.raises(ValueError, match="nyu40id"):
        write_tsv(tmp_path / "x.tsv", [{"raw_category": "a"}])
    with pytest.raises(ValueError, match="colour"):
        write_tsv(tmp_path / "x.tsv", [{"raw_category": "a", "nyu40id": 1, "colour": "red"}])
    bad = tmp_path / "bad.tsv"
    bad.write_text("raw_category\tnyu40id\r\nchair\tfive\r\n")
    with pytest.raises(DataFormatError, match=r"bad\.tsv.*'five'"):
        LabelMap.from_tsv(bad)


@pytest.fixture(scope="module")
def scene(shared_data):
    return load_scene(shared_data / "scannet" / SCENE)


def test_load_real_scene_instances(scene):
    assert scene.scene_id == SCENE
    assert scene.axis_alignment is None and scene.meta.axis_alignment is None
    assert len(scene.mesh.vertices) == len(scene.seg_indices) == 81369
    assert len(scene.groups) == 55
    # 9 walls and 1 floor are excluded as ScanRefer does; no ceiling is annotated.
    assert len(scene.instances) == 45
    assert not {i.label for i in scene.instances} & {"wall", "floor", "ceiling"}
    lo, hi = scene.mesh.vertices.min(0), scene.mesh.vertices.max(0)
    for instance in scene.instances:
        assert np.all(instance.size >= 0.01) and np.all(instance.size <= 10.0), instance.label
        assert np.all(instance.box_min >= lo) and np.all(instance.box_max <= hi)
        assert instance.box_min.dtype == np.float32 and instance.center.shape == (3,)
    by_id = {i.object_id: i for i in scene.instances}
    bed = by_id[37]
    assert (bed.label, bed.nyu40_id, bed.benchmark_class) == ("bed", 4, "bed")
    assert len(bed.vertex_indices) == 2601
    np.testing.assert_allclose(bed.size, [1.98, 2.317, 0.933], atol=1e-3)
    assert by_id[12].label == "trashcan" and by_id[12].nyu40_id == 39
    assert by_id[51].label == "dishrack" and by_id[51].benchmark_class is None
    counts = {c: sum(i.benchmark_class == c for i in scene.instances) for c in BENCHMARK_CLASSES}
    assert counts["cabinet"] == 6 and counts["curtain"] == 2 and counts["refrigerator"] == 1


def test_axis_alignment_moves_mesh_and_boxes(shared_data, tmp_path):
    scene_dir = tmp_path / "scans" / SCENE
    scene_dir.mkdir(parents=True)
    source = shared_data / "scannet" / SCENE
    for name in (f"{SCENE}_vh_clean_2.ply", f"{SCENE}_vh_clean_2.0.010000.segs.json",
                 f"{SCENE}.aggregation.json"):
        shutil.copy(source / name, scene_dir / name)
    meta = read_meta(source / f"{SCENE}.txt")
    meta.axis_alignment = np.array([[0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1.0]])
    write_meta(scene_dir / f"{SCENE}.txt", meta)
    raw = load_scene(scene_dir, align=False)
    aligned = load_scene(scene_dir)
    assert raw.axis_alignment is None and raw.instances[0].nyu40_id is None  # no label map
    np.testing.assert_array_equal(aligned.axis_alignment, meta.axis_alignment)
    expected = read_mesh(scene_dir / f"{SCENE}_vh_clean_2.ply").vertices[:, [1, 0, 2]] * \
        np.array([-1, 1, 1], np.float32) + np.array([1, 2, 3], np.float32)
    np.testing.assert_allclose(aligned.mesh.vertices, expected, atol=1e-5)
    for before, after in zip(raw.instances, aligned.instances, strict=True):
        np.testing.assert_allclose(after.size, before.size[[1, 0, 2]], atol=1e-5)


def test_find_scene_files_and_missing_pieces(shared_data, tmp_path):
    files = find_scene_files(shared_data / "scannet" / SCENE)
    assert {k for k, v in files.items() if v is not None} == {
        "mesh", "labels", "segs", "aggregation", "meta"}
    empty = tmp_path / "scene0999_00"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="scene0999_00"):
        load_scene(empty)
    shutil.copy(shared_data / "scannet" / SCENE / f"{SCENE}_vh_clean_2.ply",
                empty / "scene0999_00_vh_clean_2.ply")
    shutil.copy(shared_data / "scannet" / SCENE / f"{SCENE}.aggregation.json",
                empty / "scene0999_00.aggregation.json")
    with pytest.raises(DataFormatError, match="no segs"):
        load_scene(empty)
