"""Writing JSON as rapidjson 1.1.0's ``Writer``/``PrettyWriter`` and TF Serving's
``util/json_tensor.cc`` write it, byte for byte.

- :func:`quote`: a string literal escaped as ``Writer::String`` does (non-ASCII kept).
- :func:`float_tokens`: upstream's float format (``WriteDecimal``): 6 significant digits when
  they read back to the same value, else 9 (float) or 17 (double), ``.0`` appended to whole
  numbers, ``NaN``/``Infinity``/``-Infinity``.
- :func:`debug_string` (``JsonValueToDebugString``) and :func:`format_error` (``FormatError``):
  a parsed value in rapidjson's pretty layout (:data:`INDENT`, 4-space indents; arrays on one
  line), cut off at 256 bytes, as upstream's error texts quote it. Doubles are printed from
  Python's shortest repr in rapidjson's layout (a deliberate deviation: rapidjson's Grisu2 is
  almost always shortest too).

Pure functions; thread-safe.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ...core.status import ServingStatusError, invalid_argument
from .json_values import is_double, to_bytes

__all__ = ["INDENT", "debug_string", "float_tokens", "format_error", "quote"]

_MAX_DEBUG_STRING_BYTES = 256
INDENT = "    "
"""One level of rapidjson's ``PrettyWriter`` indentation."""


