"""The REST JSON codec: request bodies to numpy arrays, results to response bodies.

This is TF Serving's ``tensorflow_serving/util/json_tensor.cc`` (with the rapidjson 1.1.0 reader
and ``PrettyWriter`` it uses) redone in Python, so that clients see the same bytes and the same
error texts as from ``tensorflow_model_server``:

- :func:`parse_json` parses like rapidjson with ``kParseIterativeFlag | kParseNanAndInfFlag |
  kParseStopWhenDoneFlag``: ``NaN``/``Infinity``/``-Infinity``/``Inf`` literals are accepted, a
  leading UTF-8 byte order mark and anything after the top-level value are ignored, strings are
  taken as raw bytes (no UTF-8 validation), nesting depth is unlimited, and a malformed body fails
  with ``JSON Parse error: <rapidjson message> at offset: <byte offset>``. Python's C ``json``
  parses the well-formed bodies; a faithful port of rapidjson's iterative reader takes over for
  bodies that ``json`` rejects or that it would read differently (surrogate escapes, numbers too
  big for a double, nesting deeper than Python's recursion limit).
- :func:`decode_predict_request` implements ``FillPredictRequestFromJson``: the ``instances``
  (row) and ``inputs`` (columnar) formats, dtypes taken from the signature, every error text.
  The common case, a numeric input given as nested lists of numbers, is converted with one
  ``np.asarray`` call after a type check of the leaves; only a request that fails that check is
  walked element by element, to find the error upstream would report first.
- Large bodies (64 KiB and more) take a third path for their large numeric arrays (the value of
  ``instances``, of ``inputs`` or of an input in it): :func:`parse_json` checks such an array's
  bytes in chunks with numpy (a dense nest of plain JSON numbers; the shape falls out of the
  check) and leaves it unconverted; :func:`decode_predict_request` converts it chunk by chunk
  straight into the tensor, without a Python object per number (about the tensor's size in
  memory, not 30 bytes per number) and letting other threads run between chunks (Python's
  ``json`` holds the interpreter lock for a whole body). An array this path cannot prove it
  reads exactly as the regular path is left to the regular path, so results and errors are the
  same; see "Large arrays of numbers" below.
- :func:`encode_predict_response`, :func:`encode_classify_results`, :func:`encode_regress_results`
  and :func:`encode_error` write what ``MakeJsonFromTensors``, ``MakeJsonFromClassificationResult``,
  ``MakeJsonFromRegressionResult`` and ``MakeJsonFromStatus`` write, byte for byte, including
  rapidjson's pretty layout (4-space indents, arrays on one line in row format) and upstream's
  float format: 6 significant digits when they read back to the same value, else 9 (float) or 17
  (double), ``.0`` appended to whole numbers, ``NaN``/``Infinity``/``-Infinity``.

Error messages that wrap another status (``Failed to process element: ...Error: <status>``) print
the inner status as ``absl::Status::ToString()`` does in TF Serving 2.x: ``INVALID_ARGUMENT: ...``.

Deliberate deviations (all on malformed or unusual input):

- Numbers are converted to doubles with correct rounding (rapidjson's default "normal precision"
  conversion may differ in the last bit of a double; float32 results are the same in practice).
- In error texts, doubles are printed from Python's shortest repr in rapidjson's layout
  (rapidjson's Grisu2 is almost always shortest too).
- An object with a repeated key keeps the last value (rapidjson's lookups find the first).
- Signature inputs and response outputs are visited in sorted alias order (upstream visits a
  protobuf map, whose order is unspecified): it decides which of several errors is reported
  and the key order of multi-output responses.
- A request tensor of rank above 64 (numpy's limit) fails with an INVALID_ARGUMENT of our own;
  an empty tensor of a dtype numpy cannot hold (e.g. ``DT_BFLOAT16``) fails with the
  UNIMPLEMENTED text a non-empty one gets upstream.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tfserve_nb.core.status import ServingStatusError, invalid_argument, unimplemented
from tfserve_nb.protocol.signature import NUMPY_DTYPES, Signature

if TYPE_CHECKING:
    from tensorflow_serving.apis.classification_pb2 import ClassificationResult
    from tensorflow_serving.apis.input_pb2 import Input
    from tensorflow_serving.apis.regression_pb2 import RegressionResult

__all__ = [
    "COLUMNAR",
    "ROW",
    "decode_examples",
    "decode_predict_request",
    "encode_classify_results",
    "encode_error",
    "encode_predict_response",
    "encode_regress_results",
    "parse_json",
    "signature_name",
]

ROW = "row"
"""Request format of ``{"instances": [...]}``; answered with ``{"predictions": ...}``."""
COLUMNAR = "columnar"
"""Request format of ``{"inputs": ...}``; answered with ``{"outputs": ...}``."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_UINT32_MAX = 2**32 - 1
_MAX_DEBUG_STRING_BYTES = 256
_NUMPY_MAX_DIMS = 64
_INDENT = "    "


def _dtype_string(dtype: str) -> str:
    """TensorFlow's ``DataTypeString``: ``DT_FLOAT`` -> ``float``, ``DT_HALF`` -> ``half``."""
    return dtype.removeprefix("DT_").lower()


