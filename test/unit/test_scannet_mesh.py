"""Tests of ScanNet meshes, segmentation, aggregation and meta files, on the real scene0000_00."""
from __future__ import annotations

import numpy as np
import pytest

from scene_llm_ros.data.scannet import (
    ScanNetMesh,
    SceneMeta,
    SegGroup,
    read_aggregation,
    read_mesh,
    read_meta,
    read_segs,
    write_aggregation,
    write_mesh,
    write_meta,
    write_segs,
)
from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.errors import DataFormatError

SCENE = "scene0000_00"
NUM_VERTICES = 81369
NUM_FACES = 153587


@pytest.fixture(scope="module")
def scene_dir(shared_data):
    return shared_data / "scannet" / SCENE


@pytest.fixture(scope="module")
def real_mesh(scene_dir):
    return read_mesh(scene_dir / f"{SCENE}_vh_clean_2.ply")


@pytest.fixture(scope="module")
def real_labelled(scene_dir):
    return read_mesh(scene_dir / f"{SCENE}_vh_clean_2.labels.ply")


def test_real_mesh_counts_and_bounds(real_mesh):
    assert real_mesh.vertices.shape == (NUM_VERTICES, 3)
    assert real_mesh.vertices.dtype == np.float32
    assert real_mesh.colors.shape == (NUM_VERTICES, 4) and real_mesh.colors.dtype == np.uint8
    assert real_mesh.faces.shape == (NUM_FACES, 3) and real_mesh.faces.dtype == np.int32
    assert real_mesh.labels is None
    np.testing.assert_allclose(real_mesh.vertices.min(0), [-0.016569, -0.003544, -0.000585],
                               atol=1e-6)
    np.testing.assert_allclose(real_mesh.vertices.max(0), [8.408409, 8.740397, 3.024793],
                               atol=1e-6)
    assert np.all(real_mesh.colors[:, 3] == 255)
    np.testing.assert_array_equal(real_mesh.colors[0], [101, 107, 90, 255])


def test_real_labels_match_the_aggregation(real_mesh, real_labelled, scene_dir):
    np.testing.assert_array_equal(real_labelled.vertices, real_mesh.vertices)
    np.testing.assert_array_equal(real_labelled.faces, real_mesh.faces)
    labels = real_labelled.labels
    assert labels.dtype == np.uint16 and labels.shape == (NUM_VERTICES,)
    # This early release stores label-table category ids (tsv column `id`), not NYU40 ids:
    # e.g. `stool` is 38 and `scale` 229, beyond NYU40's 1..40.
    assert labels.max() == 230 and int((labels == 0).sum()) == 18717
    segs = read_segs(scene_dir / f"{SCENE}_vh_clean_2.0.010000.segs.json")
    groups = read_aggregation(scene_dir / f"{SCENE}.aggregation.json")
    expected = {"wall": 1, "floor": 3, "bed": 11, "refrigerator": 27, "stool": 38, "tv": 33,
                "trashcan": 12, "dishrack": 0}
    for group in groups:
        if group.label in expected:
            values = labels[np.isin(segs, group.segments)]
            assert np.bincount(values).argmax() == expected[group.label], group.label


def test_real_meshes_are_written_back_byte_for_byte(real_mesh, real_labelled, scene_dir,
                                                    tmp_path):
    for mesh, name in ((real_mesh, "_vh_clean_2.ply"), (real_labelled, "_vh_clean_2.labels.ply")):
        out = tmp_path / name
        write_mesh(out, mesh)
        assert out.read_bytes() == (scene_dir / f"{SCENE}{name}").read_bytes()


@pytest.mark.parametrize("with_labels", [False, True])
def test_synthetic_mesh_round_trip_is_bit_exact(tmp_path, with_labels):
    rng = np.random.default_rng(3)
    mesh = ScanNetMesh(vertices=rng.normal(size=(50, 3)).astype(np.float32),
                       colors=rng.integers(0, 256, (50, 4)).astype(np.uint8),
                       faces=rng.integers(0, 50, (80, 3)).astype(np.int32),
                       labels=rng.integers(0, 65536, 50).astype(np.uint16) if with_labels
                       else None)
    path = tmp_path / "m.ply"
    write_mesh(path, mesh)
    header = path.read_bytes().split(b"end_header")[0].decode()
    assert ("property ushort label" in header) == with_labels
    assert "property list uchar int vertex_indices" in header
    assert "format binary_little_endian 1.0" in header
    back = read_mesh(path)
    for name in ("vertices", "colors", "faces"):
        assert getattr(back, name).tobytes() == getattr(mesh, name).tobytes()
    if with_labels:
        np.testing.assert_array_equal(back.labels, mesh.labels)
    else:
        assert back.labels is None


def test_mesh_without_xyz_and_truncated_mesh_raise(tmp_path, real_mesh):
    wrong = tmp_path / "wrong.ply"
    wrong.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                      b"property float y\nproperty float w\nend_header\n1 2 3\n")
    with pytest.raises(DataFormatError, match=r"wrong\.ply.*\['z'"):
        read_mesh(wrong)
    cut = tmp_path / "cut.ply"
    write_mesh(cut, real_mesh)
    cut.write_bytes(cut.read_bytes()[:200_000])
    with pytest.raises(DataFormatError, match=r"cut\.ply.*truncated.*'vertex'"):
        read_mesh(cut)


