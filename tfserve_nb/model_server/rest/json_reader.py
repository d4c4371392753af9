"""Parsing a request body as TF Serving's ``ParseJson`` (``util/json_tensor.cc``) does with
rapidjson 1.1.0 and ``kParseIterativeFlag | kParseNanAndInfFlag | kParseStopWhenDoneFlag``.

:func:`parse_document` gives the body's JSON value (of any type; see :mod:`.json_values`):
``NaN``/``Infinity``/``-Infinity``/``Inf`` literals are accepted, a leading UTF-8 byte order mark
and anything after the top-level value are ignored, strings are taken as raw bytes (no UTF-8
validation), nesting depth is unlimited, and a malformed body fails with ``JSON Parse error:
<rapidjson message> at offset: <byte offset>``. Python's C ``json`` parses the well-formed
bodies; a faithful port of rapidjson's iterative reader (``reader.h``: ``IterativeParse``,
``ParseString``, ``ParseNumber``) takes over for bodies that ``json`` rejects or that it would
read differently (surrogate escapes, numbers too big for a double, nesting deeper than Python's
recursion limit).

Deliberate deviations (on malformed or unusual input): numbers are converted to doubles with
correct rounding (rapidjson's default "normal precision" conversion may differ in the last bit of
a double; float32 results are the same in practice); an object with a repeated key keeps the last
value (rapidjson's lookups find the first).

Thread-safe: each parse has its own reader.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ...core.status import invalid_argument
from .json_values import UINT64_MAX

__all__ = ["WHITESPACE_RE", "parse_document"]


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
WHITESPACE_RE = re.compile(rb"[ \t\n\r]*")
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
        self.pos = WHITESPACE_RE.match(self.data, self.pos).end()  # type: ignore[union-attr]
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
            self.pos = WHITESPACE_RE.match(self.data, self.pos).end()  # type: ignore[union-attr]
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
        use_double = magnitude > (2**63 if minus else UINT64_MAX)
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


def parse_document(body: bytes) -> Any:
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