def _to_bytes(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates from undecodable input bytes become those bytes."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _status_string(error: ServingStatusError) -> str:
    """``absl::Status::ToString()``: ``INVALID_ARGUMENT: message``."""
    return f"{error.code.name}: {error.message}"


# --------------------------------------------------------------------------------------------
# Writing: rapidjson's string escapes, number formats and PrettyWriter layout.

_STRING_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)}
_STRING_ESCAPES.update(
    {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
)


def _quote(text: str) -> str:
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


def _json_type(value: Any) -> str:
    """rapidjson's type name of a parsed value (``JsonTypeString``)."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_double(value: Any) -> bool:
    """Whether rapidjson holds this parsed number as a double (not as a 64-bit integer)."""
    return isinstance(value, float) or not _INT64_MIN <= value <= _UINT64_MAX


def _scalar_token(value: Any) -> str | None:
    """The debug-string token of a scalar; ``None`` where rapidjson's writer fails (NaN, inf)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if _is_double(value):
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


def _debug_string(value: Any) -> str:
    """``JsonValueToDebugString``: a ``PrettyWriter`` with single-line arrays, cut off once the
    output reaches 256 bytes (the event that crosses the limit is still written)."""
    parts: list[str] = []
    size = 0
    levels: list[list[Any]] = []  # [in_array, value_count] per open container

    def put(text: str) -> None:
        nonlocal size
        parts.append(text)
        size += len(text) if text.isascii() else len(_to_bytes(text))

    for kind, item in _events(value):
        if size >= _MAX_DEBUG_STRING_BYTES:
            break
        if kind == _END_OBJECT:
            if levels.pop()[1]:
                put("\n" + _INDENT * len(levels))
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
                    put(_INDENT * len(levels))
            level[1] += 1
        if kind == _START_OBJECT:
            levels.append([False, 0])
            put("{")
        elif kind == _START_ARRAY:
            levels.append([True, 0])
            put("[")
        else:
            token = _quote(item) if kind == _KEY else _scalar_token(item)
            if token is None:
                break
            put(token)
    return "".join(parts)


def _format_error(doc: Any, message: str) -> ServingStatusError:
    """Upstream's ``FormatError``: ``JSON Value: <doc> <message>``."""
    return invalid_argument(f"JSON Value: {_debug_string(doc)} {message}")


# --------------------------------------------------------------------------------------------
# Parsing.


class _ParseError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


_ERR_EMPTY = "The document is empty."
_ERR_VALUE = "Invalid value."
_ERR_MISS_NAME = "Missing a name for object member."
_ERR_MISS_COLON = "Missing a colon after a name of object member."
_ERR_MISS_COMMA_CURLY = "Missing a comma or '}' after an object member."
_ERR_MISS_COMMA_SQUARE = "Missing a comma or ']' after an array element."
_ERR_HEX = "Incorrect hex digit after \\u escape in string."
_ERR_SURROGATE = "The surrogate pair in string is invalid."
_ERR_ESCAPE = "Invalid escape character in string."
_ERR_QUOTE = "Missing a closing quotation mark in string."
_ERR_TOO_BIG = "Number too big to be stored in double."
_ERR_FRACTION = "Miss fraction part in number."
_ERR_EXPONENT = "Miss exponent in number."

# Iterative parsing states and tokens, numbered as in rapidjson's reader.h.
(
    _S_START,
    _S_FINISH,
    _S_ERROR,
    _S_OBJECT_INITIAL,
    _S_MEMBER_KEY,
    _S_KEY_VALUE_DELIMITER,
    _S_MEMBER_VALUE,
    _S_MEMBER_DELIMITER,
    _S_OBJECT_FINISH,
    _S_ARRAY_INITIAL,
    _S_ELEMENT,
    _S_ELEMENT_DELIMITER,
    _S_ARRAY_FINISH,
    _S_VALUE,
) = range(14)
_T_LBRACKET, _T_RBRACKET, _T_LCURLY, _T_RCURLY, _T_COMMA, _T_COLON = range(6)
_T_STRING, _T_FALSE, _T_TRUE, _T_NULL, _T_NUMBER = range(6, 11)
_TOKENS = {
    ord("["): _T_LBRACKET,
    ord("]"): _T_RBRACKET,
    ord("{"): _T_LCURLY,
    ord("}"): _T_RCURLY,
    ord(","): _T_COMMA,
    ord(":"): _T_COLON,
    ord('"'): _T_STRING,
    ord("f"): _T_FALSE,
    ord("t"): _T_TRUE,
    ord("n"): _T_NULL,
}
_E = _S_ERROR
_VALUE_ROW = (_S_VALUE,) * 5
_TRANSITIONS: tuple[tuple[int, ...], ...] = (
    (_S_ARRAY_INITIAL, _E, _S_OBJECT_INITIAL, _E, _E, _E, *_VALUE_ROW),  # start
    (_E,) * 11,  # finish
    (_E,) * 11,  # error
    (_E, _E, _E, _S_OBJECT_FINISH, _E, _E, _S_MEMBER_KEY, _E, _E, _E, _E),  # object initial
    (_E, _E, _E, _E, _E, _S_KEY_VALUE_DELIMITER, _E, _E, _E, _E, _E),  # member key
    (_S_ARRAY_INITIAL, _E, _S_OBJECT_INITIAL, _E, _E, _E, *(_S_MEMBER_VALUE,) * 5),  # k/v delim
    (_E, _E, _E, _S_OBJECT_FINISH, _S_MEMBER_DELIMITER, _E, _E, _E, _E, _E, _E),  # member value
    (_E, _E, _E, _S_OBJECT_FINISH, _E, _E, _S_MEMBER_KEY, _E, _E, _E, _E),  # member delimiter
    (_E,) * 11,  # object finish
    (_S_ARRAY_INITIAL, _S_ARRAY_FINISH, _S_OBJECT_INITIAL, _E, _E, _E, *(_S_ELEMENT,) * 5),
    (_E, _S_ARRAY_FINISH, _E, _E, _S_ELEMENT_DELIMITER, _E, _E, _E, _E, _E, _E),  # element
    (_S_ARRAY_INITIAL, _S_ARRAY_FINISH, _S_OBJECT_INITIAL, _E, _E, _E, *(_S_ELEMENT,) * 5),
    (_E,) * 11,  # array finish
    (_E,) * 11,  # value
)
_STATE_ERRORS = {
    _S_START: _ERR_EMPTY,
    _S_OBJECT_INITIAL: _ERR_MISS_NAME,
    _S_MEMBER_DELIMITER: _ERR_MISS_NAME,
    _S_MEMBER_KEY: _ERR_MISS_COLON,
    _S_MEMBER_VALUE: _ERR_MISS_COMMA_CURLY,
    _S_KEY_VALUE_DELIMITER: _ERR_VALUE,
    _S_ARRAY_INITIAL: _ERR_VALUE,
    _S_ELEMENT_DELIMITER: _ERR_VALUE,
    _S_ELEMENT: _ERR_MISS_COMMA_SQUARE,
}
_SIMPLE_ESCAPES = {
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
}
_WHITESPACE_RE = re.compile(rb"[ \t\n\r]*")
_PLAIN_STRING_RE = re.compile(rb'[^"\\\x00-\x1f]*')
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")


class _RapidJsonReader:
    """rapidjson 1.1.0's ``IterativeParse`` over a byte buffer, building Python values.

    Offsets in errors are byte offsets, as ``GetErrorOffset()`` reports them. A NUL byte reads as
    the end of input, as in rapidjson's ``MemoryStream``.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else 0

    def consume(self, char: str) -> bool:
        if self.peek() == ord(char):
            self.pos += 1
            return True
        return False

    def parse(self) -> Any:
        for bom_byte in (0xEF, 0xBB, 0xBF):
            if self.peek() == bom_byte:
                self.pos += 1
        # Each frame: [container, state to restore on close, pending member key].
        frames: list[list[Any]] = []
        root: Any = None
        state = _S_START
        self.pos = _WHITESPACE_RE.match(self.data, self.pos).end()  # type: ignore[union-attr]
        while (char := self.peek()) != 0:
            source = state
            state = _TRANSITIONS[source][_TOKENS.get(char, _T_NUMBER)]
            if state == _S_ERROR:
                raise _ParseError(_STATE_ERRORS[source], self.pos)
            if state in (_S_OBJECT_INITIAL, _S_ARRAY_INITIAL):
                container: Any = {} if state == _S_OBJECT_INITIAL else []
                if source in (_S_ARRAY_INITIAL, _S_ELEMENT_DELIMITER):
                    frames[-1][0].append(container)
                    restore = _S_ELEMENT
                elif source == _S_KEY_VALUE_DELIMITER:
                    frames[-1][0][frames[-1][2]] = container
                    restore = _S_MEMBER_VALUE
                else:
                    root, restore = container, source
                frames.append([container, restore, None])
                self.pos += 1
            elif state == _S_MEMBER_KEY:
                frames[-1][2] = self.parse_string()
            elif state == _S_MEMBER_VALUE:
                frames[-1][0][frames[-1][2]] = self.parse_value()
            elif state == _S_ELEMENT:
                frames[-1][0].append(self.parse_value())
            elif state in (_S_KEY_VALUE_DELIMITER, _S_MEMBER_DELIMITER, _S_ELEMENT_DELIMITER):
                self.pos += 1
            elif state in (_S_OBJECT_FINISH, _S_ARRAY_FINISH):
                if source == _S_MEMBER_DELIMITER:
                    raise _ParseError(_ERR_MISS_NAME, self.pos)
                if source == _S_ELEMENT_DELIMITER:
                    raise _ParseError(_ERR_VALUE, self.pos)
                state = frames.pop()[1]
                if state == _S_START:
                    state = _S_FINISH
                self.pos += 1
            else:  # a scalar at the top level
                root = self.parse_value()
                state = _S_FINISH
            if state == _S_FINISH:
                return root
            self.pos = _WHITESPACE_RE.match(self.data, self.pos).end()  # type: ignore[union-attr]
        raise _ParseError(_STATE_ERRORS[state], self.pos)

    def parse_value(self) -> Any:
        char = self.peek()
        if char == ord("n"):
            return self.parse_literal("null", None)
        if char == ord("t"):
            return self.parse_literal("true", True)
        if char == ord("f"):
            return self.parse_literal("false", False)
        if char == ord('"'):
            return self.parse_string()
        return self.parse_number()

    def parse_literal(self, word: str, value: Any) -> Any:
        self.pos += 1
        for char in word[1:]:
            if not self.consume(char):
                raise _ParseError(_ERR_VALUE, self.pos)
        return value

    def parse_hex4(self, escape_offset: int) -> int:
        codepoint = 0
        for _ in range(4):
            char = self.peek()
            if char not in _HEX_DIGITS:
                raise _ParseError(_ERR_HEX, escape_offset)
            codepoint = codepoint * 16 + int(chr(char), 16)
            self.pos += 1
        return codepoint

    def parse_string(self) -> str:
        self.pos += 1  # the opening quote
        out = bytearray()
        data = self.data
        while True:
            end = _PLAIN_STRING_RE.match(data, self.pos).end()  # type: ignore[union-attr]
            out += data[self.pos : end]
            self.pos = end
            char = self.peek()
            if char == ord("\\"):
                escape_offset = self.pos
                self.pos += 1
                escaped = self.peek()
                if escaped in _SIMPLE_ESCAPES:
                    self.pos += 1
                    out += _SIMPLE_ESCAPES[escaped]
                elif escaped == ord("u"):
                    self.pos += 1
                    codepoint = self.parse_hex4(escape_offset)
                    if 0xD800 <= codepoint <= 0xDBFF:
                        if not (self.consume("\\") and self.consume("u")):
                            raise _ParseError(_ERR_SURROGATE, escape_offset)
                        low = self.parse_hex4(escape_offset)
                        if not 0xDC00 <= low <= 0xDFFF:
                            raise _ParseError(_ERR_SURROGATE, escape_offset)
                        codepoint = (((codepoint - 0xD800) << 10) | (low - 0xDC00)) + 0x10000
                    out += chr(codepoint).encode("utf-8", "surrogatepass")
                else:
                    raise _ParseError(_ERR_ESCAPE, escape_offset)
            elif char == ord('"'):
                self.pos += 1
                return out.decode("utf-8", "surrogateescape")
            else:  # a control character; NUL is the end of input
                raise _ParseError(_ERR_QUOTE if char == 0 else _ERR_ESCAPE, self.pos)

    def take_digits(self) -> str:
        start = self.pos
        while self.peek() in _DIGITS:
            self.pos += 1
        return self.data[start : self.pos].decode()

    def parse_number(self) -> Any:
        """``ParseNumber``: the value, or rapidjson's error at rapidjson's offset."""
        start = self.pos
        minus = self.consume("-")
        int_digits = ""
        special: float | None = None
        if self.peek() == ord("0"):
            self.pos += 1
            int_digits = "0"
        elif self.peek() in _DIGITS:
            int_digits = self.take_digits()
        elif self.peek() in (ord("I"), ord("N")):
            if self.consume("N") and self.consume("a") and self.consume("N"):
                special = math.nan
            elif self.consume("I") and self.consume("n") and self.consume("f"):
                special = -math.inf if minus else math.inf
                if self.peek() == ord("i") and not all(map(self.consume, "inity")):
                    raise _ParseError(_ERR_VALUE, self.pos)
            else:
                raise _ParseError(_ERR_VALUE, self.pos)
        else:
            raise _ParseError(_ERR_VALUE, self.pos)
        magnitude = int(int_digits or "0")
        use_double = magnitude > (2**63 if minus else _UINT64_MAX)
        if use_double:
            # rapidjson accumulates the digits past 64 bits in a double, failing near DBL_MAX.
            accumulated = 0.0
            for digit in int_digits:
                if accumulated >= 1.7976931348623157e307:
                    raise _ParseError(_ERR_TOO_BIG, start)
                accumulated = accumulated * 10 + int(digit)
        frac_digits = ""
        exp_frac = 0
        if self.consume("."):
            if self.peek() not in _DIGITS:
                raise _ParseError(_ERR_FRACTION, self.pos)
            frac_digits = self.take_digits()
            exp_frac = self.significant_fraction_digits(int_digits, frac_digits, use_double)
            use_double = True
        exp_digits = ""
        exp_sign = ""
        if self.consume("e") or self.consume("E"):
            use_double = True
            if self.consume("+"):
                pass
            elif self.consume("-"):
                exp_sign = "-"
            if self.peek() not in _DIGITS:
                raise _ParseError(_ERR_EXPONENT, self.pos)
            exp_digits = self.take_digits()
            if not exp_sign and int(exp_digits) > 308 - exp_frac:
                raise _ParseError(_ERR_TOO_BIG, start)
        if not use_double:
            if special is not None:
                return special
            return -magnitude if minus else magnitude
        if special is not None:
            # rapidjson carries on after NaN/Inf with a significand of 0 ("NaN.5" reads 0.5).
            int_digits = "0"
        sign = "-" if minus else ""
        return float(f"{sign}{int_digits}.{frac_digits or '0'}e{exp_sign}{exp_digits or 0}")

    @staticmethod
    def significant_fraction_digits(int_digits: str, frac_digits: str, use_double: bool) -> int:
        """rapidjson's ``expFrac`` (minus the fraction digits kept in the significand), which
        bounds the exponent allowed before "Number too big"."""
        if use_double:  # past 64 bits rapidjson already counts 18 or more significant digits
            significant = 18
        else:
            significant = max(len(int_digits.lstrip("0")) - 1, 0)
            significand = int(int_digits or "0")
            kept = 0
            for digit in frac_digits:
                if significand > 2**53 - 1:
                    break
                significand = significand * 10 + int(digit)
                kept += 1
                if significand:
                    significant += 1
            frac_digits = frac_digits[kept:]
            exp_frac = -kept
            for digit in frac_digits:
                if significant >= 17:
                    break
                exp_frac -= 1
                if digit != "0" or significand:
                    significant += 1
            return exp_frac
        exp_frac = 0
        for _ in frac_digits:
            if significant >= 17:
                break
            exp_frac -= 1
            significant += 1
        return exp_frac


_DECODER = json.JSONDecoder()
# Bodies Python's json reads differently from rapidjson go to the port: surrogate escapes
# (rapidjson rejects lone high surrogates and keeps lone low ones as raw bytes), and numbers that
# may not fit a double (rapidjson fails where Python gives inf or a big int). The checks are cheap
# byte scans; a false alarm only costs the slower parse.
_SURROGATE_ESCAPE_RE = re.compile(rb"\\u[dD][89a-fA-F]")
_BIG_EXPONENT_RES = (re.compile(rb"e\+?[0-9]{3}"), re.compile(rb"E\+?[0-9]{3}"))
_NUMBER_CHARS = frozenset(b"0123456789.-")
_VALUE_PRECEDERS = frozenset(b"[,: \t\n\r")
_DIGITS_ONLY = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_TOO_MANY_DIGITS = b"0" * 309


def _needs_rapidjson(body: bytes) -> bool:
    """Whether ``body`` may hold a surrogate escape or a number too big for a double."""
    if b"\\u" in body and _SURROGATE_ESCAPE_RE.search(body):
        return True
    for pattern in _BIG_EXPONENT_RES:
        for match in pattern.finditer(body):
            start = match.start()
            while start and body[start - 1] in _NUMBER_CHARS:
                start -= 1
            if start < match.start() and (start == 0 or body[start - 1] in _VALUE_PRECEDERS):
                return True
    return _TOO_MANY_DIGITS in body.translate(_DIGITS_ONLY)


def _parse_document(body: bytes) -> Any:
    """The JSON value of ``body`` as rapidjson reads it (any type); raises its parse error."""
    doc: Any
    try:
        if _needs_rapidjson(body):
            raise ValueError("read by the rapidjson port")
        text = body.decode("utf-8", "surrogateescape")
        start = len(text) - len(text.lstrip(" \t\n\r"))
        doc = _DECODER.raw_decode(text, start)[0]
    except (ValueError, RecursionError):
        try:
            doc = _RapidJsonReader(body).parse()
        except _ParseError as exc:
            raise invalid_argument(
                f"JSON Parse error: {exc.message} at offset: {exc.offset}"
            ) from None
    return doc


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a request body as TF Serving's ``ParseJson`` does; the top level must be an object.

    Strings come back as ``str``; bytes that are not valid UTF-8 are kept as lone surrogates
    (``surrogateescape``), so encoding with ``surrogateescape`` gives back the exact bytes.

    In a large body, a large array of numbers may be left unconverted (see :class:`_NumericSpan`):
    :func:`signature_name`, :func:`decode_predict_request` and :func:`decode_examples` read such
    a document exactly as the fully parsed one.

    Raises:
        ServingStatusError: INVALID_ARGUMENT, ``JSON Parse error: <reason> at offset: <N>`` (or
            ``JSON Parse error: The document is empty`` for an empty body), or
            ``JSON Value: <value> Is not object``.
    """
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    doc = _parse_with_spans(body) if len(body) >= _SPAN_MIN_BYTES else None
    if doc is None:
        doc = _parse_document(body)
    if not isinstance(doc, dict):
        raise _format_error(doc, "Is not object")
    return doc


# --------------------------------------------------------------------------------------------
# Large arrays of numbers, read without a Python object per number.
#
# A body of many numbers costs 32 bytes or more per number as Python floats (the object and its
# list slot), and Python's ``json`` holds the interpreter lock for the whole parse. So before a
# large body is parsed, each large array of numbers in it (the value of an object member) is
# checked in chunks with numpy: its bytes must form a JSON array in which every number is at the
# same depth, the arrays at each depth have the same length (a dense tensor; the shape comes out
# of the check), and every number is a plain JSON number that Python's ``json`` and the rapidjson
# port both read as ``int``/``float`` of its text (no NaN/Infinity, at most 18 integer digits,
# at most 2 exponent digits, at most 40 characters). Such an array is replaced in the body by a
# placeholder (a one-string array naming it with a random nonce) and the rest of the body is
# parsed as usual: if that succeeds and a placeholder comes back in a value position, the full
# body parses to the same document with the array there (the array is valid JSON; a placeholder
# that was not a value, e.g. inside a string, makes the parse fail). Otherwise, the whole body is
# parsed as before, which gives the same result or the same error as always.
#
# The arrays are converted once the signature gives their dtype, chunk by chunk, with numpy's
# text reader (Python's correctly rounded string-to-double, not holding the interpreter lock) into
# the final array. A conversion that would not match what the regular path returns (a float where
# an integer dtype is expected, an integer out of the dtype's range, a dtype that takes no
# numbers) is not attempted: the array is parsed as before and the regular path decides.

_SPAN_MIN_BYTES = 64 * 1024
"""Bodies and arrays smaller than this are parsed as before."""
_CHUNK_BYTES = 256 * 1024
"""Bytes of an array checked or converted in one step (a few milliseconds of numpy calls, after
which other threads may take the interpreter lock)."""
_FIRST_CHUNK_BYTES = 64 * 1024
"""Bytes checked in an array's first step (an array that turns out short costs little)."""
_MAX_CANDIDATES = 64
"""Member values starting with ``[`` looked at in one body."""
_MAX_SPAN_RANK = 32
_MAX_NUMBER_CHARS = 40
_MAX_INTEGER_DIGITS = 18
_MAX_EXPONENT_DIGITS = 2

# Character classes of the bytes of a numeric array.
(
    _C_OTHER,
    _C_ZERO,
    _C_DIGIT,
    _C_MINUS,
    _C_PLUS,
    _C_DOT,
    _C_EXP,
    _C_OPEN,
    _C_CLOSE,
    _C_COMMA,
    _C_SPACE,
) = range(11)
_CLASS_OF = np.zeros(256, np.uint8)
_CLASS_OF[list(b"123456789")] = _C_DIGIT
for _byte, _class in (
    (b"0", _C_ZERO),
    (b"-", _C_MINUS),
    (b"+", _C_PLUS),
    (b".", _C_DOT),
    (b"e", _C_EXP),
    (b"E", _C_EXP),
    (b"[", _C_OPEN),
    (b"]", _C_CLOSE),
    (b",", _C_COMMA),
    (b" ", _C_SPACE),
    (b"\t", _C_SPACE),
    (b"\n", _C_SPACE),
    (b"\r", _C_SPACE),
):
    _CLASS_OF[_byte[0]] = _class


_CLASS_BYTES = bytes(_CLASS_OF.tolist())
"""``_CLASS_OF`` as a ``bytes.translate`` table."""
_WHITESPACE = b" \t\n\r"
_U1, _U5 = np.uint8(1), np.uint8(5)  # (c - 1 <= 5: a number's class; c - 5 <= 1: '.', 'e', 'E')
_IS_SIGN = np.zeros(16, bool)
_IS_SIGN[[_C_MINUS, _C_PLUS]] = True
# Which class may follow which (whitespace taken out first; "other" bytes nowhere). With these,
# between two numbers there is ``]*,[*`` and a number is ``-?D[DeE.+-]*D`` with signs only at
# its start or after the exponent mark, dots and exponent marks between digits; what this
# leaves open (one dot, then at most one exponent mark; no leading zero) is checked separately.
_NUMBER_END = (_C_ZERO, _C_DIGIT, _C_DOT, _C_EXP, _C_CLOSE, _C_COMMA)
_VALUE_START = (_C_OPEN, _C_ZERO, _C_DIGIT, _C_MINUS)
_FOLLOWERS = {
    _C_ZERO: _NUMBER_END,
    _C_DIGIT: _NUMBER_END,
    _C_MINUS: (_C_ZERO, _C_DIGIT),
    _C_PLUS: (_C_ZERO, _C_DIGIT),
    _C_DOT: (_C_ZERO, _C_DIGIT),
    _C_EXP: (_C_ZERO, _C_DIGIT, _C_MINUS, _C_PLUS),
    _C_OPEN: _VALUE_START,
    _C_CLOSE: (_C_CLOSE, _C_COMMA),
    _C_COMMA: _VALUE_START,
}
_PAIR_OK = np.zeros(256, bool)
for _first, _nexts in _FOLLOWERS.items():
    for _next in _nexts:
        _PAIR_OK[_first * 16 + _next] = True
_CONVERSION_DELETE = b"[] \t\n\r"
_NONCE_LETTERS = str.maketrans("0123456789abcdef", "ghijklmnopqrstuv")
_INDEX_LETTERS = str.maketrans("0123456789", "ghijklmnop")


_TENSOR_ALIGNMENT = 64
"""TensorFlow feeds a numpy array aligned to this (``EIGEN_MAX_ALIGN_BYTES``) without a copy."""


def _aligned_empty(count: int, dtype: np.dtype) -> np.ndarray:
    """``np.empty(count, dtype)`` starting at a multiple of :data:`_TENSOR_ALIGNMENT` bytes
    (numpy aligns large arrays to 16): the session then reads the request's tensor in place
    instead of copying it."""
    size = count * dtype.itemsize
    raw = np.empty(size + _TENSOR_ALIGNMENT, np.uint8)
    offset = -raw.ctypes.data % _TENSOR_ALIGNMENT
    return raw[offset : offset + size].view(dtype)


class _NumericSpan:
    """A dense array of JSON numbers in a request body, checked but not converted.

    ``chunks`` are ``(start, end, count)``: body bytes holding ``count`` numbers separated by
    commas, brackets and whitespace (a chunk ends before a comma). ``integers`` says whether every
    number is an integer literal; ``negative_zeros`` are the flat indices of ``-0`` literals
    (integers, which the regular path reads as ``0``; numpy's float reader gives ``-0.0``).
    """

    __slots__ = ("body", "chunks", "end", "integers", "negative_zeros", "shape", "start")

    def __init__(
        self,
        body: bytes,
        start: int,
        end: int,
        shape: tuple[int, ...],
        integers: bool,
        chunks: list[tuple[int, int, int]],
        negative_zeros: np.ndarray,
    ) -> None:
        self.body = body
        self.start = start
        self.end = end
        self.shape = shape
        self.integers = integers
        self.chunks = chunks
        self.negative_zeros = negative_zeros

    def value(self) -> Any:
        """The array as the regular parse reads it: nested lists of ``int`` and ``float``."""
        return json.loads(self.body[self.start : self.end])

    def to_array(self, dtype: str) -> np.ndarray | None:
        """The tensor of ``dtype`` that :func:`_value_to_array` makes of :meth:`value`, or
        ``None`` where the regular path must decide (it may fail)."""
        kind = _FAST_KINDS.get(dtype)
        if kind is None or dtype == "DT_BOOL":
            return None
        allowed, _, low, high = kind
        floating = float in allowed
        if not (floating or self.integers):
            return None
        out = _aligned_empty(math.prod(self.shape), NUMPY_DTYPES[dtype])
        offset = 0
        for start, end, count in self.chunks:
            text = self.body[start:end].translate(None, _CONVERSION_DELETE)
            values = np.fromstring(text, np.int64 if self.integers else np.float64, sep=",")
            if values.size != count:
                return None
            if not floating:
                if dtype == "DT_UINT64" and values.min() < 0:
                    return None
                if low is not None and (values.min() < low or values.max() > high):
                    return None
            elif self.integers:
                values = values.astype(np.float64)  # as Python's int -> float, then float32
            with np.errstate(over="ignore"):  # float32 overflow gives inf, as the regular path
                out[offset : offset + count] = values
            offset += count
        if floating and not self.integers and self.negative_zeros.size:
            out[self.negative_zeros] = 0
        return out.reshape(self.shape)


class _SpanDoc(dict):  # type: ignore[type-arg]
    """A parsed body holding :class:`_NumericSpan` values; ``spans`` says where they are."""

    spans: list[tuple[Any, Any, _NumericSpan]]


def _materialize(doc: Any) -> None:
    """Replace ``doc``'s unconverted arrays by their values: it becomes the regular parse."""
    if isinstance(doc, _SpanDoc):
        for container, key, span in doc.spans:
            if container[key] is span:
                container[key] = span.value()
        doc.spans = []


class _Chunk(NamedTuple):
    """What :func:`_check_chunk` found in a chunk of a numeric array."""

    end: int
    """Where the chunk's numbers end in the body: at its comma, or after the array's last ``]``."""
    final: bool
    """Whether the array ends in this chunk."""
    depth: int
    """The depth at the chunk's end (at its comma)."""
    rank: int
    """The depth of the array's numbers (the number of ``[`` before the first one)."""
    numbers: int
    integers: bool
    negative_zeros: np.ndarray
    """The chunk's ``-0`` integer literals, by index among its numbers."""
    boundaries: np.ndarray
    """After which of its numbers (1-based) arrays close, ..."""
    closing: np.ndarray
    """... and how many (the last number of the array excluded)."""


def _check_chunk(
    body: bytes, pos: int, text_end: int, at_comma: bool, depth: int, rank: int
) -> _Chunk | None:
    """Check ``body[pos:text_end]`` (after a comma, or the array's first ``[``; ending with a
    comma if ``at_comma``, else holding the array's end) as part of a dense numeric array, at
    ``depth`` (0 before the array) with numbers at depth ``rank`` (0: not known yet); ``None``
    if it is not."""
    compact = body[pos:text_end].translate(_CLASS_BYTES, _WHITESPACE)
    spaced = len(compact) < text_end - pos
    # c: the chunk's classes without whitespace, after a comma (what precedes a chunk).
    c = np.empty(len(compact) + 1, np.uint8)
    c[0] = _C_COMMA
    c[1:] = np.frombuffer(compact, np.uint8)
    del compact
    opens = np.flatnonzero(c == _C_OPEN)
    closes = np.flatnonzero(c == _C_CLOSE)
    closed = np.flatnonzero(
        np.searchsorted(opens, closes) - np.arange(1, len(closes) + 1) <= -depth
    )
    final = bool(closed.size)
    if final:  # the array ends at the first ']' back at depth 0
        last_char = int(closes[closed[0]])
        c = c[: last_char + 1]
        opens = opens[: np.searchsorted(opens, last_char)]
        closes = closes[: closed[0] + 1]
    elif not at_comma:  # the array does not end where the body or the window does
        return None
    if not np.take(_PAIR_OK, c[:-1] * 16 + c[1:]).all():
        return None
    number = (c - _U1) <= 5
    starts = np.flatnonzero(number[1:] & ~number[:-1]) + 1
    ends = np.flatnonzero(number[:-1] & ~number[1:]) + 1
    del number
    count = len(starts)
    if not count or len(ends) != count:
        return None
    # Arrays opened before each number (after the one before) and closed after it: between two
    # numbers as many must close as open (then every number is at the first one's depth).
    opening = np.bincount(np.searchsorted(starts, opens, side="right"), minlength=count + 1)
    closing = np.bincount(np.searchsorted(starts, closes, side="right") - 1, minlength=count)
    rank = rank or depth + int(opening[0])
    lengths = ends - starts
    if (
        not 0 < rank <= _MAX_SPAN_RANK
        or depth + opening[0] != rank
        or (closing[:-1] != opening[1:count]).any()
        or lengths.max() > _MAX_NUMBER_CHARS
    ):
        return None
    # After the chunk's last character checked: its comma, or the array's last ']'.
    raw_end = len(c) - 1 if final else text_end - pos
    if spaced:
        if final:
            raw = np.frombuffer(body, np.uint8, text_end - pos, pos)
            kept = np.flatnonzero((raw != 32) & (raw != 10) & (raw != 13) & (raw != 9))
            raw_end = int(kept[len(c) - 2]) + 1
            del raw, kept
        # Whitespace between two characters of numbers would join them: with whitespace kept,
        # the chunk must have as many numbers.
        classes = np.frombuffer(body[pos : pos + raw_end].translate(_CLASS_BYTES), np.uint8)
        spaced_number = (classes - _U1) <= 5
        del classes
        spaced_count = np.count_nonzero(spaced_number[1:] & ~spaced_number[:-1])
        if spaced_count + spaced_number[0] != count:
            return None
    marks = np.flatnonzero((c - _U5) <= 1)
    fractional = np.zeros(count, bool)
    if marks.size:
        owner = np.searchsorted(starts, marks, side="right") - 1
        mark_class = c[marks]
        same = owner[1:] == owner[:-1]
        ordered = (mark_class[:-1] == _C_DOT) & (mark_class[1:] == _C_EXP)
        if (same & ~ordered).any():  # two dots, two exponents, or a dot after one
            return None
        fractional[owner] = True
        exponent = mark_class == _C_EXP
        marks, owner = marks[exponent], owner[exponent]
        digits = ends[owner] - marks - 1 - _IS_SIGN[c[marks + 1]]
        if marks.size and digits.max() > _MAX_EXPONENT_DIGITS:
            return None
    negative = c[starts] == _C_MINUS
    whole = ~fractional
    if (lengths[whole] - negative[whole] > _MAX_INTEGER_DIGITS).any():
        return None
    zeros = np.flatnonzero((c[:-1] == _C_ZERO) & ((c[1:] - _U1) <= 1))
    if zeros.size:  # a zero followed by a digit must not start an integer part
        preceding = c[zeros - 1]
        leading = (preceding == _C_OPEN) | (preceding == _C_COMMA)
        leading |= (preceding == _C_MINUS) & (c[np.maximum(zeros - 2, 0)] != _C_EXP)
        if leading.any():
            return None
    minus_zero = whole & negative & (lengths == 2) & (c[starts + 1] == _C_ZERO)
    if final:  # (the array's own end)
        closing = closing[:-1]
    boundaries = np.flatnonzero(closing)
    end = pos + raw_end if final else text_end - 1  # after the array, or at the comma
    return _Chunk(
        end,
        final,
        depth + len(opens) - len(closes),
        rank,
        count,
        not fractional.any(),
        np.flatnonzero(minus_zero),
        boundaries + 1,
        closing[boundaries],
    )


def _scan_span(body: bytes, start: int) -> _NumericSpan | None:
    """The dense numeric array starting at ``body[start]`` (a ``[``), or ``None``."""
    size = len(body)
    pos = start
    depth = rank = leaves = 0
    integers = True
    chunks: list[tuple[int, int, int]] = []
    negative_zeros: list[np.ndarray] = []
    last: list[int] = []  # per depth m = 1 .. rank-1: the last boundary closing m levels,
    period: list[int] = []  # and the number of leaves between two of them
    step = _FIRST_CHUNK_BYTES
    for _ in range(size - start):  # each step advances by one byte at least
        window = min(size, pos + step)
        step = _CHUNK_BYTES
        cut = body.rfind(b",", pos, window) if window < size else -1
        at_comma = cut >= pos
        chunk = _check_chunk(body, pos, cut + 1 if at_comma else window, at_comma, depth, rank)
        if chunk is None:
            return None
        if not rank:
            rank = chunk.rank
            last, period = [0] * (rank - 1), [0] * (rank - 1)
        for m in range(1, rank):
            at = chunk.boundaries[chunk.closing >= m] + leaves
            if not at.size:
                continue
            gaps = np.diff(at, prepend=last[m - 1])
            if not period[m - 1]:
                period[m - 1] = int(gaps[0])
            if (gaps != period[m - 1]).any():
                return None
            last[m - 1] = int(at[-1])
        if chunk.negative_zeros.size:
            negative_zeros.append(chunk.negative_zeros + leaves)
        integers = integers and chunk.integers
        leaves += chunk.numbers
        chunks.append((pos, chunk.end, chunk.numbers))
        if not chunk.final:
            depth = chunk.depth
            pos = cut + 1
            continue
        shape: list[int] = []
        below = 1  # leaves in one array of the level being sized
        for m in range(1, rank):
            size_m = period[m - 1] or leaves - last[m - 1]
            if leaves - last[m - 1] != size_m or size_m % below:
                return None
            shape.insert(0, size_m // below)
            below = size_m
        if leaves % below:
            return None
        shape.insert(0, leaves // below)
        zeros_at = np.concatenate(negative_zeros) if negative_zeros else np.zeros(0, np.int64)
        return _NumericSpan(body, start, chunk.end, tuple(shape), integers, chunks, zeros_at)
    return None


def _find_spans(body: bytes) -> list[_NumericSpan]:
    """The large dense numeric arrays that are object member values (``: [``) in ``body``."""
    spans: list[_NumericSpan] = []
    size = len(body)
    pos = 0
    for _ in range(_MAX_CANDIDATES):
        colon = body.find(b":", pos)
        if colon < 0:
            break
        start = _WHITESPACE_RE.match(body, colon + 1).end()  # type: ignore[union-attr]
        pos = start
        if start >= size or body[start] != ord("["):
            continue
        if size - start < _SPAN_MIN_BYTES or body.find(b'"', start, start + _SPAN_MIN_BYTES) >= 0:
            continue  # short, or holding strings
        span = _scan_span(body, start)
        if span is None:
            return []
        if span.end - span.start >= _SPAN_MIN_BYTES:
            spans.append(span)
        pos = span.end
    return spans


def _parse_with_spans(body: bytes) -> _SpanDoc | None:
    """``body`` parsed with its large numeric arrays left unconverted; ``None`` when it has
    none or the rest of it does not parse to an object (then parse it as before)."""
    if not isinstance(body, bytes) or b"\x00" in body:
        return None
    spans = _find_spans(body)
    if not spans:
        return None
    nonce = secrets.token_hex(8).translate(_NONCE_LETTERS)
    if nonce.encode() in body:
        return None
    names = {nonce + str(i).translate(_INDEX_LETTERS): span for i, span in enumerate(spans)}
    pieces = []
    pos = 0
    for name, span in names.items():
        pieces += [body[pos : span.start], b'["', name.encode(), b'"]']
        pos = span.end
    pieces.append(body[pos:])
    try:
        parsed = _parse_document(b"".join(pieces))
    except ServingStatusError:
        return None
    if not isinstance(parsed, dict):
        return None
    doc = _SpanDoc(parsed)
    doc.spans = []
    stack: list[Any] = [doc]
    while stack:  # put the arrays where their placeholders came back
        node = stack.pop()
        for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
            if type(value) is dict:
                stack.append(value)
            elif type(value) is list:
                item = value[0] if len(value) == 1 else None
                found: _NumericSpan | None = None
                if type(item) is str and item in names:
                    found = names.pop(item)
                if found is None:
                    stack.append(value)
                else:
                    node[key] = found
                    doc.spans.append((node, key, found))
    return doc


def signature_name(doc: dict[str, Any]) -> str:
    """The request's ``signature_name`` ("" when absent) as ``FillSignature`` reads it.

    Raises:
        ServingStatusError: INVALID_ARGUMENT when the key holds anything but a string.
    """
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if not isinstance(name, str):
        _materialize(doc)
        raise invalid_argument(
            f"JSON Value: {_debug_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


# --------------------------------------------------------------------------------------------
# Predict requests.


def _is_base64_object(value: Any) -> bool:
    """``{"b64": "<string>"}`` and nothing else (``IsValBase64Object``)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_element_object(value: Any) -> bool:
    """An ``instances`` element naming its inputs (an object that is not base64 data)."""
    return isinstance(value, dict) and not _is_base64_object(value)


_BASE64_STRIP = bytes.maketrans(b"", b"")
_BASE64_RE = re.compile(rb"([A-Za-z0-9+/]*)([=.]*)")
_BASE64_PADDING = {0: 0, 2: 2, 3: 1}


def _base64_decode(text: str) -> bytes | None:
    """``absl::Base64Unescape``: whitespace anywhere, padding (``=`` or ``.``) optional but
    exact when present; ``None`` for invalid input."""
    data = _to_bytes(text).translate(_BASE64_STRIP, b" \t\n\v\f\r")
    match = _BASE64_RE.fullmatch(data)
    if match is None:
        return None
    payload, padding = match.groups()
    expected = _BASE64_PADDING.get(len(payload) % 4)
    if expected is None or len(padding) not in (0, expected):
        return None
    return binascii.a2b_base64(payload + b"=" * expected)


def _decode_base64_object(value: Any) -> bytes:
    """``JsonDecodeBase64Object``."""
    if not _is_base64_object(value):
        raise invalid_argument(
            f"JSON Value: {_debug_string(value)} not formatted correctly for base64 data"
        )
    decoded = _base64_decode(value["b64"])
    if decoded is None:
        raise invalid_argument("Unable to base64 decode")
    return decoded


def _type_error(value: Any, dtype: str) -> ServingStatusError:
    return invalid_argument(
        f"JSON Value: {_debug_string(value)} Type: {_json_type(value)} "
        f"is not of expected type: {_dtype_string(dtype)}"
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
        return _integer_converter(_INT64_MIN, _INT64_MAX, dtype)
    if dtype == "DT_UINT32":
        return _integer_converter(0, _UINT32_MAX, dtype)
    if dtype == "DT_UINT64":
        return _integer_converter(0, _UINT64_MAX, dtype)
    if dtype == "DT_BOOL":

        def convert_bool(value: Any) -> Any:
            if type(value) is bool:
                return value
            raise _type_error(value, dtype)

        return convert_bool
    if dtype == "DT_STRING":

        def convert_string(value: Any) -> Any:
            if isinstance(value, str):
                return _to_bytes(value)
            if isinstance(value, dict):
                return _decode_base64_object(value)
            raise _type_error(value, dtype)

        return convert_string

    def convert_other(value: Any) -> Any:
        if isinstance(value, dict):
            raise _type_error(value, dtype)
        raise unimplemented(
            f"Conversion of JSON Value: {_debug_string(value)} to type: {_dtype_string(dtype)}"
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


def _shape_string(shape: tuple[int, ...]) -> str:
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
                    f"JSON Value: {_debug_string(node)} found at incorrect level: {level + 1} "
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
        raise unimplemented(f"Conversion of JSON Value: [] to type: {_dtype_string(dtype)}")
    if dtype == "DT_STRING":
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
        return array.reshape(shape)
    if target.kind in "iu" and dtype != "DT_UINT64":
        return np.array(leaves, dtype=np.int64).astype(target).reshape(shape)
    return np.array(leaves, dtype=target).reshape(shape)


def _careful_tensor(value: Any, dtype: str) -> tuple[np.ndarray, tuple[int, ...], int]:
    """One JSON value as a tensor, checked node by node: (array, shape, number of leaves)."""
    shape = _dense_shape(value)
    leaves = _collect_leaves(value, shape, dtype)
    return _array_from_leaves(leaves, shape, dtype), shape, len(leaves)


_FAST_KINDS: dict[str, tuple[frozenset[type], np.dtype, int | None, int | None]] = {
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


def _fast_tensor(value: Any, dtype: str) -> np.ndarray | None:
    """``value`` as an array in one ``np.asarray`` call, or ``None`` when it is not a dense nest
    of lists whose leaves all have the JSON kind ``dtype`` accepts (then the careful path
    decides what is wrong)."""
    kind = _FAST_KINDS.get(dtype)
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


def _value_to_array(value: Any, dtype: str) -> np.ndarray:
    """One JSON value (a scalar or a nest of lists) as the tensor it denotes."""
    fast = _fast_tensor(value, dtype)
    if fast is not None:
        return fast
    return _careful_tensor(value, dtype)[0]


class _InstanceBatch:
    """``AddInstanceItem`` state: each input's per-instance arrays, first size and shape."""

    def __init__(self, signature: Signature) -> None:
        self.specs = signature.inputs
        self.items: dict[str, list[np.ndarray]] = {}
        self.sizes: dict[str, int] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def add(self, value: Any, name: str) -> None:
        if name not in self.specs:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        array, shape, size = _careful_tensor(value, self.specs[name].dtype)
        if name not in self.sizes:
            self.sizes[name] = size
            self.shapes[name] = shape
        elif self.sizes[name] != size:
            raise invalid_argument(f"Expecting tensor size: {self.sizes[name]} but got: {size}")
        elif self.shapes[name] != shape:
            raise invalid_argument(
                f"Expecting shape {_shape_string(self.shapes[name])} "
                f"but got: {_shape_string(shape)}"
            )
        self.items.setdefault(name, []).append(array)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.stack(items) for name, items in self.items.items()}


def _careful_instances(instances: list[Any], signature: Signature) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInstancesList``, element by element, with upstream's errors."""
    names = sorted(signature.inputs)
    batch = _InstanceBatch(signature)
    if _is_element_object(instances[0]):
        for index, element in enumerate(instances):
            if not _is_element_object(element):
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list"
                )
            for key, value in element.items():
                try:
                    batch.add(value, key)
                except ServingStatusError as exc:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {key} of 'instances' list. "
                        f"Error: {_status_string(exc)}"
                    ) from None
            if set(element) != set(names):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_debug_string(element)} keys must be equal to: {','.join(names)}"
                )
    else:
        for index, element in enumerate(instances):
            if _is_element_object(element):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list"
                )
            try:
                batch.add(element, names[0])
            except ServingStatusError as exc:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. "
                    f"Error: {_status_string(exc)}"
                ) from None
    return batch.arrays()