_STRING_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)}
_STRING_ESCAPES.update(
    {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
)


def quote(text: str) -> str:
    """A JSON string literal escaped as rapidjson's ``Writer::String`` does (non-ASCII kept)."""
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def _rapidjson_double(value: float) -> str:
    """A finite double as rapidjson's ``Writer::Double`` prints it (``1.0``, ``1e30``, ``1e-7``)."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    k = (int(exp_text) if exp_text else 0) - len(frac_part)
    stripped = all_digits.rstrip("0")
    k += len(all_digits) - len(stripped)
    digits = stripped.lstrip("0")
    length = len(digits)
    kk = length + k
    if k >= 0 and kk <= 21:
        text = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        text = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        text = "0." + "0" * -kk + digits
    elif length == 1:
        text = f"{digits}e{kk - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + text


def _scalar_token(value: Any) -> str | None:
    """The debug-string token of a scalar; ``None`` where rapidjson's writer fails (NaN, inf)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote(value)
    if is_double(value):
        number = float(value)
        return _rapidjson_double(number) if math.isfinite(number) else None
    return str(value)


_START_OBJECT, _END_OBJECT, _START_ARRAY, _END_ARRAY, _KEY, _SCALAR = range(6)


def _events(value: Any) -> Iterator[tuple[int, Any]]:
    """SAX events of ``value`` in document order, without recursion (values may nest deeply)."""
    stack: list[Iterator[tuple[int, Any]]] = [iter(((_SCALAR, value),))]
    while stack:
        event = next(stack[-1], None)
        if event is None:
            stack.pop()
            continue
        kind, item = event
        if kind == _SCALAR and isinstance(item, dict):
            yield _START_OBJECT, None
            stack.append(
                itertools.chain(
                    itertools.chain.from_iterable(
                        ((_KEY, key), (_SCALAR, member)) for key, member in item.items()
                    ),
                    ((_END_OBJECT, None),),
                )
            )
        elif kind == _SCALAR and isinstance(item, list):
            yield _START_ARRAY, None
            stack.append(
                itertools.chain(((_SCALAR, element) for element in item), ((_END_ARRAY, None),))
            )
        else:
            yield kind, item


def debug_string(value: Any) -> str:
    """``JsonValueToDebugString``: a ``PrettyWriter`` with single-line arrays, cut off once the
    output reaches 256 bytes (the event that crosses the limit is still written)."""
    parts: list[str] = []
    size = 0
    levels: list[list[Any]] = []  # [in_array, value_count] per open container

    def put(text: str) -> None:
        nonlocal size
        parts.append(text)
        size += len(text) if text.isascii() else len(to_bytes(text))

    for kind, item in _events(value):
        if size >= _MAX_DEBUG_STRING_BYTES:
            break
        if kind == _END_OBJECT:
            if levels.pop()[1]:
                put("\n" + INDENT * len(levels))
            put("}")
            continue
        if kind == _END_ARRAY:
            levels.pop()
            put("]")
            continue
        if levels:
            level = levels[-1]
            if level[0]:
                if level[1]:
                    put(", ")
            else:
                if level[1]:
                    put(",\n" if level[1] % 2 == 0 else ": ")
                else:
                    put("\n")
                if level[1] % 2 == 0:
                    put(INDENT * len(levels))
            level[1] += 1
        if kind == _START_OBJECT:
            levels.append([False, 0])
            put("{")
        elif kind == _START_ARRAY:
            levels.append([True, 0])
            put("[")
        else:
            token = quote(item) if kind == _KEY else _scalar_token(item)
            if token is None:
                break
            put(token)
    return "".join(parts)


def format_error(doc: Any, message: str) -> ServingStatusError:
    """Upstream's ``FormatError``: ``JSON Value: <doc> <message>``."""
    return invalid_argument(f"JSON Value: {debug_string(doc)} {message}")


def float_tokens(flat: np.ndarray) -> list[str]:
    """``WriteDecimal`` for every element of a 1-D float32 or float64 array."""
    double = flat.dtype == np.float64
    values = flat.tolist()
    finite = np.isfinite(flat)
    if double:
        # Doubles are rare in outputs: format, read back, and widen what does not round-trip.
        tokens = [f"{v:.6g}" for v in values]
        with np.errstate(invalid="ignore"):
            wide = np.flatnonzero(np.array(list(map(float, tokens))) != flat)
        for i in wide.tolist():
            tokens[i] = f"{values[i]:.17g}"
    else:
        tokens = _float32_tokens(flat, values)
    for i in np.flatnonzero(~finite).tolist():
        value = values[i]
        tokens[i] = "NaN" if value != value else ("-Infinity" if value < 0 else "Infinity")
    with np.errstate(invalid="ignore"):
        whole = np.flatnonzero(finite & (flat == np.trunc(flat)))
    for i in whole.tolist():
        token = tokens[i]
        if "." not in token and "e" not in token:
            tokens[i] = token + ".0"
    return tokens


def _float32_tokens(flat: np.ndarray, values: list[float]) -> list[str]:
    """``%.6g`` where six significant digits read back as the same float32, else ``%.9g``.

    Which of the two applies is decided with vectorised arithmetic (round to six digits, cast
    to float32, compare); values whose decision is too close to call in double precision (a
    rounding tie, a float32 midpoint, tiny or huge exponents) are formatted and read back.
    """
    wide = flat.astype(np.float64)
    magnitude = np.abs(wide)
    with np.errstate(all="ignore"):
        shift = 5 - np.floor(np.log10(magnitude))
        up = shift >= 0
        power = 10.0 ** np.abs(shift)
        scaled = np.where(up, wide * power, wide / power)
        rounded = np.round(scaled)
        back = np.where(up, rounded / power, rounded * power)
        six_ok = back.astype(np.float32) == flat
        half_ulp = np.abs(np.spacing(flat)).astype(np.float64) / 2
        unsure = (
            (np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6)
            | (np.abs(np.abs(back - wide) - half_ulp) <= 1e-6 * half_ulp)
            | ~((np.abs(rounded) >= 99999.5) & (np.abs(rounded) < 999999.5))
            | (np.abs(shift) > 22)
        )
    tokens = [
        format(v, ".6g" if ok else ".9g") for v, ok in zip(values, six_ok.tolist(), strict=True)
    ]
    for i in np.flatnonzero(unsure & np.isfinite(flat)).tolist():
        six = f"{values[i]:.6g}"
        tokens[i] = six if np.float32(float(six)) == flat[i] else f"{values[i]:.9g}"
    return tokens
