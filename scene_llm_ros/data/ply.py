"""Generic PLY reader and writer (ascii and binary) returning numpy structured arrays per element.

A PLY file is a text header followed by one block per element. Each element becomes a numpy
structured array with one field per property. A list property whose rows all have the same length
(triangle faces) becomes a sub-array field of shape ``(k,)``; ragged lists become an ``object``
field holding one array per row.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scene_llm_ros.errors import DataFormatError

logger = logging.getLogger(__name__)

# PLY type names (both the classic and the sized spelling) -> numpy base type.
_PLY_TO_NUMPY = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
# numpy base type -> the classic PLY name, which is what ScanNet, VCG and MLIB write.
_NUMPY_TO_PLY = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort",
                 "i4": "int", "u4": "uint", "f4": "float", "f8": "double"}
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class PlyProperty:
    """One property of an element; ``count_type`` is set only for list properties."""

    name: str
    value_type: str
    count_type: str | None = None


@dataclass
class PlyElementHeader:
    """An ``element`` line of the header with its properties, in file order."""

    name: str
    count: int
    properties: list[PlyProperty] = field(default_factory=list)


@dataclass
class PlyData:
    """Content of a PLY file.

    :ivar format: ``ascii``, ``binary_little_endian`` or ``binary_big_endian``.
    :ivar comments: text of the ``comment`` lines, in order.
    :ivar elements: element name -> structured array (one row per element instance).
    :ivar headers: the parsed element declarations, in file order.
    """

    format: str
    comments: list[str]
    elements: dict[str, np.ndarray]
    headers: list[PlyElementHeader]


def _numpy_type(ply_type: str, path: Path, line: str) -> str:
    try:
        return _PLY_TO_NUMPY[ply_type]
    except KeyError:
        raise DataFormatError(
            f"{path}: unknown PLY type {ply_type!r} in header line {line!r}") from None


def parse_header(raw: bytes, path: Path) -> tuple[str, list[str], list[PlyElementHeader], int]:
    """Parse the header at the start of ``raw``.

    :param raw: the file's bytes (at least the whole header).
    :param path: file name used in error messages.
    :return: ``(format, comments, element headers, header size in bytes)``.
    :raises DataFormatError: when the magic, the format line or a declaration is wrong, or
        ``end_header`` is missing.
    """
    if not raw.startswith(b"ply"):
        raise DataFormatError(f"{path}: not a PLY file (starts with {raw[:8]!r})")
    end = raw.find(b"end_header", 0, _MAX_HEADER_BYTES)
    if end < 0:
        raise DataFormatError(f"{path}: PLY header has no 'end_header' line (file truncated?)")
    header_end = raw.find(b"\n", end)
    if header_end < 0:
        raise DataFormatError(f"{path}: PLY file ends right after 'end_header'")
    header_size = header_end + 1
    lines = raw[:end].decode("ascii", errors="replace").replace("\r", "").split("\n")[1:]
    fmt = None
    comments: list[str] = []
    elements: list[PlyElementHeader] = []
    for line in lines:
        words = line.split()
        if not words or words[0] == "obj_info":
            continue
        keyword = words[0]
        if keyword == "comment":
            comments.append(line.partition("comment")[2].strip())
        elif keyword == "format":
            if len(words) != 3 or words[1] not in _FORMATS:
                raise DataFormatError(f"{path}: unsupported PLY format line {line!r}")
            fmt = words[1]
        elif keyword == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise DataFormatError(f"{path}: bad element line {line!r}")
            elements.append(PlyElementHeader(words[1], int(words[2])))
        elif keyword == "property":
            if not elements:
                raise DataFormatError(f"{path}: property before any element: {line!r}")
            if len(words) == 5 and words[1] == "list":
                _numpy_type(words[2], path, line)
                _numpy_type(words[3], path, line)
                prop = PlyProperty(words[4], words[3], words[2])
            elif len(words) == 3:
                _numpy_type(words[1], path, line)
                prop = PlyProperty(words[2], words[1])
            else:
                raise DataFormatError(f"{path}: bad property line {line!r}")
            elements[-1].properties.append(prop)
        else:
            raise DataFormatError(f"{path}: unknown PLY header keyword in line {line!r}")
    if fmt is None:
        raise DataFormatError(f"{path}: PLY header has no 'format' line")
    return fmt, comments, elements, header_size


def read_ply(path: str | Path) -> PlyData:
    """Read every element of a PLY file.

    :param path: the ``.ply`` file.
    :return: the parsed :class:`PlyData`.
    :raises DataFormatError: when the file is missing, the header is malformed, or the body is
        shorter than the header declares (the message names the file and the element).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read PLY file: {exc}") from exc
    fmt, comments, headers, offset = parse_header(raw, path)
    if fmt == "ascii":
        elements = _read_ascii_body(raw[offset:], headers, path)
    else:
        elements = {}
        for header in headers:
            elements[header.name], offset = _read_binary_element(
                raw, offset, header, _FORMATS[fmt], path)
        if offset != len(raw):
            logger.debug("%s: %d bytes after the last PLY element ignored", path,
                         len(raw) - offset)
    return PlyData(fmt, comments, elements, headers)