def _decode_instances(instances: list[Any], signature: Signature) -> dict[str, np.ndarray]:
    """The row format: one batch entry per element of ``instances``."""
    names = sorted(signature.inputs)
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    if not _is_element_object(instances[0]):
        fast = _fast_tensor(instances, signature.inputs[names[0]].dtype)
        if fast is not None and fast.ndim:
            return {names[0]: fast}
        return _careful_instances(instances, signature)
    name_set = set(names)
    if all(_is_element_object(e) and e.keys() == name_set for e in instances):
        arrays = {}
        for name in names:
            fast = _fast_tensor([e[name] for e in instances], signature.inputs[name].dtype)
            if fast is None:
                break
            arrays[name] = fast
        else:
            return arrays
    return _careful_instances(instances, signature)


def _decode_inputs(inputs: Any, signature: Signature) -> dict[str, np.ndarray]:
    """The columnar format (``FillTensorMapFromInputsMap``): no batch dimension is added."""
    names = sorted(signature.inputs)
    if not isinstance(inputs, dict) or _is_base64_object(inputs):
        if len(names) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: _value_to_array(inputs, signature.inputs[names[0]].dtype)}
    arrays = {}
    for name in names:
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _value_to_array(inputs[name], signature.inputs[name].dtype)
    return arrays


