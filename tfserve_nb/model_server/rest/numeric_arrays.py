"""Large arrays of numbers in a request body, read without a Python object per number.

Ours, not upstream's (TF Serving's ``util/json_tensor.cc`` parses the whole body into a rapidjson
document): a faster way to the same result. Large bodies (:data:`SPAN_MIN_BYTES`, 64 KiB and
more) take a third path for their large numeric arrays (the value of ``instances``, of ``inputs``
or of an input in it): ``parse_json`` checks such an array's bytes in chunks with numpy (a dense
nest of plain JSON numbers; the shape falls out of the check) and leaves it unconverted, a
:class:`NumericSpan` in a :class:`SpanDoc`; ``decode_predict_request`` converts it chunk by chunk
straight into the tensor (:meth:`NumericSpan.to_array`), without a Python object per number
(about the tensor's size in memory, not 30 bytes per number) and letting other threads run
between chunks (Python's ``json`` holds the interpreter lock for a whole body). An array this
path cannot prove it reads exactly as the regular path is left to the regular path, so results
and errors are the same; :func:`materialize` turns a :class:`SpanDoc` into the regular parse.

A body of many numbers costs 32 bytes or more per number as Python floats (the object and its
list slot), and Python's ``json`` holds the interpreter lock for the whole parse. So before a
large body is parsed, each large array of numbers in it (the value of an object member) is
checked in chunks with numpy: its bytes must form a JSON array in which every number is at the
same depth, the arrays at each depth have the same length (a dense tensor; the shape comes out
of the check), and every number is a plain JSON number that Python's ``json`` and the rapidjson
port both read as ``int``/``float`` of its text (no NaN/Infinity, at most 18 integer digits,
at most 2 exponent digits, at most 40 characters). Such an array is replaced in the body by a
placeholder (a one-string array naming it with a random nonce) and the rest of the body is
parsed as usual: if that succeeds and a placeholder comes back in a value position, the full
body parses to the same document with the array there (the array is valid JSON; a placeholder
that was not a value, e.g. inside a string, makes the parse fail). Otherwise, the whole body is
parsed as before, which gives the same result or the same error as always.

The arrays are converted once the signature gives their dtype, chunk by chunk, with numpy's
text reader (Python's correctly rounded string-to-double, not holding the interpreter lock) into
the final array. A conversion that would not match what the regular path returns (a float where
an integer dtype is expected, an integer out of the dtype's range, a dtype that takes no
numbers) is not attempted: the array is parsed as before and the regular path decides.

Thread-safe; a :class:`SpanDoc` belongs to one request (:func:`materialize` changes it in place).
"""

from __future__ import annotations

import json
import math
import secrets
from typing import Any, NamedTuple

import numpy as np

from ...core.status import ServingStatusError
from ...protocol.signature import NUMPY_DTYPES
from .json_reader import WHITESPACE_RE, parse_document
from .tensor_values import FAST_KINDS

__all__ = ["SPAN_MIN_BYTES", "NumericSpan", "SpanDoc", "materialize", "parse_with_spans"]


SPAN_MIN_BYTES = 64 * 1024
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


class NumericSpan:
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
        """The tensor of ``dtype`` that :func:`.tensor_values.value_to_array` makes of
        :meth:`value`, or ``None`` where the regular path must decide (it may fail)."""
        kind = FAST_KINDS.get(dtype)
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


class SpanDoc(dict):  # type: ignore[type-arg]
    """A parsed body holding :class:`NumericSpan` values; ``spans`` says where they are."""

    spans: list[tuple[Any, Any, NumericSpan]]


def materialize(doc: Any) -> None:
    """Replace ``doc``'s unconverted arrays by their values: it becomes the regular parse."""
    if isinstance(doc, SpanDoc):
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


def _scan_span(body: bytes, start: int) -> NumericSpan | None:
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
        return NumericSpan(body, start, chunk.end, tuple(shape), integers, chunks, zeros_at)
    return None


def _find_spans(body: bytes) -> list[NumericSpan]:
    """The large dense numeric arrays that are object member values (``: [``) in ``body``."""
    spans: list[NumericSpan] = []
    size = len(body)
    pos = 0
    for _ in range(_MAX_CANDIDATES):
        colon = body.find(b":", pos)
        if colon < 0:
            break
        start = WHITESPACE_RE.match(body, colon + 1).end()  # type: ignore[union-attr]
        pos = start
        if start >= size or body[start] != ord("["):
            continue
        if size - start < SPAN_MIN_BYTES or body.find(b'"', start, start + SPAN_MIN_BYTES) >= 0:
            continue  # short, or holding strings
        span = _scan_span(body, start)
        if span is None:
            return []
        if span.end - span.start >= SPAN_MIN_BYTES:
            spans.append(span)
        pos = span.end
    return spans


def parse_with_spans(body: bytes) -> SpanDoc | None:
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
        parsed = parse_document(b"".join(pieces))
    except ServingStatusError:
        return None
    if not isinstance(parsed, dict):
        return None
    doc = SpanDoc(parsed)
    doc.spans = []
    stack: list[Any] = [doc]
    while stack:  # put the arrays where their placeholders came back
        node = stack.pop()
        for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
            if type(value) is dict:
                stack.append(value)
            elif type(value) is list:
                item = value[0] if len(value) == 1 else None
                found: NumericSpan | None = None
                if type(item) is str and item in names:
                    found = names.pop(item)
                if found is None:
                    stack.append(value)
                else:
                    node[key] = found
                    doc.spans.append((node, key, found))
    return doc
