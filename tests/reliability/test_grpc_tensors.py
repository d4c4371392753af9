"""Request tensors over gRPC that a careless or hostile client sends: random ``TensorProto``s
read exactly as TensorFlow's C++ ``Tensor::FromProto`` reads them (``tf.io.parse_tensor`` runs
it), shapes too large to allocate refused with upstream's INVALID_ARGUMENT, short tensors padded
without a second copy, and a server that answers a good request after each."""

from __future__ import annotations

import tracemalloc

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from tests.helpers.conformance import outputs_of, predict_request, rpc_error, stubs
from tests.helpers.server_process import ServerProcess
from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.protocol.tensor_proto import to_ndarray

DTYPES = {
    "DT_FLOAT": ("float_val", st.floats(width=32, allow_nan=False)),
    "DT_DOUBLE": ("double_val", st.floats(allow_nan=False)),
    "DT_INT32": ("int_val", st.integers(-(2**31), 2**31 - 1)),
    "DT_INT64": ("int64_val", st.integers(-(2**63), 2**63 - 1)),
    "DT_UINT8": ("int_val", st.integers(0, 255)),
    "DT_BOOL": ("bool_val", st.booleans()),
    "DT_STRING": ("string_val", st.binary(max_size=8)),
}


@st.composite
def tensor_protos(draw: st.DrawFn) -> tensor_pb2.TensorProto:
    """A TensorProto of a common dtype with a small shape (negative dims included) and either
    ``tensor_content`` of a right or wrong size, or none to more values than the shape holds."""
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    field, values = DTYPES[dtype]
    dims = draw(st.lists(st.integers(-1, 4), max_size=3))
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DataType.Value(dtype))
    proto.tensor_shape.CopyFrom(
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
        )
    )
    if dtype != "DT_STRING" and draw(st.booleans()):
        proto.tensor_content = draw(st.binary(max_size=48))
    else:
        getattr(proto, field).extend(draw(st.lists(values, max_size=12)))
    return proto


def tensorflow_reads(proto: tensor_pb2.TensorProto) -> np.ndarray | None:
    """What ``Tensor::FromProto`` makes of ``proto`` (``None``: it refuses it)."""
    try:
        tensor = tf.io.parse_tensor(proto.SerializeToString(), tf.dtypes.as_dtype(proto.dtype))
    except tf.errors.InvalidArgumentError:
        return None
    value = tensor.numpy()  # a scalar string comes back as bytes
    return np.asarray(value, dtype=object) if proto.dtype == types_pb2.DT_STRING else value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensor_protos())
def test_request_tensors_are_read_as_tensorflow_reads_them(proto: tensor_pb2.TensorProto) -> None:
    expected = tensorflow_reads(proto)
    try:
        got = to_ndarray(proto, alias="x")
    except ServingStatusError as exc:
        assert (exc.code, exc.message) == (Code.INVALID_ARGUMENT, "tensor parsing error: x")
        assert expected is None, f"TensorFlow reads {expected!r}; we refused it"
        return
    assert expected is not None, f"TensorFlow refuses it; we read {got!r}"
    assert got.shape == expected.shape
    if got.dtype == object:
        assert got.tolist() == np.asarray(expected, dtype=object).tolist()
    else:
        np.testing.assert_array_equal(got, expected)


def test_padding_a_short_tensor_costs_about_the_tensor() -> None:
    """One value for a 64 MB float tensor: the padding is written in place (peak <= 1.5x)."""
    proto = tf.make_tensor_proto(np.float32(7.0), shape=[2**18, 64])
    del proto.float_val[:]
    proto.float_val.append(7.0)
    tracemalloc.start()
    try:
        array = to_ndarray(proto, alias="x")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert array.shape == (2**18, 64) and array[-1, -1] == 7.0
    ratio = peak / array.nbytes
    print(f"peak while padding: {ratio:.2f} x the tensor")
    assert ratio <= 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, half_plus_two_models) -> ServerProcess:
    root = tmp_path_factory.mktemp("grpc_tensors")
    process = ServerProcess(
        root,
        "--model_name=hp2",
        f"--model_base_path={half_plus_two_models.make_base_path(root)}",
        "--ephemeral_ports",
    )
    yield process
    process.stop()


def _shaped(dims: list[int], *values: float) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=list(values))
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims)
    return proto


@pytest.mark.parametrize(
    "dims",
    [[2**40, 64], [2**62, 2], [2**31, 2**31, 2**31]],
    ids=["256-TiB", "int64-overflow", "product-overflow"],
)
def test_a_shape_that_cannot_be_allocated_is_a_parsing_error(
    server: ServerProcess, dims: list[int]
) -> None:
    request = predict_request("hp2", {})
    request.inputs["x"].CopyFrom(_shaped(dims))
    assert rpc_error(stubs(server)[0].Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    )
    answer = outputs_of(
        stubs(server)[0].Predict(predict_request("hp2", {"x": np.ones((1, 1), np.float32)}))
    )
    assert answer["y"].tolist() == [[2.5]]