def _decode_spans(
    doc: dict[str, Any], signature: Signature
) -> tuple[dict[str, np.ndarray], str] | None:
    """:func:`decode_predict_request` of a body whose tensors are unconverted numeric arrays
    (:class:`_NumericSpan`), converting them directly; ``None`` where the regular path must run
    (on the materialized document) to give today's result or error."""
    if not isinstance(doc, _SpanDoc) or not doc.spans:
        return None
    names = sorted(signature.inputs)
    if "instances" in doc:
        instances = doc["instances"]
        if "inputs" in doc or len(names) != 1 or not isinstance(instances, _NumericSpan):
            return None
        array = instances.to_array(signature.inputs[names[0]].dtype)
        return None if array is None else ({names[0]: array}, ROW)
    if "inputs" not in doc:
        return None
    inputs = doc["inputs"]
    if isinstance(inputs, _NumericSpan):
        if len(names) != 1:
            return None
        array = inputs.to_array(signature.inputs[names[0]].dtype)
        return None if array is None else ({names[0]: array}, COLUMNAR)
    if (
        not isinstance(inputs, dict)
        or _is_base64_object(inputs)
        or any(container is not inputs and container is not doc for container, _, _ in doc.spans)
    ):
        return None  # (the errors of the regular path may print arrays nested deeper)
    arrays = {}
    for name in names:  # as _decode_inputs
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        value, dtype = inputs[name], signature.inputs[name].dtype
        if isinstance(value, _NumericSpan):
            array = value.to_array(dtype)
            if array is not None:
                arrays[name] = array
                continue
            value = inputs[name] = value.value()
        arrays[name] = _value_to_array(value, dtype)
    return arrays, COLUMNAR


