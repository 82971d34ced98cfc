"""Tests of the generic PLY reader/writer: round trips in every format and malformed files."""
from __future__ import annotations

import numpy as np
import pytest

from scene_llm_ros.data.ply import read_ply, write_ply
from scene_llm_ros.errors import DataFormatError


def _elements(rng: np.random.Generator) -> dict[str, np.ndarray]:
    vertex = np.zeros(7, [("x", "f4"), ("y", "f4"), ("z", "f8"), ("red", "u1"), ("id", "i2")])
    vertex["x"] = rng.normal(size=7)
    vertex["y"] = rng.normal(size=7)
    vertex["z"] = rng.normal(size=7)
    vertex["red"] = rng.integers(0, 256, 7)
    vertex["id"] = rng.integers(-300, 300, 7)
    face = np.zeros(4, [("vertex_indices", "i4", (3,)), ("flags", "u2")])
    face["vertex_indices"] = rng.integers(0, 7, (4, 3))
    face["flags"] = [1, 2, 65535, 0]
    return {"vertex": vertex, "face": face}


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_round_trip_is_exact_in_every_format(tmp_path, fmt):
    elements = _elements(np.random.default_rng(0))
    path = tmp_path / "m.ply"
    write_ply(path, elements, fmt=fmt, comments=["hello world"])
    ply = read_ply(path)
    assert ply.format == fmt
    assert ply.comments == ["hello world"]
    assert list(ply.elements) == ["vertex", "face"]
    for name, array in elements.items():
        for field in array.dtype.names:
            np.testing.assert_array_equal(ply.elements[name][field], array[field])
            assert ply.elements[name][field].dtype.base == array.dtype[field].base


def test_ragged_lists_round_trip(tmp_path):
    face = np.empty(3, [("vertex_indices", object)])
    lists = [np.array([0, 1, 2], np.int32), np.array([3, 4, 5, 6], np.int32),
             np.array([], np.int32)]
    for row, values in enumerate(lists):
        face["vertex_indices"][row] = values
    for fmt in ("binary_little_endian", "ascii"):
        path = tmp_path / f"{fmt}.ply"
        write_ply(path, {"face": face}, fmt=fmt, list_count_types={"vertex_indices": "int"})
        back = read_ply(path).elements["face"]["vertex_indices"]
        assert [list(v) for v in back] == [list(v) for v in lists]
    assert b"property list int int vertex_indices" in path.read_bytes()


def test_truncated_binary_body_names_file_and_element(tmp_path):
    path = tmp_path / "cut.ply"
    write_ply(path, _elements(np.random.default_rng(1)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataFormatError, match=r"cut\.ply.*truncated.*'face'"):
        read_ply(path)


def test_truncated_header_names_file(tmp_path):
    path = tmp_path / "head.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n")
    with pytest.raises(DataFormatError, match=r"head\.ply.*end_header"):
        read_ply(path)


def test_unknown_property_type_names_file_and_line(tmp_path):
    path = tmp_path / "bad.ply"
    path.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty flaot x\nend_header\n1\n")
    with pytest.raises(DataFormatError, match=r"bad\.ply.*'flaot'"):
        read_ply(path)


def test_not_a_ply_and_bad_ascii_value(tmp_path):
    junk = tmp_path / "junk.ply"
    junk.write_bytes(b"solid stl\n")
    with pytest.raises(DataFormatError, match=r"junk\.ply.*not a PLY"):
        read_ply(junk)
    bad = tmp_path / "value.ply"
    bad.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 2\nproperty int x\nend_header\n1\nz\n")
    with pytest.raises(DataFormatError, match=r"value\.ply.*'x'.*row 1"):
        read_ply(bad)
    with pytest.raises(DataFormatError, match=r"missing\.ply"):
        read_ply(tmp_path / "missing.ply")
