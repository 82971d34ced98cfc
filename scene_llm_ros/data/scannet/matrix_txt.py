"""Whitespace-separated number matrices in text files (ScanNet poses and intrinsics)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from scene_llm_ros.errors import DataFormatError


def format_float(value: float) -> str:
    """Six decimals like ScanNet's ``%f`` when that is exact, else the shortest exact repr."""
    fixed = f"{value:f}"
    if fixed in ("inf", "-inf", "nan"):
        return fixed
    return fixed if float(fixed) == value else repr(float(value))


def read_matrix_txt(path: str | Path, shape: tuple[int, int] = (4, 4)) -> np.ndarray:
    """Read a text matrix such as ``pose/12.txt`` (``inf``/``-inf``/``nan`` allowed).

    :param path: the text file, one row per line.
    :param shape: expected shape.
    :return: float64 array of ``shape``.
    :raises DataFormatError: naming the file when it is missing, holds a non-number, or has the
        wrong number of rows or columns.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read matrix file: {exc}") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([float(word) for word in line.split()])
        except ValueError:
            raise DataFormatError(f"{path}: line {number} is not numeric: {line.strip()!r}") \
                from None
    if len(rows) != shape[0] or any(len(row) != shape[1] for row in rows):
        raise DataFormatError(f"{path}: expected a {shape[0]}x{shape[1]} matrix, got rows of "
                              f"lengths {[len(row) for row in rows]}")
    return np.array(rows, dtype=np.float64)


def write_matrix_txt(path: str | Path, matrix: np.ndarray) -> None:
    """Write a 2-D matrix one row per line, numbers separated by single spaces.

    :param path: output file.
    :param matrix: a 2-D array; values are written exactly (see :func:`format_float`).
    :raises ValueError: when ``matrix`` is not 2-D.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {matrix.shape}")
    text = "".join(" ".join(format_float(v) for v in row) + "\n" for row in matrix)
    Path(path).write_text(text, encoding="utf-8")