def decode_predict_request(
    doc: dict[str, Any], signature: Signature
) -> tuple[dict[str, np.ndarray], str]:
    """The input arrays of a predict request, keyed by signature input alias, and its format.

    ``doc`` is a body from :func:`parse_json`; ``signature`` is the one the request's
    ``signature_name`` resolved to. Arrays have the numpy dtype of the signature's dtype
    (strings: object arrays of ``bytes``). The format is :data:`ROW` for ``instances`` (the
    batch dimension is the list) and :data:`COLUMNAR` for ``inputs``.

    Raises:
        ServingStatusError: upstream's INVALID_ARGUMENT texts; UNIMPLEMENTED for a columnar
            value of a dtype JSON cannot express (in row format upstream wraps that into
            ``Failed to process element: ...``, an INVALID_ARGUMENT).
    """
    name = signature_name(doc)
    if not signature.inputs:
        raise invalid_argument(f"Failed to get input map for signature: {name or 'DEFAULT'}")
    decoded = _decode_spans(doc, signature)
    if decoded is not None:
        return decoded
    _materialize(doc)
    if "instances" in doc:
        if "inputs" in doc:
            raise _format_error(
                doc,
                "Not formatted correctly expecting only one of 'inputs' or 'instances' "
                "keys to exist ",
            )
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _format_error(doc, "Expecting 'instances' to be an list/array")
        if not instances:
            raise _format_error(doc, "No values in 'instances' array")
        return _decode_instances(instances, signature), ROW
    if "inputs" in doc:
        return _decode_inputs(doc["inputs"], signature), COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