def _scalar_dtype(header: PlyElementHeader, byte_order: str) -> np.dtype:
    return np.dtype([(p.name, byte_order + _PLY_TO_NUMPY[p.value_type])
                     for p in header.properties])


def _read_binary_element(raw: bytes, offset: int, header: PlyElementHeader, byte_order: str,
                         path: Path) -> tuple[np.ndarray, int]:
    if header.count == 0:
        return np.zeros(0, _output_dtype(header, None)), offset
    if all(p.count_type is None for p in header.properties):
        dtype = _scalar_dtype(header, byte_order)
        needed = dtype.itemsize * header.count
        _require(raw, offset, needed, path, header, 0)
        array = np.frombuffer(raw, dtype, header.count, offset)
        return _native(array), offset + needed
    uniform = _uniform_list_lengths(raw, offset, header, byte_order, path)
    if uniform is not None:
        return uniform
    return _read_ragged_element(raw, offset, header, byte_order, path)


def _require(raw: bytes, offset: int, needed: int, path: Path, header: PlyElementHeader,
             row: int) -> None:
    if offset + needed > len(raw):
        raise DataFormatError(
            f"{path}: truncated PLY body: element {header.name!r} ({header.count} rows) needs "
            f"{needed} more bytes at row {row} but only {len(raw) - offset} remain")


def _uniform_list_lengths(raw: bytes, offset: int, header: PlyElementHeader, byte_order: str,
                          path: Path) -> tuple[np.ndarray, int] | None:
    """Fast path: guess every list has the length of the first row's lists and verify it."""
    fields = []
    cursor = offset
    for prop in header.properties:
        value = np.dtype(byte_order + _PLY_TO_NUMPY[prop.value_type])
        if prop.count_type is None:
            fields.append((prop.name, value))
            cursor += value.itemsize
            continue
        count_dtype = np.dtype(byte_order + _PLY_TO_NUMPY[prop.count_type])
        _require(raw, cursor, count_dtype.itemsize, path, header, 0)
        length = int(np.frombuffer(raw, count_dtype, 1, cursor)[0])
        fields.append((f"__count_{prop.name}", count_dtype))
        fields.append((prop.name, value, (length,)))
        cursor += count_dtype.itemsize + length * value.itemsize
    dtype = np.dtype(fields)
    needed = dtype.itemsize * header.count
    if offset + needed > len(raw):
        return None  # maybe ragged; the slow path reports truncation precisely
    rows = np.frombuffer(raw, dtype, header.count, offset)
    for prop in header.properties:
        if prop.count_type is not None:
            expected = dtype[prop.name].shape[0]
            if not np.all(rows[f"__count_{prop.name}"] == expected):
                return None
    out = np.empty(header.count, np.dtype([(n, dtype[n].base.newbyteorder("="), dtype[n].shape)
                                           for n in dtype.names if not n.startswith("__count_")]))
    for name in out.dtype.names:
        out[name] = rows[name]
    return out, offset + needed


def _read_ragged_element(raw: bytes, offset: int, header: PlyElementHeader, byte_order: str,
                         path: Path) -> tuple[np.ndarray, int]:
    out = np.empty(header.count, _output_dtype(header, None))
    for row in range(header.count):
        for prop in header.properties:
            value = np.dtype(byte_order + _PLY_TO_NUMPY[prop.value_type])
            if prop.count_type is None:
                _require(raw, offset, value.itemsize, path, header, row)
                out[prop.name][row] = np.frombuffer(raw, value, 1, offset)[0]
                offset += value.itemsize
                continue
            count_dtype = np.dtype(byte_order + _PLY_TO_NUMPY[prop.count_type])
            _require(raw, offset, count_dtype.itemsize, path, header, row)
            length = int(np.frombuffer(raw, count_dtype, 1, offset)[0])
            offset += count_dtype.itemsize
            _require(raw, offset, length * value.itemsize, path, header, row)
            values = np.frombuffer(raw, value, length, offset)
            out[prop.name][row] = values.astype(value.newbyteorder("="))
            offset += length * value.itemsize
    return out, offset


