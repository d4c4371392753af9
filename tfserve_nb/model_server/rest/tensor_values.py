"""One JSON value (a scalar or a nest of lists) as the tensor it denotes: ``FillTensorProto``,
``AddValueToTensor``, ``GetDenseTensorShape`` and ``JsonDecodeBase64Object`` of TF Serving's
``util/json_tensor.cc``.

Arrays have the numpy dtype of the signature's dtype (strings: object arrays of ``bytes``, a JSON
string's bytes or a decoded ``{"b64": ...}``). The common case, a numeric value given as nested
lists of numbers, is converted with one ``np.asarray`` call after a type check of the leaves
(:func:`fast_tensor`, by :data:`FAST_KINDS`); only a value that fails that check is walked
element by element (:func:`careful_tensor`), to find the error upstream would report first.

Deliberate deviations (on unusual input): a tensor of rank above 64 (numpy's limit) fails with an
INVALID_ARGUMENT of our own; an empty tensor of a dtype numpy cannot hold (e.g. ``DT_BFLOAT16``)
fails with the UNIMPLEMENTED text a non-empty one gets upstream.

Failures raise :class:`~tfserve_nb.core.status.ServingStatusError` with upstream's texts.
Pure functions; thread-safe.
"""

from __future__ import annotations

import binascii
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...core.status import ServingStatusError, invalid_argument, unimplemented
from ...protocol.signature import NUMPY_DTYPES, dtype_string
from .json_values import INT64_MAX, INT64_MIN, UINT64_MAX, json_type, to_bytes
from .json_writer import debug_string

__all__ = [
    "FAST_KINDS",
    "careful_tensor",
    "decode_base64_object",
    "fast_tensor",
    "is_base64_object",
    "shape_string",
    "value_to_array",
]

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_UINT32_MAX = 2**32 - 1
_NUMPY_MAX_DIMS = 64


def is_base64_object(value: Any) -> bool:
    """``{"b64": "<string>"}`` and nothing else (``IsValBase64Object``)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


_BASE64_STRIP = bytes.maketrans(b"", b"")
_BASE64_RE = re.compile(rb"([A-Za-z0-9+/]*)([=.]*)")
_BASE64_PADDING = {0: 0, 2: 2, 3: 1}


def _base64_decode(text: str) -> bytes | None:
    """``absl::Base64Unescape``: whitespace anywhere, padding (``=`` or ``.``) optional but
    exact when present; ``None`` for invalid input."""
    data = to_bytes(text).translate(_BASE64_STRIP, b" \t\n\v\f\r")
    match = _BASE64_RE.fullmatch(data)
    if match is None:
        return None
    payload, padding = match.groups()
    expected = _BASE64_PADDING.get(len(payload) % 4)
    if expected is None or len(padding) not in (0, expected):
        return None
    return binascii.a2b_base64(payload + b"=" * expected)


def decode_base64_object(value: Any) -> bytes:
    """``JsonDecodeBase64Object``."""
    if not is_base64_object(value):
        raise invalid_argument(
            f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
        )
    decoded = _base64_decode(value["b64"])
    if decoded is None:
        raise invalid_argument("Unable to base64 decode")
    return decoded


def _type_error(value: Any, dtype: str) -> ServingStatusError:
    return invalid_argument(
        f"JSON Value: {debug_string(value)} Type: {json_type(value)} "
        f"is not of expected type: {dtype_string(dtype)}"
    )


def _integer_converter(low: int, high: int, dtype: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is int and low <= value <= high:
            return value
        raise _type_error(value, dtype)

    return convert


def _leaf_converter(dtype: str) -> Callable[[Any], Any]:
    """``AddValueToTensor`` for one dtype (plus base64 objects for strings): a function from a
    JSON leaf to the Python value stored, raising upstream's error."""
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):

        def convert_number(value: Any) -> Any:
            if isinstance(value, (int, float)) and type(value) is not bool:
                return value
            raise _type_error(value, dtype)

        return convert_number
    if dtype in ("DT_INT32", "DT_INT16", "DT_INT8", "DT_UINT8"):
        return _integer_converter(_INT32_MIN, _INT32_MAX, dtype)
    if dtype == "DT_INT64":
        return _integer_converter(INT64_MIN, INT64_MAX, dtype)
    if dtype == "DT_UINT32":
        return _integer_converter(0, _UINT32_MAX, dtype)
    if dtype == "DT_UINT64":
        return _integer_converter(0, UINT64_MAX, dtype)
    if dtype == "DT_BOOL":

        def convert_bool(value: Any) -> Any:
            if type(value) is bool:
                return value
            raise _type_error(value, dtype)

        return convert_bool
    if dtype == "DT_STRING":

        def convert_string(value: Any) -> Any:
            if isinstance(value, str):
                return to_bytes(value)
            if isinstance(value, dict):
                return decode_base64_object(value)
            raise _type_error(value, dtype)

        return convert_string

    def convert_other(value: Any) -> Any:
        if isinstance(value, dict):
            raise _type_error(value, dtype)
        raise unimplemented(
            f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_string(dtype)}"
        )

    return convert_other


