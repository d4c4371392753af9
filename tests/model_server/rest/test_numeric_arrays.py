"""The codec's path for large numeric arrays (``numeric_arrays.NumericSpan``) against the regular
path: random numeric nests and random near-numeric garbage give the same arrays or the same
errors with the fast path forced on (tiny thresholds and chunks, so that the chunk logic runs on
small bodies) as with it off; and at real sizes it takes the common bodies, converting them at
about the cost of the result."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tfserve_nb.core.status import ServingStatusError
from tfserve_nb.model_server.rest import numeric_arrays
from tfserve_nb.model_server.rest.predict_request import decode_predict_request
from tfserve_nb.model_server.rest.request_document import parse_json
from tfserve_nb.protocol.signature import Signature, TensorSpec

DTYPES = (
    "DT_FLOAT",
    "DT_DOUBLE",
    "DT_INT8",
    "DT_INT16",
    "DT_INT32",
    "DT_INT64",
    "DT_UINT8",
    "DT_UINT32",
    "DT_UINT64",
    "DT_BOOL",
    "DT_STRING",
    "DT_HALF",
)


def make_signature(**dtypes: str) -> Signature:
    inputs = {alias: TensorSpec(alias, dtype, None) for alias, dtype in dtypes.items()}
    return Signature("serving_default", "tensorflow/serving/predict", inputs)


@contextlib.contextmanager
def span_limits(min_bytes: int, chunk: int, first_chunk: int) -> Iterator[None]:
    saved = (
        numeric_arrays.SPAN_MIN_BYTES,
        numeric_arrays._CHUNK_BYTES,
        numeric_arrays._FIRST_CHUNK_BYTES,
    )
    numeric_arrays.SPAN_MIN_BYTES = min_bytes
    numeric_arrays._CHUNK_BYTES = chunk
    numeric_arrays._FIRST_CHUNK_BYTES = first_chunk
    try:
        yield
    finally:
        (
            numeric_arrays.SPAN_MIN_BYTES,
            numeric_arrays._CHUNK_BYTES,
            numeric_arrays._FIRST_CHUNK_BYTES,
        ) = saved


def outcome(body: bytes, signature: Signature) -> tuple[Any, ...]:
    """Everything a caller can see of decoding ``body``: the parsed document (spans
    materialized), then the arrays (dtype, shape, bytes) and format, or the error."""
    try:
        doc = parse_json(body)
    except ServingStatusError as exc:
        return ("parse error", exc.code, exc.message)
    try:
        arrays, fmt = decode_predict_request(doc, signature)
    except ServingStatusError as exc:
        result: tuple[Any, ...] = ("error", exc.code, exc.message)
    except Exception as exc:  # the regular path's own failures must be the same too
        result = ("exception", type(exc).__name__, str(exc))
    else:
        result = (
            fmt,
            {
                name: (a.dtype.str, a.shape, a.tolist() if a.dtype == object else a.tobytes())
                for name, a in sorted(arrays.items())
            },
        )
    numeric_arrays.materialize(doc)
    return (repr(doc), *result)


def regular(body: bytes, signature: Signature) -> tuple[Any, ...]:
    with span_limits(2**62, 2**20, 2**20):
        return outcome(body, signature)


def fast(body: bytes, signature: Signature, chunk: int) -> tuple[tuple[Any, ...], int]:
    """The outcome with the fast path forced on, and how many arrays it left unconverted."""
    with span_limits(1, chunk, chunk):
        try:
            doc = parse_json(body)
        except ServingStatusError:
            doc = None
        spans = len(doc.spans) if isinstance(doc, numeric_arrays.SpanDoc) else 0
        return outcome(body, signature), spans


# --- bodies -----------------------------------------------------------------------------------

SPACES = st.sampled_from(["", "", "", " ", "\n  ", "\t", " \r\n"])


@st.composite
def number_tokens(draw: st.DrawFn, near_misses: bool = True) -> str:
    """A JSON number as clients write them; with ``near_misses``, now and then a literal or a
    token that is no JSON number."""
    kind = draw(st.integers(0, 9 if near_misses else 8))
    if kind <= 2:
        return str(draw(st.integers(-(10**20), 10**20) | st.integers(-300, 300)))
    if kind <= 5:
        value = draw(st.floats(allow_nan=False, allow_infinity=False) | st.floats(-2.0, 2.0))
        return repr(value)
    if kind == 6:
        value = draw(st.floats(allow_nan=False, allow_infinity=False, width=32))
        text = f"{value:.{draw(st.integers(0, 20))}e}"
        if draw(st.booleans()):
            text = text.replace("e", "E")
        if draw(st.booleans()):
            text = text.replace("e+", "e").replace("E+", "E")
        return text
    if kind == 7:
        return draw(st.sampled_from(["-0", "0", "-0.0", "0.0", "1e5", "1E-05", "2e+3", "-1e99"]))
    if kind == 8:
        return str(draw(st.sampled_from([2**24 + 1, 2**53 + 1, 2**54 + 2**30 + 1, 2**31, 2**32])))
    return draw(
        st.sampled_from(
            ["NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1", "1e400", "1e", "true", '"a"']
        )
    )


def dense_text(draw: st.DrawFn, shape: list[int], leaf: st.SearchStrategy[str]) -> str:
    if not shape:
        return draw(leaf)
    parts = [
        draw(SPACES) + dense_text(draw, shape[1:], leaf) + draw(SPACES) for _ in range(shape[0])
    ]
    return "[" + ",".join(parts) + "]"


@st.composite
def nests(draw: st.DrawFn, depth: int, leaf: st.SearchStrategy[str]) -> str:
    """JSON text of a nest of lists ``depth`` deep of ``leaf`` tokens: dense mostly; else one
    element of some list is a leaf or a shallower list, or the lists differ in length."""
    if depth == 0:
        return draw(leaf)
    if draw(st.integers(0, 4)):
        return dense_text(draw, [draw(st.integers(1, 4)) for _ in range(depth)], leaf)
    size = draw(st.integers(1, 4))
    depths = [depth - 1] * size
    depths[draw(st.integers(0, size - 1))] = draw(st.integers(0, depth - 1))
    return "[" + ",".join(draw(nests(d, leaf)) for d in depths) + "]"


@st.composite
def numeric_bodies(draw: st.DrawFn) -> tuple[bytes, Signature]:
    leaf = number_tokens(near_misses=draw(st.integers(0, 3)) == 0)
    value = draw(nests(draw(st.integers(1, 4)), leaf))
    dtype = draw(st.sampled_from(("DT_FLOAT", "DT_DOUBLE", "DT_INT32", *DTYPES)))
    layout = draw(st.sampled_from((0, 0, 1, 1, 2, 3, 4)))
    extra = draw(st.sampled_from(["", '"signature_name": "serving_default", ', '"z": [1, 2], ']))
    if layout == 0:
        body, dtypes = f'{{{extra}"instances": {value}}}', {"x": dtype}
    elif layout == 1:
        body, dtypes = f'{{{extra}"inputs":{value}}}', {"x": dtype}
    elif layout == 2:
        other = draw(nests(1, number_tokens()))
        body = f'{{{extra}"inputs": {{"y": {other}, "x": {value}}}}}'
        dtypes = {"x": dtype, "y": draw(st.sampled_from(DTYPES))}
    elif layout == 3:
        body, dtypes = f'{{"instances": {value}, "inputs": {value}}}', {"x": dtype}
    else:
        body, dtypes = f'{{"instances": {value}}}', {"x": dtype, "y": dtype}
    return body.encode(), make_signature(**dtypes)


GARBAGE = list('0123456789-+.eE[],: \n"{}NaIfinty\x00')


@st.composite
def mutated_bodies(draw: st.DrawFn) -> tuple[bytes, Signature]:
    """A numeric body with one to four characters inserted, deleted or replaced."""
    body, signature = draw(numeric_bodies())
    text = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.integers(0, 2))
        char = draw(st.sampled_from(GARBAGE)).encode()
        if action == 0:
            text[at:at] = char
        elif action == 1 and at < len(text):
            del text[at]
        elif at < len(text):
            text[at : at + 1] = char
    return bytes(text), signature


SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(numeric_bodies(), st.integers(4, 48))
def test_numeric_bodies_decode_as_the_regular_path_decodes_them(
    case: tuple[bytes, Signature], chunk: int
) -> None:
    body, signature = case
    got, _ = fast(body, signature, chunk)
    assert got == regular(body, signature)


@SETTINGS
@given(mutated_bodies(), st.integers(4, 48))
def test_near_numeric_garbage_decodes_as_the_regular_path_decodes_it(
    case: tuple[bytes, Signature], chunk: int
) -> None:
    body, signature = case
    assume(body)
    got, _ = fast(body, signature, chunk)
    assert got == regular(body, signature)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=4),
    st.sampled_from(["DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_INT64", "DT_UINT8"]),
    st.integers(4, 64),
    st.data(),
)
def test_dense_nests_are_taken_and_agree(
    shape: list[int], dtype: str, chunk: int, data: st.DataObject
) -> None:
    """A dense nest of numbers as ``json.dumps`` writes them is decoded by the fast path (not
    declined), whatever the chunking, and gives what the regular path gives."""
    floating = dtype in ("DT_FLOAT", "DT_DOUBLE")
    count = int(np.prod(shape))
    numbers: st.SearchStrategy[Any] = st.integers(0, 255)
    if floating:  # (exponents of three digits are left to the regular path)
        numbers = st.floats(-1e30, 1e30).filter(lambda v: v == 0 or abs(v) > 1e-90)
    values = np.array(data.draw(st.lists(numbers, min_size=count, max_size=count))).reshape(shape)
    body = json.dumps({"instances": values.tolist()}).encode()
    signature = make_signature(x=dtype)
    got, spans = fast(body, signature, max(chunk, 32))
    assert spans == 1
    assert got == regular(body, signature)


# --- at real sizes ---------------------------------------------------------------------------


def test_large_bodies_are_taken_in_chunks_with_the_regular_results() -> None:
    rng = np.random.default_rng(3)
    floats = rng.random((3000, 64), dtype=np.float32)
    ints = rng.integers(-1000, 1000, (3000, 64))
    bodies = [
        (json.dumps({"instances": floats.tolist()}), "DT_FLOAT"),
        (json.dumps({"inputs": floats.tolist()}, indent=1), "DT_DOUBLE"),
        (json.dumps({"signature_name": "", "instances": ints.tolist()}), "DT_INT32"),
        (json.dumps({"inputs": {"x": ints.tolist()}}), "DT_INT16"),
        (json.dumps({"instances": ints.tolist()}), "DT_FLOAT"),
    ]
    for text, dtype in bodies:
        body = text.encode()
        assert len(body) > 3 * numeric_arrays._CHUNK_BYTES
        signature = make_signature(x=dtype)
        doc = parse_json(body)
        assert isinstance(doc, numeric_arrays.SpanDoc) and len(doc.spans) == 1
        assert outcome(body, signature) == regular(body, signature)


@pytest.mark.parametrize("dtype", ["DT_FLOAT", "DT_INT32"])
def test_a_large_body_costs_about_its_result(dtype: str) -> None:
    """Python memory (numpy's arrays included) at the peak of decoding an 8 MB body, beyond the
    body: the result and a few chunks, not a Python object per number."""
    rng = np.random.default_rng(5)
    if dtype == "DT_FLOAT":
        values: Any = rng.random((6000, 64), dtype=np.float32).tolist()
    else:
        values = rng.integers(0, 10**6, (16000, 64)).tolist()
    body = json.dumps({"instances": values}).encode()
    del values
    signature = make_signature(x=dtype)
    tracemalloc.start()
    try:
        arrays, _ = decode_predict_request(parse_json(body), signature)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    result = arrays["x"].nbytes
    print(
        f"{dtype}: body {len(body) / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB, result "
        f"{result / 1e6:.1f} MB"
    )
    assert peak < result + 16 * numeric_arrays._CHUNK_BYTES