# --------------------------------------------------------------------------------------------
# Predict responses.

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
        type_name = _dtype_string(tf_name) if tf_name else array.dtype.name
        raise invalid_argument(f"Failed to write JSON value for tensor type: {type_name}")


def _float_tokens(flat: np.ndarray) -> list[str]:
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


def _base64_token(data: bytes, depth: int) -> str:
    """``{"b64": ...}`` as the pretty writer lays out an object inside ``depth`` open levels."""
    return (
        "{\n"
        + _INDENT * (depth + 1)
        + '"b64": "'
        + base64.b64encode(data).decode()
        + '"\n'
        + _INDENT * depth
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
        return [_quote(x.decode("utf-8", "surrogateescape")) for x in items]
    kind = _JSON_DTYPES[array.dtype]
    if kind in ("DT_FLOAT", "DT_DOUBLE"):
        return _float_tokens(flat)
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
            inner = _INDENT * (depth + level + 1)
            opener, separator = "[\n" + inner, ",\n" + inner
            closer = "\n" + _INDENT * (depth + level) + "]"
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
        inner = _INDENT * 3
        body = ",".join(
            "\n"
            + _INDENT * 2
            + "{\n"
            + ",\n".join(f"{inner}{_quote(name)}: {per_name[name][i]}" for name in names)
            + "\n"
            + _INDENT * 2
            + "}"
            for i in range(batch)
        )
    closer = "\n" + _INDENT + "]" if batch > 0 else "]"
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
    members = ",\n".join(f"{_INDENT * 2}{_quote(name)}: {values[name]}" for name in names)
    return '{\n    "outputs": {\n' + members + "\n" + _INDENT + "}\n}"


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
        return _to_bytes(_row_json(arrays))
    if format == COLUMNAR:
        return _to_bytes(_columnar_json(arrays))
    raise invalid_argument("Invalid request format")


# --------------------------------------------------------------------------------------------
# Classify and regress.


def _feature_error(name: str, value: Any) -> ServingStatusError:
    return invalid_argument(
        f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}"
    )


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}


