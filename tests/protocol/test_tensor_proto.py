"""numpy <-> TensorProto against TensorFlow's own ``make_tensor_proto`` / ``make_ndarray``."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorflow.core.framework import tensor_pb2, types_pb2  # noqa: E402

from tfserve_nb.core.status import Code, ServingStatusError  # noqa: E402
from tfserve_nb.protocol.tensor_proto import from_ndarray, to_ndarray  # noqa: E402

NUMERIC = [
    np.float32,
    np.float64,
    np.float16,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
]
SHAPES = [(), (1,), (5,), (2, 3), (0,), (3, 0, 2), (2, 1, 2, 1)]


def sample(dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(abs(hash((np.dtype(dtype).name, shape))) % 2**32)
    if dtype is np.bool_:
        return rng.random(shape) > 0.5
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    values = rng.standard_normal(shape) * 100
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


def cpp_parse(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The proto parsed by TensorFlow's C++ ``Tensor::FromProto`` (``ParseTensor``)."""
    dtype = tf.as_dtype(proto.dtype) if proto.dtype else tf.float32
    return tf.io.parse_tensor(proto.SerializeToString(), dtype).numpy()


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("dtype", NUMERIC, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trips_agree_with_tensorflow(dtype: type, shape: tuple[int, ...]) -> None:
    array = sample(dtype, shape)
    # TensorFlow's proto (tensor_content or typed fields, as it chooses) read by us.
    assert_same(to_ndarray(tf.make_tensor_proto(array)), array)
    for as_field in (False, True):
        proto = from_ndarray(array, as_field=as_field)
        # Our proto read by TensorFlow, in Python and in C++, and by us.
        assert_same(tf.make_ndarray(proto), array)
        assert_same(cpp_parse(proto), array)
        assert_same(to_ndarray(proto), array)
        assert proto.HasField("tensor_shape")
        assert [d.size for d in proto.tensor_shape.dim] == list(shape)
        assert bool(proto.tensor_content) == (not as_field and array.size > 0)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_strings(shape: tuple[int, ...]) -> None:
    values = np.array([b"", b"a", "é".encode(), b"\x00\xff"] * 6, dtype=object)
    array = values[: int(np.prod(shape))].reshape(shape)
    proto = from_ndarray(array)
    assert proto.dtype == types_pb2.DT_STRING and not proto.tensor_content
    assert_same(to_ndarray(proto), array)
    assert tf.make_ndarray(proto).tolist() == array.tolist()
    assert to_ndarray(tf.make_tensor_proto(array)).tolist() == array.tolist()
    # str arrays are written as UTF-8.
    assert list(from_ndarray(np.array(["é", "x"])).string_val) == ["é".encode(), b"x"]


def test_string_tensor_content_encoding() -> None:
    # TensorFlow's AsProtoTensorContent for strings: varint32 lengths, then the bytes.
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
    proto.tensor_shape.dim.add(size=3)
    proto.tensor_content = bytes([1, 0, 200, 1]) + b"a" + b"z" * 200
    assert to_ndarray(proto).tolist() == [b"a", b"", b"z" * 200]


@pytest.mark.parametrize(
    ("dtype", "field", "values", "expected"),
    [
        (tf.float32, "float_val", [1.5, 2.5], [1.5, 2.5, 2.5, 2.5, 2.5, 2.5]),
        (tf.int32, "int_val", [7], [7] * 6),
        (tf.int8, "int_val", [1, 300], [1, 44, 44, 44, 44, 44]),
        (tf.int64, "int64_val", [], [0] * 6),
        (tf.bool, "bool_val", [True], [True] * 6),
        (tf.string, "string_val", [b"a", b"b"], [b"a", b"b", b"b", b"b", b"b", b"b"]),
        (tf.string, "string_val", [], [b""] * 6),
        (tf.uint64, "uint64_val", [2**64 - 1, 3], [2**64 - 1] + [3] * 5),
        (tf.float32, "float_val", [float(i) for i in range(8)], [float(i) for i in range(6)]),
        (tf.string, "string_val", [b"x"] * 6 + [b"y"], [b"x"] * 6),
    ],
)
def test_fewer_values_repeat_the_last(
    dtype: object, field: str, values: list[object], expected: list[object]
) -> None:
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    proto.tensor_shape.dim.add(size=2)
    proto.tensor_shape.dim.add(size=3)
    getattr(proto, field).extend(values)
    array = to_ndarray(proto)
    assert array.shape == (2, 3)
    assert array.reshape(-1).tolist() == expected
    # TF's Python make_ndarray differs from its C++ parser (which TF Serving runs) on int8
    # wrapping, '' for b"" and extra values; compare with it where they agree.
    if dtype != tf.int8 and 0 < len(values) <= len(expected):
        assert tf.make_ndarray(proto).reshape(-1).tolist() == expected
    assert cpp_parse(proto).reshape(-1).tolist() == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("size", [40, 70_000], ids=["2-byte length", "3-byte length"])
def test_fixed_width_fields_keep_every_bit(dtype: type, size: int) -> None:
    """Float and complex typed fields are written and read as bytes: lengths over one varint
    byte, and NaN payloads, signed zeros, infinities and subnormals, come through unchanged."""
    special = np.array([np.nan, -0.0, np.inf, -np.inf, np.finfo(dtype).smallest_subnormal])
    array = np.resize(np.concatenate([special, sample(dtype, (size,))]), size).astype(dtype)
    proto = from_ndarray(array, as_field=True)
    assert not proto.tensor_content
    assert to_ndarray(proto).tobytes() == array.tobytes()
    assert cpp_parse(proto).tobytes() == array.tobytes()
    assert tf.make_ndarray(proto).tobytes() == array.tobytes()


def test_half_and_complex_fields() -> None:
    proto = from_ndarray(np.array([1.5, -2.0, 65504], dtype=np.float16), as_field=True)
    assert list(proto.half_val) == [0x3E00, 0xC000, 0x7BFF]
    assert_same(cpp_parse(proto), np.array([1.5, -2.0, 65504], dtype=np.float16))
    assert_same(to_ndarray(proto), np.array([1.5, -2.0, 65504], dtype=np.float16))
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_COMPLEX64)
    proto.tensor_shape.dim.add(size=3)
    proto.scomplex_val.extend([1, 2])
    assert_same(to_ndarray(proto), np.array([1 + 2j] * 3, dtype=np.complex64))
    assert_same(cpp_parse(proto), np.array([1 + 2j] * 3, dtype=np.complex64))


