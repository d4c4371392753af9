"""Output arrays to predict response bodies: ``MakeJsonFromTensors`` of TF Serving's
``util/json_tensor.cc`` (``MakeRowFormatJsonFromTensors``, ``MakeColumnarFormatJsonFromTensors``),
byte for byte.

Row format (``{"predictions": [...]}``) or columnar (``{"outputs": ...}``), as the request was; in
rapidjson's pretty layout as upstream writes it (4-space indents, arrays on one line in row
format) with upstream's number format (:func:`.json_writer.float_tokens`).

Deliberate deviation: outputs are visited in sorted alias order (upstream visits a protobuf map,
whose order is unspecified): it decides the key order of multi-output responses.

Thread-safe.
"""

from __future__ import annotations

import base64
import math

import numpy as np

from ...core.status import invalid_argument
from ...protocol.signature import NUMPY_DTYPES, dtype_string
from .json_values import to_bytes
from .json_writer import INDENT, float_tokens, quote
from .predict_request import COLUMNAR, ROW

__all__ = ["encode_predict_response"]


_JSON_DTYPES = {
    np.dtype(np.float32): "DT_FLOAT",
    np.dtype(np.float64): "DT_DOUBLE",
    np.dtype(np.int8): "DT_INT8",
    np.dtype(np.int16): "DT_INT16",
    np.dtype(np.int32): "DT_INT32",
    np.dtype(np.uint8): "DT_UINT8",
    np.dtype(np.int64): "DT_INT64",
    np.dtype(np.uint32): "DT_UINT32",
    np.dtype(np.uint64): "DT_UINT64",
    np.dtype(np.bool_): "DT_BOOL",
}
"""Output dtypes that ``AddSingleValueAndAdvance`` can write (plus strings)."""
_TF_DTYPE_NAMES = {value: key for key, value in NUMPY_DTYPES.items()}


def _is_string_array(array: np.ndarray) -> bool:
    return array.dtype.kind in "OSU"


def _check_writable(name: str, array: np.ndarray) -> None:
    """``Failed to write JSON value for tensor type: X`` for a non-empty output of a dtype
    upstream cannot write (e.g. ``half``, ``uint16``, ``complex64``)."""
    if array.size and not _is_string_array(array) and array.dtype not in _JSON_DTYPES:
        tf_name = _TF_DTYPE_NAMES.get(array.dtype)
        type_name = dtype_string(tf_name) if tf_name else array.dtype.name
        raise invalid_argument(f"Failed to write JSON value for tensor type: {type_name}")


def _base64_token(data: bytes, depth: int) -> str:
    """``{"b64": ...}`` as the pretty writer lays out an object inside ``depth`` open levels."""
    return (
        "{\n"
        + INDENT * (depth + 1)
        + '"b64": "'
        + base64.b64encode(data).decode()
        + '"\n'
        + INDENT * depth
        + "}"
    )


def _scalar_tokens(name: str, array: np.ndarray, depth: int) -> list[str]:
    """JSON tokens of every element of ``array`` in C order; ``depth`` is the number of open
    JSON levels around an element (base64 objects are laid out by it)."""
    flat = array.reshape(-1)
    if not flat.size:
        return []
    if _is_string_array(array):
        items = [x if isinstance(x, bytes) else str(x).encode() for x in flat.tolist()]
        if name.endswith("_bytes"):
            return [_base64_token(x, depth) for x in items]
        return [quote(x.decode("utf-8", "surrogateescape")) for x in items]
    kind = _JSON_DTYPES[array.dtype]
    if kind in ("DT_FLOAT", "DT_DOUBLE"):
        return float_tokens(flat)
    if kind == "DT_BOOL":
        return ["true" if x else "false" for x in flat.tolist()]
    return list(map(str, flat.tolist()))


def _nest(
    tokens: list[str], dims: tuple[int, ...], count: int, depth: int, pretty: bool
) -> list[str]:
    """Group the flat tokens of ``count`` values of shape ``dims`` into JSON arrays; returns
    one string per value. ``depth`` is the number of open levels around a value's outermost
    array; ``pretty`` puts each element on its own indented line (else rapidjson's
    single-line arrays)."""
    items = tokens
    for level in range(len(dims) - 1, -1, -1):
        size = dims[level]
        if size == 0:
            items = ["[]"] * (count * math.prod(dims[:level]))
            continue
        if pretty:
            inner = INDENT * (depth + level + 1)
            opener, separator = "[\n" + inner, ",\n" + inner
            closer = "\n" + INDENT * (depth + level) + "]"
        else:
            opener, separator, closer = "[", ", ", "]"
        items = [
            opener + separator.join(items[i : i + size]) + closer
            for i in range(0, len(items), size)
        ]
    return items


def _row_json(outputs: dict[str, np.ndarray]) -> str:
    """``MakeRowFormatJsonFromTensors``."""
    names = sorted(outputs)
    batch = -1
    for name in names:
        array = outputs[name]
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and batch != array.shape[0]:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    for name in names:
        _check_writable(name, outputs[name])
    if len(names) == 1:
        array = outputs[names[0]]
        tokens = _scalar_tokens(names[0], array, array.ndim + 1)
        body = ", ".join(_nest(tokens, array.shape[1:], batch, 2, False))
    else:
        per_name = {}
        for name in names:
            array = outputs[name]
            tokens = _scalar_tokens(name, array, array.ndim + 2)
            per_name[name] = _nest(tokens, array.shape[1:], batch, 3, False)
        inner = INDENT * 3
        body = ",".join(
            "\n"
            + INDENT * 2
            + "{\n"
            + ",\n".join(f"{inner}{quote(name)}: {per_name[name][i]}" for name in names)
            + "\n"
            + INDENT * 2
            + "}"
            for i in range(batch)
        )
    closer = "\n" + INDENT + "]" if batch > 0 else "]"
    return '{\n    "predictions": [' + body + closer + "\n}"


def _columnar_json(outputs: dict[str, np.ndarray]) -> str:
    """``MakeColumnarFormatJsonFromTensors``."""
    names = sorted(outputs)
    for name in names:
        _check_writable(name, outputs[name])
    depth = 1 if len(names) == 1 else 2
    values = {}
    for name in names:
        array = outputs[name]
        tokens = _scalar_tokens(name, array, depth + array.ndim)
        values[name] = _nest(tokens, array.shape, 1, depth, True)[0]
    if len(names) == 1:
        return '{\n    "outputs": ' + values[names[0]] + "\n}"
    members = ",\n".join(f"{INDENT * 2}{quote(name)}: {values[name]}" for name in names)
    return '{\n    "outputs": {\n' + members + "\n" + INDENT + "}\n}"


def encode_predict_response(outputs: dict[str, np.ndarray], format: str) -> bytes:
    """The response body for output arrays keyed by alias, in the request's ``format``.

    :data:`ROW`: ``{"predictions": [...]}``, one entry per batch element (an object keyed by
    alias when there are several outputs); :data:`COLUMNAR`: ``{"outputs": value}`` or
    ``{"outputs": {alias: value}}``. String outputs (object arrays of ``bytes``) are written
    as strings, or as ``{"b64": ...}`` when the alias ends in ``_bytes``.

    Raises:
        ServingStatusError: INVALID_ARGUMENT as upstream: no outputs, a scalar or inconsistent
            batch size in row format, an output dtype JSON cannot express.
    """
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    arrays = {name: np.asarray(array) for name, array in outputs.items()}
    if format == ROW:
        return to_bytes(_row_json(arrays))
    if format == COLUMNAR:
        return to_bytes(_columnar_json(arrays))
    raise invalid_argument("Invalid request format")