def test_real_segs_and_aggregation(scene_dir):
    segs = read_segs(scene_dir / f"{SCENE}_vh_clean_2.0.010000.segs.json")
    assert segs.shape == (NUM_VERTICES,) and segs.dtype == np.int64
    assert len(np.unique(segs)) == 668
    groups = read_aggregation(scene_dir / f"{SCENE}.aggregation.json")
    assert len(groups) == 55
    assert groups[0] == SegGroup(0, 0, [43832, 43652, 53294, 43632, 44013, 44062, 53070, 44158,
                                        53173], "window")
    assert [g.label for g in groups].count("wall") == 9
    assert {g.label for g in groups} >= {"trashcan", "dishrack", "bed", "refrigerator", "floor"}
    present = set(segs.tolist())
    for group in groups:
        assert set(group.segments) <= present, group


def test_real_segs_and_aggregation_write_back_byte_for_byte(scene_dir, tmp_path):
    segs_name = f"{SCENE}_vh_clean_2.0.010000.segs.json"
    segs = read_segs(scene_dir / segs_name)
    write_segs(tmp_path / segs_name, segs, scene_id=SCENE)
    assert (tmp_path / segs_name).read_bytes() == (scene_dir / segs_name).read_bytes()
    groups = read_aggregation(scene_dir / f"{SCENE}.aggregation.json")
    v1 = tmp_path / "v1.aggregation.json"
    write_aggregation(v1, groups, scene_id=SCENE, segs_file=segs_name, app_id="Aggregator.v1",
                      id_prefix="")
    assert v1.read_bytes() == (scene_dir / f"{SCENE}.aggregation.json").read_bytes()


def test_v2_aggregation_layout_round_trip(tmp_path):
    groups = [SegGroup(0, 0, [1, 2, 3], "chair"), SegGroup(1, 5, [7], 'a "quoted" label')]
    path = tmp_path / "scene0001_00.aggregation.json"
    write_aggregation(path, groups, scene_id="scene0001_00",
                      segs_file=tmp_path / "scene0001_00_vh_clean_2.0.010000.segs.json")
    text = path.read_text()
    assert '"sceneId": "scannet.scene0001_00"' in text
    assert '"appId": "Aggregator.v2"' in text
    assert '"segmentsFile": "scannet.scene0001_00_vh_clean_2.0.010000.segs.json"' in text
    assert read_aggregation(path) == groups
    segs_path = tmp_path / "s.segs.json"
    write_segs(segs_path, np.array([4, 4, 9], np.int64), scene_id="scene0001_00",
               kthresh="0.01", seg_min_verts="5")
    np.testing.assert_array_equal(read_segs(segs_path), [4, 4, 9])
    assert '"kThresh": "0.01"' in segs_path.read_text()


def test_bad_json_files_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.aggregation.json"
    corrupt.write_text('{"segGroups": [')
    with pytest.raises(DataFormatError, match=r"corrupt\.aggregation\.json.*invalid JSON"):
        read_aggregation(corrupt)
    typed = tmp_path / "typed.aggregation.json"
    typed.write_text('{"segGroups": [{"id": 0, "objectId": "0", "segments": [], "label": "x"}]}')
    with pytest.raises(DataFormatError, match=r"typed\.aggregation\.json.*segGroups\[0\].*"
                                              r"'objectId'"):
        read_aggregation(typed)
    floats = tmp_path / "floats.segs.json"
    floats.write_text('{"segIndices": [1, 2.5]}')
    with pytest.raises(DataFormatError, match=r"floats\.segs\.json"):
        read_segs(floats)


def test_real_meta_has_no_axis_alignment_and_writes_back(scene_dir, tmp_path):
    path = scene_dir / f"{SCENE}.txt"
    meta = read_meta(path)
    assert meta.axis_alignment is None
    assert (meta.color_width, meta.color_height, meta.depth_width, meta.depth_height) == \
        (1296, 968, 640, 480)
    assert meta.color_intrinsics == CameraIntrinsics(1170.187988, 1170.187988, 647.75, 483.75,
                                                     1296, 968)
    assert meta.depth_intrinsics == CameraIntrinsics(571.623718, 571.623718, 319.5, 239.5,
                                                     640, 480)
    assert meta.num_color_frames == meta.num_depth_frames == 5578
    assert meta.extra["sceneType"] == "Bedroom / Hotel"
    assert meta.extra["numIMUmeasurements"] == "11834"
    write_meta(tmp_path / "m.txt", meta)
    assert (tmp_path / "m.txt").read_bytes() == path.read_bytes()


def test_meta_round_trip_with_axis_alignment(tmp_path):
    T = np.array([[0.945519, 0.325568, 0, -5.38439], [-0.325568, 0.945519, 0, -2.84043],
                  [0, 0, 1, -0.03], [0, 0, 0, 1]]) + np.pi * 1e-9
    meta = SceneMeta(axis_alignment=T, depth_width=64, depth_height=48,
                     depth_intrinsics=CameraIntrinsics(50.5, 51.25, 31.5, 23.5, 64, 48),
                     extra={"sceneType": "Kitchen"})
    write_meta(tmp_path / "x.txt", meta)
    back = read_meta(tmp_path / "x.txt")
    np.testing.assert_array_equal(back.axis_alignment, T)
    assert back.depth_intrinsics == meta.depth_intrinsics
    assert back.color_intrinsics is None and back.color_width is None
    assert back.extra == {"sceneType": "Kitchen"}


def test_bad_meta_values_name_file_and_key(tmp_path):
    bad = tmp_path / "bad_meta.txt"
    bad.write_text("colorWidth = wide\n")
    with pytest.raises(DataFormatError, match=r"bad_meta\.txt.*'colorWidth'.*'wide'"):
        read_meta(bad)
    short = tmp_path / "short_meta.txt"
    short.write_text("axisAlignment = 1 0 0 0 1\n")
    with pytest.raises(DataFormatError, match=r"short_meta\.txt.*'axisAlignment'.*16"):
        read_meta(short)
