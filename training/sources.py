"""The official annotation files of a split, found by their released names and read."""
from __future__ import annotations

from pathlib import Path

from scene_llm_ros.data import annotations as ann
from scene_llm_ros.errors import DataFormatError

# Released file names, in the order they are tried ({split} is train, val or test). ScanQA's
# test split ships as test_w_obj / test_wo_obj; Scan2Cap reads ScanRefer's files.
_FILE_NAMES = {
    "scanqa": ("ScanQA_v1.0_{split}.json", "ScanQA_v1.0_{split}_w_obj.json"),
    "scanrefer": ("ScanRefer_filtered_{split}.json",),
    "scan2cap": ("Scan2Cap_{split}.json", "ScanRefer_filtered_{split}.json"),
    "multi3drefer": ("multi3drefer_{split}.json",),
}
_SQA3D_FILES = ("v1_balanced_questions_{split}_scannetv2.json",
                "v1_balanced_sqa_annotations_{split}_scannetv2.json")


def annotation_file(annotations_dir: str | Path, source: str, split: str) -> Path:
    """The first existing file of ``source`` for ``split``.

    :raises DataFormatError: naming every path tried when none exists.
    """
    candidates = [Path(annotations_dir) / name.format(split=split)
                  for name in _FILE_NAMES[source]]
    for path in candidates:
        if path.is_file():
            return path
    raise DataFormatError(f"no {source} annotations for split {split!r}: tried "
                          f"{[str(p) for p in candidates]}")


def source_available(annotations_dir: str | Path, source: str, split: str) -> bool:
    """Whether the annotation files of ``source`` exist for ``split``."""
    if source == "sqa3d":
        return all((Path(annotations_dir) / name.format(split=split)).is_file()
                   for name in _SQA3D_FILES)
    return any((Path(annotations_dir) / name.format(split=split)).is_file()
               for name in _FILE_NAMES[source])


def read_source(annotations_dir: str | Path, source: str, split: str) -> list:
    """Records of one annotation source and split, in file order.

    :param source: ``scanqa``, ``scanrefer``, ``scan2cap``, ``multi3drefer`` or ``sqa3d``.
    :raises DataFormatError: when the files are missing or malformed.
    :raises ValueError: for another source.
    """
    if source == "sqa3d":
        questions, answers = (Path(annotations_dir) / name.format(split=split)
                              for name in _SQA3D_FILES)
        for path in (questions, answers):
            if not path.is_file():
                raise DataFormatError(f"no sqa3d annotations for split {split!r}: {path} is "
                                      f"missing")
        return ann.read_sqa3d(questions, answers)
    readers = {"scanqa": ann.read_scanqa, "scanrefer": ann.read_scanrefer,
               "scan2cap": ann.read_scan2cap, "multi3drefer": ann.read_multi3drefer}
    if source not in readers:
        raise ValueError(f"no annotation files for source {source!r}")
    return readers[source](annotation_file(annotations_dir, source, split))


def split_scene_ids(root: str | Path, split: str) -> list[str] | None:
    """Scene ids listed in ``meta/scannetv2_{split}.txt`` (None when that file is absent)."""
    path = Path(root) / "meta" / f"scannetv2_{split}.txt"
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