def _fill_example(value: Any, example: Any) -> None:
    """``MakeExampleFromJsonObject``: each member is a feature holding a value or a list."""
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        kind: str | None = None
        collected: list[Any] = []
        converted: Any
        for item in content if isinstance(content, list) else (content,):
            if item is None or isinstance(item, list):
                raise _feature_error(name, item)
            if isinstance(item, bool):
                item_kind, converted = "int64_list", int(item)
            elif isinstance(item, dict):
                if not _is_base64_object(item):
                    raise _feature_error(name, item)
                item_kind, converted = "bytes_list", item
            elif isinstance(item, str):
                item_kind, converted = "bytes_list", _to_bytes(item)
            elif _is_double(item):
                item_kind, converted = "float_list", float(item)
            else:
                item_kind, converted = "int64_list", item
            if kind is not None and kind != item_kind:
                raise invalid_argument(
                    f"Unexpected element type in feature: {name} expecting type: "
                    f"{_KIND_NAMES[kind]}"
                )
            kind = item_kind
            if isinstance(converted, dict):
                converted = _decode_base64_object(converted)
            elif item_kind == "int64_list" and converted > _INT64_MAX:
                raise invalid_argument(
                    f"Feature: {name} has uint64_t element. Only int64_t is supported."
                )
            collected.append(converted)
        feature = example.features.feature[name]
        if kind is not None:
            getattr(feature, kind).value.extend(collected)