def test_empty_tensors_ignore_values() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"junk")
    proto.tensor_shape.dim.add(size=0)
    proto.tensor_shape.dim.add(size=4)
    proto.float_val.append(1.0)
    assert_same(to_ndarray(proto), np.zeros((0, 4), np.float32))
    assert_same(cpp_parse(proto), np.zeros((0, 4), np.float32))


def test_bfloat16() -> None:
    import ml_dtypes

    array = np.array([1.0, -2.5, 3e38], dtype=ml_dtypes.bfloat16)
    for proto in (
        tf.make_tensor_proto(array),
        from_ndarray(array),
        from_ndarray(array, as_field=True),
    ):
        assert_same(to_ndarray(proto), array)
        assert_same(tf.make_ndarray(proto), array)


def test_unknown_rank_uses_the_listed_dims() -> None:
    proto = tf.make_tensor_proto(np.float32(4.0))
    proto.tensor_shape.unknown_rank = True
    assert_same(to_ndarray(proto), np.array(4.0, dtype=np.float32))
    assert_same(tf.make_ndarray(proto), np.array(4.0, dtype=np.float32))


def test_dtype_argument_converts() -> None:
    proto = from_ndarray([[1, 2]], "DT_FLOAT")
    assert proto.dtype == types_pb2.DT_FLOAT
    assert_same(to_ndarray(proto, "DT_FLOAT"), np.array([[1, 2]], dtype=np.float32))
    assert_same(tf.make_ndarray(proto), np.array([[1, 2]], dtype=np.float32))


def test_result_is_writable_and_independent_of_the_proto() -> None:
    proto = from_ndarray(np.arange(4, dtype=np.float32))
    array = to_ndarray(proto)
    array[0] = 9
    assert to_ndarray(proto)[0] == 0


def test_dtype_mismatch_reads_as_tensorflow_reports_it() -> None:
    proto = from_ndarray(np.array([1, 2], dtype=np.int32))
    with pytest.raises(ServingStatusError) as info:
        to_ndarray(proto, "DT_FLOAT", alias="x", arg_index=1)
    assert (info.value.code, info.value.message) == (
        Code.INVALID_ARGUMENT,
        "Expects arg[1] to be float but int32 is provided",
    )
    with pytest.raises(ServingStatusError, match=r"^Expects arg\[0\] to be string but half is "):
        to_ndarray(from_ndarray(np.zeros(1, np.float16)), "DT_STRING")


def bad_protos() -> list[tensor_pb2.TensorProto]:
    long_content = tf.make_tensor_proto([1.0, 2.0], dtype=tf.float32)
    long_content.tensor_shape.dim[0].size = 1
    short_content = from_ndarray(np.zeros(3, np.float32))
    short_content.tensor_content = short_content.tensor_content[:-1]
    negative = tf.make_tensor_proto([1.0])
    negative.tensor_shape.dim[0].size = -1
    invalid = tensor_pb2.TensorProto()
    invalid.float_val.append(1.0)
    bad_strings = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_content=b"\x05ab")
    bad_strings.tensor_shape.dim.add(size=1)
    return [long_content, short_content, negative, invalid, bad_strings]


@pytest.mark.parametrize("proto", bad_protos(), ids=range(5))
def test_unparsable_protos(proto: tensor_pb2.TensorProto) -> None:
    with pytest.raises(ServingStatusError) as info:
        to_ndarray(proto, alias="images")
    assert (info.value.code, info.value.message) == (
        Code.INVALID_ARGUMENT,
        "tensor parsing error: images",
    )
    with pytest.raises(Exception):  # noqa: B017 - TensorFlow's C++ parser rejects it too
        cpp_parse(proto)


def test_unsupported_dtypes() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_QINT8)
    with pytest.raises(ServingStatusError) as info:
        to_ndarray(proto)
    assert info.value.code == Code.UNIMPLEMENTED
    with pytest.raises(ServingStatusError) as info:
        from_ndarray(np.array(["2020-01-01"], dtype="datetime64[D]"))
    assert info.value.message == (
        "Cannot convert an array of numpy dtype datetime64[D] to a tensor"
    )
