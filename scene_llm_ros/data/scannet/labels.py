"""ScanNet label map (``scannetv2-labels.combined.tsv``): raw categories to NYU40 and benchmark.

Some early (v1-era) scenes use labels that are not raw categories of the v2 map, e.g. ``trashcan``
and ``dishrack`` where v2 writes ``trash can`` and ``dish rack``. :class:`LabelMap` normalises
them by comparing labels with spaces, hyphens and underscores removed; labels it still cannot
place map to None and are logged once each.
"""
from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from scene_llm_ros.errors import DataFormatError

logger = logging.getLogger(__name__)

#: The 18 classes of the ScanNet 3D semantic/instance benchmark, in the official order.
BENCHMARK_CLASSES: tuple[str, ...] = (
    "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink", "bathtub",
    "otherfurniture")
#: NYU40 id of each benchmark class, aligned with :data:`BENCHMARK_CLASSES`.
BENCHMARK_NYU40_IDS: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34,
                                        36, 39)
_BENCHMARK_BY_NYU40 = dict(zip(BENCHMARK_NYU40_IDS, BENCHMARK_CLASSES, strict=True))

#: Columns of the real v2 tsv, in file order.
TSV_COLUMNS: tuple[str, ...] = (
    "id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass", "nyu40class",
    "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55", "synsetoffset", "wnsynsetid",
    "wnsynsetkey", "mpcat40", "mpcat40index")
_REQUIRED_COLUMNS = ("raw_category", "nyu40id")


def _compact(label: str) -> str:
    return re.sub(r"[\s_\-]+", "", label.lower())


class LabelMap:
    """Lookup from a raw annotation label to its NYU40 id/class and its benchmark class."""

    def __init__(self, rows: Iterable[Mapping[str, str]], *, source: str = "<rows>") -> None:
        """Index ``rows`` of the tsv (column name -> text).

        :param rows: one mapping per category with at least ``raw_category`` and ``nyu40id``.
        :param source: where the rows came from, used in error messages.
        :raises DataFormatError: when a row lacks a required column or has a non-integer
            ``nyu40id``.
        """
        self.rows: list[dict[str, str]] = []
        self._by_raw: dict[str, dict[str, str]] = {}
        self._by_compact: dict[str, str] = {}
        self._by_category: dict[str, str] = {}
        self._reported_unknown: set[str] = set()
        self.source = source
        for index, row in enumerate(rows):
            row = {k: ("" if v is None else str(v)) for k, v in row.items()}
            for column in _REQUIRED_COLUMNS:
                if not row.get(column):
                    raise DataFormatError(f"{source}: row {index} has no {column!r} value")
            try:
                int(row["nyu40id"])
            except ValueError:
                raise DataFormatError(f"{source}: row {index} ({row['raw_category']!r}) has "
                                      f"non-integer nyu40id {row['nyu40id']!r}") from None
            self.rows.append(row)
            raw = row["raw_category"]
            self._by_raw.setdefault(raw, row)
            # Several raw categories can share a compact spelling; prefer the most frequent.
            compact = _compact(raw)
            previous = self._by_compact.get(compact)
            if previous is None or _count(row) > _count(self._by_raw[previous]):
                self._by_compact[compact] = raw
            if row.get("category"):
                self._by_category.setdefault(row["category"], raw)

    @classmethod
    def from_tsv(cls, path: str | Path) -> LabelMap:
        """Read a ``scannetv2-labels.combined.tsv``-style file.

        :param path: the tab-separated file with a header row.
        :return: the label map.
        :raises DataFormatError: when the file cannot be read or lacks required columns.
        """
        path = Path(path)
        try:
            with open(path, newline="", encoding="utf-8") as stream:
                reader = csv.DictReader(stream, delimiter="\t")
                missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise DataFormatError(f"{path}: label tsv lacks columns {missing}; header "
                                          f"is {reader.fieldnames}")
                return cls(list(reader), source=str(path))
        except OSError as exc:
            raise DataFormatError(f"{path}: cannot read label tsv: {exc}") from exc

    def __len__(self) -> int:
        return len(self.rows)

    def normalize(self, raw: str) -> str | None:
        """Return the raw category of this map that ``raw`` denotes, or None.

        Tries, in order: the label as is; lower-cased and stripped; the same label with
        spaces/hyphens/underscores removed (``trashcan`` -> ``trash can``); the ``category``
        column (``kitchen cabinet`` -> ``kitchen cabinets``); the singular without a final ``s``.

        :param raw: an annotation label such as an aggregation ``label``.
        :return: a ``raw_category`` key of the map, or None (logged once per label).
        """
        if raw in self._by_raw:
            return raw
        cleaned = " ".join(raw.lower().split())
        for candidate in (cleaned, self._by_compact.get(_compact(cleaned)),
                          self._by_category.get(cleaned)):
            if candidate and candidate in self._by_raw:
                return candidate
        if cleaned.endswith("s"):
            singular = self._by_compact.get(_compact(cleaned[:-1]))
            if singular:
                return singular
        if raw not in self._reported_unknown:
            self._reported_unknown.add(raw)
            logger.warning("label %r is not a raw category of %s; mapped to None", raw,
                           self.source)
        return None

    def row(self, raw: str) -> dict[str, str] | None:
        """The tsv row (column -> text) of ``raw`` after normalisation, or None."""
        key = self.normalize(raw)
        return None if key is None else self._by_raw[key]

    def raw_to_nyu40(self, raw: str) -> tuple[int, str] | None:
        """NYU40 id and class name of ``raw``.

        :param raw: an annotation label.
        :return: ``(nyu40id, nyu40class)`` with the class spelled as in the tsv (some copies of
            the v2 file spell id 24 ``refridgerator``), or None when the label is unknown.
        """
        row = self.row(raw)
        if row is None:
            return None
        return int(row["nyu40id"]), row.get("nyu40class", "")

    def benchmark_class(self, raw: str) -> str | None:
        """The ScanNet benchmark class of ``raw`` (one of :data:`BENCHMARK_CLASSES`) or None.

        Decided by NYU40 id, so spelling differences of the tsv's class names do not matter.
        """
        nyu40 = self.raw_to_nyu40(raw)
        return None if nyu40 is None else _BENCHMARK_BY_NYU40.get(nyu40[0])