def _output_dtype(header: PlyElementHeader, list_lengths: Mapping[str, int] | None) -> np.dtype:
    fields = []
    for prop in header.properties:
        base = _PLY_TO_NUMPY[prop.value_type]
        if prop.count_type is None:
            fields.append((prop.name, base))
        elif list_lengths is not None and prop.name in list_lengths:
            fields.append((prop.name, base, (list_lengths[prop.name],)))
        else:
            fields.append((prop.name, object))
    return np.dtype(fields)


def _native(array: np.ndarray) -> np.ndarray:
    """Copy into native byte order so callers get writable, ordinary arrays."""
    dtype = np.dtype([(n, array.dtype[n].newbyteorder("=")) for n in array.dtype.names])
    return array.astype(dtype)


def _read_ascii_body(body: bytes, headers: list[PlyElementHeader],
                     path: Path) -> dict[str, np.ndarray]:
    tokens = body.split()
    cursor = 0
    elements = {}
    for header in headers:
        out = np.empty(header.count, _output_dtype(header, None))
        rows_lists: dict[str, list[np.ndarray]] = {p.name: [] for p in header.properties
                                                   if p.count_type is not None}
        for row in range(header.count):
            for prop in header.properties:
                try:
                    if prop.count_type is None:
                        out[prop.name][row] = _ascii_number(tokens[cursor], prop.value_type)
                        cursor += 1
                        continue
                    length = int(tokens[cursor])
                    values = tokens[cursor + 1:cursor + 1 + length]
                    if len(values) != length:
                        raise IndexError
                    rows_lists[prop.name].append(np.array(
                        [_ascii_number(v, prop.value_type) for v in values],
                        dtype=_PLY_TO_NUMPY[prop.value_type]))
                    cursor += 1 + length
                except IndexError:
                    raise DataFormatError(
                        f"{path}: truncated ascii PLY body: element {header.name!r} ends at row "
                        f"{row} of {header.count}") from None
                except ValueError:
                    raise DataFormatError(
                        f"{path}: bad value {tokens[cursor]!r} for property {prop.name!r} of "
                        f"element {header.name!r} at row {row}") from None
        elements[header.name] = _pack_lists(out, header, rows_lists)
    return elements


def _ascii_number(token: bytes, ply_type: str) -> float | int:
    return float(token) if _PLY_TO_NUMPY[ply_type][0] == "f" else int(token)


def _pack_lists(out: np.ndarray, header: PlyElementHeader,
                rows_lists: dict[str, list[np.ndarray]]) -> np.ndarray:
    """Turn list properties into fixed-size sub-array fields when every row has one length."""
    lengths = {}
    for name, rows in rows_lists.items():
        sizes = {len(r) for r in rows}
        if len(sizes) == 1:
            lengths[name] = sizes.pop()
    packed = np.empty(header.count, _output_dtype(header, lengths))
    for prop in header.properties:
        if prop.count_type is None:
            packed[prop.name] = out[prop.name]
        elif prop.name in lengths:
            if header.count:
                packed[prop.name] = np.stack(rows_lists[prop.name])
        else:
            for row, values in enumerate(rows_lists[prop.name]):
                packed[prop.name][row] = values
    return packed


