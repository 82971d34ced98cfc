"""JSON file reading and field checks whose errors name the file (ScanNet and annotations)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scene_llm_ros.errors import DataFormatError


def load_json(path: str | Path) -> Any:
    """Parse a JSON file.

    :param path: the file.
    :return: the decoded value.
    :raises DataFormatError: when the file is missing, unreadable or not valid JSON.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read JSON file: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                              f"{exc.msg}") from exc


def require_key(record: dict, key: str, expected: type | tuple[type, ...], path: Path,
                where: str) -> Any:
    """Return ``record[key]`` after checking it exists and has the expected type.

    :param record: a decoded JSON object.
    :param key: the field name.
    :param expected: accepted Python type(s); ``bool`` is never accepted for ``int``.
    :param path: file name for the message.
    :param where: location for the message, such as ``record 12``.
    :raises DataFormatError: naming file, location and field when missing or mistyped.
    """
    if not isinstance(record, dict):
        raise DataFormatError(f"{path}: {where} is a {type(record).__name__}, expected an object")
    if key not in record:
        raise DataFormatError(f"{path}: {where} lacks field {key!r}")
    value = record[key]
    if not is_type(value, expected):
        raise DataFormatError(f"{path}: {where} field {key!r} is {value!r} "
                              f"({type(value).__name__}), expected {_names(expected)}")
    return value


def require_list_of(record: dict, key: str, item_type: type | tuple[type, ...], path: Path,
                    where: str) -> list:
    """Like :func:`require_key` for a list whose items all have ``item_type``."""
    values = require_key(record, key, list, path, where)
    for index, value in enumerate(values):
        if not is_type(value, item_type):
            raise DataFormatError(f"{path}: {where} field {key!r} item {index} is {value!r} "
                                  f"({type(value).__name__}), expected {_names(item_type)}")
    return values


def is_type(value: Any, expected: type | tuple[type, ...]) -> bool:
    """isinstance that keeps JSON booleans out of ``int`` and ``float`` fields."""
    expected = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in expected
    if float in expected and isinstance(value, int):
        return True
    return isinstance(value, expected)


def _names(expected: type | tuple[type, ...]) -> str:
    expected = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in expected)