def _dense_shape(value: Any) -> tuple[int, ...]:
    """``GetDenseTensorShape``: list lengths along the first elements."""
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(dims)


def shape_string(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _collect_leaves(value: Any, shape: tuple[int, ...], dtype: str) -> list[Any]:
    """``FillTensorProto``: check that ``value`` is a dense tensor of ``shape`` and convert its
    leaves in document order; the first offending node raises upstream's error."""
    convert = _leaf_converter(dtype)
    rank = len(shape)
    leaves: list[Any] = []
    stack: list[tuple[Iterator[Any], int]] = []
    node, level = value, 0
    while True:
        if isinstance(node, list):
            if level >= rank:
                raise invalid_argument(
                    f"Encountered list at unexpected level: {level} expected < {rank}"
                )
            if len(node) != shape[level]:
                raise invalid_argument(
                    f"Encountered list at unexpected size: {len(node)} at level: {level} "
                    f"expected size: {shape[level]}"
                )
            stack.append((iter(node), level + 1))
        else:
            if level != rank:
                raise invalid_argument(
                    f"JSON Value: {debug_string(node)} found at incorrect level: {level + 1} "
                    f"in the JSON DOM. Expected at level: {rank}"
                )
            leaves.append(convert(node))
        while stack:
            children, child_level = stack[-1]
            child = next(children, stack)
            if child is not stack:
                node, level = child, child_level
                break
            stack.pop()
        else:
            return leaves


def _array_from_leaves(leaves: list[Any], shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """The numpy array holding converted leaves (integers wrap like TF's ``int_val`` casts)."""
    if len(shape) > _NUMPY_MAX_DIMS:
        raise invalid_argument(
            f"Tensor of rank {len(shape)} exceeds the maximum rank {_NUMPY_MAX_DIMS}"
        )
    target = NUMPY_DTYPES.get(dtype)
    if target is None:  # only reached without leaves: a non-empty one failed to convert
        raise unimplemented(f"Conversion of JSON Value: [] to type: {dtype_string(dtype)}")
    if dtype == "DT_STRING":
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
        return array.reshape(shape)
    if target.kind in "iu" and dtype != "DT_UINT64":
        return np.array(leaves, dtype=np.int64).astype(target).reshape(shape)
    return np.array(leaves, dtype=target).reshape(shape)


def careful_tensor(value: Any, dtype: str) -> tuple[np.ndarray, tuple[int, ...], int]:
    """One JSON value as a tensor, checked node by node: (array, shape, number of leaves)."""
    shape = _dense_shape(value)
    leaves = _collect_leaves(value, shape, dtype)
    return _array_from_leaves(leaves, shape, dtype), shape, len(leaves)


FAST_KINDS: dict[str, tuple[frozenset[type], np.dtype, int | None, int | None]] = {
    "DT_FLOAT": (frozenset((float, int)), np.dtype(np.float32), None, None),
    "DT_DOUBLE": (frozenset((float, int)), np.dtype(np.float64), None, None),
    "DT_INT8": (frozenset((int,)), np.dtype(np.int64), _INT32_MIN, _INT32_MAX),
    "DT_INT16": (frozenset((int,)), np.dtype(np.int64), _INT32_MIN, _INT32_MAX),
    "DT_INT32": (frozenset((int,)), np.dtype(np.int64), _INT32_MIN, _INT32_MAX),
    "DT_UINT8": (frozenset((int,)), np.dtype(np.int64), _INT32_MIN, _INT32_MAX),
    "DT_UINT32": (frozenset((int,)), np.dtype(np.int64), 0, _UINT32_MAX),
    "DT_INT64": (frozenset((int,)), np.dtype(np.int64), None, None),
    "DT_UINT64": (frozenset((int,)), np.dtype(np.uint64), None, None),
    "DT_BOOL": (frozenset((bool,)), np.dtype(np.bool_), None, None),
}


def fast_tensor(value: Any, dtype: str) -> np.ndarray | None:
    """``value`` as an array in one ``np.asarray`` call, or ``None`` when it is not a dense nest
    of lists whose leaves all have the JSON kind ``dtype`` accepts (then the careful path
    decides what is wrong)."""
    kind = FAST_KINDS.get(dtype)
    if kind is None:
        return None
    allowed, via, low, high = kind
    try:
        with np.errstate(over="ignore"):  # float32 overflow gives inf, as upstream's GetFloat()
            array = np.asarray(value, dtype=via)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.ndim == 0:
        leaves: Any = (value,)
    else:
        leaves = value
        for _ in range(array.ndim - 1):
            leaves = itertools.chain.from_iterable(leaves)
    try:
        if not set(map(type, leaves)) <= allowed:
            return None
    except TypeError:  # a scalar where numpy saw a list: not dense after all
        return None
    if low is not None and array.size and (array.min() < low or array.max() > high):
        return None
    target = NUMPY_DTYPES[dtype]
    return array if array.dtype == target else array.astype(target)


def value_to_array(value: Any, dtype: str) -> np.ndarray:
    """One JSON value (a scalar or a nest of lists) as the tensor it denotes."""
    fast = fast_tensor(value, dtype)
    if fast is not None:
        return fast
    return careful_tensor(value, dtype)[0]