def write_ply(path: str | Path, elements: Mapping[str, np.ndarray], *,
              fmt: str = "binary_little_endian", comments: Sequence[str] = (),
              list_count_types: Mapping[str, str] | None = None) -> None:
    """Write structured arrays as a PLY file, one element per array, in mapping order.

    Scalar fields become scalar properties named with the classic PLY types (``float``,
    ``uchar``...). Sub-array fields of shape ``(k,)`` and ``object`` fields holding 1-D arrays
    become list properties.

    :param path: output file.
    :param elements: element name -> 1-D structured array.
    :param fmt: ``binary_little_endian`` (default), ``binary_big_endian`` or ``ascii``.
    :param comments: header comment lines, without the ``comment`` keyword.
    :param list_count_types: list property name -> PLY count type; default ``uchar``.
    :raises ValueError: on an unknown format, a field type PLY cannot hold, or a list too long
        for its count type.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"unknown PLY format {fmt!r}; use one of {sorted(_FORMATS)}")
    list_count_types = dict(list_count_types or {})
    lines = ["ply", f"format {fmt} 1.0", *(f"comment {c}" for c in comments)]
    for name, array in elements.items():
        lines.append(f"element {name} {len(array)}")
        for field_name in array.dtype.names:
            lines.append("property " + _property_declaration(
                array, field_name, list_count_types.get(field_name, "uchar")))
    lines.append("end_header")
    header = ("\n".join(lines) + "\n").encode("ascii")
    with open(path, "wb") as stream:
        stream.write(header)
        for array in elements.values():
            if fmt == "ascii":
                stream.write(_ascii_element(array))
            else:
                stream.write(_binary_element(array, _FORMATS[fmt], list_count_types))


def _value_ply_type(dtype: np.dtype, field_name: str) -> str:
    key = dtype.base.kind + str(dtype.base.itemsize)
    if key not in _NUMPY_TO_PLY:
        raise ValueError(f"field {field_name!r} has dtype {dtype} which PLY cannot store")
    return _NUMPY_TO_PLY[key]


def _list_value_dtype(array: np.ndarray, field_name: str) -> np.dtype:
    column = array[field_name]
    if column.dtype.kind != "O":
        return column.dtype.base
    if len(column) == 0:
        raise ValueError(f"cannot infer the type of empty object list field {field_name!r}")
    return np.asarray(column[0]).dtype


def _property_declaration(array: np.ndarray, field_name: str, count_type: str) -> str:
    field_dtype = array.dtype[field_name]
    if field_dtype.shape == () and field_dtype.kind != "O":
        return f"{_value_ply_type(field_dtype, field_name)} {field_name}"
    if count_type not in _PLY_TO_NUMPY:
        raise ValueError(f"unknown PLY count type {count_type!r} for list {field_name!r}")
    value_type = _value_ply_type(_list_value_dtype(array, field_name), field_name)
    return f"list {count_type} {value_type} {field_name}"


def _binary_element(array: np.ndarray, byte_order: str,
                    list_count_types: Mapping[str, str]) -> bytes:
    fields = []
    ragged = False
    for name in array.dtype.names:
        field_dtype = array.dtype[name]
        if field_dtype.kind == "O":
            ragged = True
            break
        if field_dtype.shape:
            count = np.dtype(byte_order + _PLY_TO_NUMPY[list_count_types.get(name, "uchar")])
            _check_list_length(field_dtype.shape[0], count, name)
            fields.append((f"__count_{name}", count))
        fields.append((name, field_dtype.base.newbyteorder(byte_order), field_dtype.shape))
    if not ragged:
        packed = np.empty(len(array), np.dtype(fields))
        for name in array.dtype.names:
            packed[name] = array[name]
            if array.dtype[name].shape:
                packed[f"__count_{name}"] = array.dtype[name].shape[0]
        return packed.tobytes()
    chunks = []
    for row in array:
        for name in array.dtype.names:
            field_dtype = array.dtype[name]
            if field_dtype.shape == () and field_dtype.kind != "O":
                chunks.append(np.asarray(row[name], field_dtype.newbyteorder(byte_order)).tobytes())
                continue
            values = np.asarray(row[name])
            count = np.dtype(byte_order + _PLY_TO_NUMPY[list_count_types.get(name, "uchar")])
            _check_list_length(len(values), count, name)
            chunks.append(np.asarray(len(values), count).tobytes())
            chunks.append(values.astype(values.dtype.newbyteorder(byte_order)).tobytes())
    return b"".join(chunks)


def _check_list_length(length: int, count_dtype: np.dtype, name: str) -> None:
    if length > np.iinfo(count_dtype).max:
        raise ValueError(f"list {name!r} has {length} items, too many for count type "
                         f"{count_dtype}")


def _ascii_element(array: np.ndarray) -> bytes:
    lines = []
    for row in array:
        words = []
        for name in array.dtype.names:
            value = row[name]
            if np.ndim(value) == 0 and array.dtype[name].kind != "O":
                words.append(_ascii_word(value))
            else:
                values = np.asarray(value).ravel()
                words.append(str(len(values)))
                words.extend(_ascii_word(v) for v in values)
        lines.append(" ".join(words))
    return ("\n".join(lines) + "\n").encode("ascii") if lines else b""


def _ascii_word(value: np.generic) -> str:
    # repr of a numpy float is the shortest string that reads back to the same value.
    if isinstance(value, np.floating):
        return repr(float(value)) if value.dtype == np.float64 else str(value)
    return str(int(value))