def _count(row: Mapping[str, str]) -> int:
    try:
        return int(row.get("count") or 0)
    except ValueError:
        return 0


def benchmark_class_of_nyu40(nyu40_id: int) -> str | None:
    """The benchmark class of a NYU40 id, or None for ids outside the 18 benchmark classes."""
    return _BENCHMARK_BY_NYU40.get(int(nyu40_id))


def write_tsv(path: str | Path, rows: Iterable[Mapping[str, object]]) -> None:
    """Write a label map in the layout of ``scannetv2-labels.combined.tsv``.

    Columns are :data:`TSV_COLUMNS` (tab-separated, CRLF line ends like the real file); columns a
    row does not give are left empty, and a missing ``id`` is the 1-based row number.

    :param path: output file.
    :param rows: one mapping per category with at least ``raw_category`` and ``nyu40id``.
    :raises ValueError: when a row lacks a required column, has a column the format does not
        have, or a value contains a tab or a line break.
    """
    lines = []
    for index, row in enumerate(rows):
        unknown = sorted(set(row) - set(TSV_COLUMNS))
        if unknown:
            raise ValueError(f"label row {index} has columns {unknown} not in {TSV_COLUMNS}")
        for column in _REQUIRED_COLUMNS:
            if row.get(column) in (None, ""):
                raise ValueError(f"label row {index} has no {column!r}: {dict(row)}")
        values = {"id": index + 1, "category": row["raw_category"], **row}
        line = []
        for column in TSV_COLUMNS:
            text = "" if values.get(column) is None else str(values[column])
            if any(c in text for c in "\t\r\n"):
                raise ValueError(f"label row {index} column {column!r} contains a tab or line "
                                 f"break: {text!r}")
            line.append(text)
        lines.append(line)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, delimiter="\t", lineterminator="\r\n",
                            quoting=csv.QUOTE_NONE)
        writer.writerow(TSV_COLUMNS)
        writer.writerows(lines)