def decode_examples(doc: dict[str, Any]) -> Input:
    """The ``tensorflow.serving.Input`` of a classify or regress request body.

    ``{"signature_name"?, "context"?: {...}, "examples": [{feature: value | [values]}]}``:
    a JSON number with a fraction or exponent goes to ``float_list``, an integer or boolean to
    ``int64_list``, a string or ``{"b64": ...}`` to ``bytes_list``. With ``context`` the result
    is an ``ExampleListWithContext``, else an ``ExampleList``. Imports the example protos (and
    so TensorFlow) on first use.

    Raises:
        ServingStatusError: INVALID_ARGUMENT with upstream's texts.
    """
    from tensorflow_serving.apis import input_pb2

    _materialize(doc)
    signature_name(doc)
    request_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        context = request_input.example_list_with_context.context
        context.SetInParent()
        _fill_example(doc["context"], context)
    if "examples" not in doc:
        raise _format_error(
            doc, "When method is classify, key 'examples' is expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    target = (
        request_input.example_list_with_context.examples
        if has_context
        else request_input.example_list.examples
    )
    for example in examples:
        _fill_example(example, target.add())
    return request_input


def encode_classify_results(result: ClassificationResult) -> bytes:
    """``{"results": [[["label", score], ...], ...]}`` as ``MakeJsonFromClassificationResult``.

    Raises:
        ServingStatusError: INVALID_ARGUMENT for a result without classifications.
    """
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classifications in result.classifications:
        classes = classifications.classes
        scores = _float_tokens(np.array([c.score for c in classes], dtype=np.float32))
        pairs = (f"[{_quote(c.label)}, {s}]" for c, s in zip(classes, scores, strict=True))
        rows.append("[" + ", ".join(pairs) + "]")
    return _to_bytes('{\n    "results": [' + ", ".join(rows) + "\n    ]\n}")


def encode_regress_results(result: RegressionResult) -> bytes:
    """``{"results": [value, ...]}`` as ``MakeJsonFromRegressionResult``.

    Raises:
        ServingStatusError: INVALID_ARGUMENT for a result without regressions.
    """
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    values = np.array([r.value for r in result.regressions], dtype=np.float32)
    return _to_bytes('{\n    "results": [' + ", ".join(_float_tokens(values)) + "]\n}")


def encode_error(message: str) -> bytes:
    """``{"error": message}`` laid out as ``MakeJsonFromStatus`` writes it."""
    return _to_bytes('{\n    "error": ' + _quote(message) + "\n}")
