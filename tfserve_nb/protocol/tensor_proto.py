"""numpy arrays to and from ``tensorflow.TensorProto``: the gRPC hot path.

:func:`to_ndarray` reads a request tensor as TensorFlow's C++ ``Tensor::FromProto`` does (which is
what ``tensorflow_model_server`` runs): ``tensor_content`` when present, else the typed repeated
field of the dtype (``float_val``, ``double_val``, ``int_val`` for int32/int16/int8/uint8/uint16,
``int64_val``, ``uint32_val``, ``uint64_val``, ``bool_val``, ``string_val``, ``half_val`` holding
the bits of half and bfloat16, ``scomplex_val``/``dcomplex_val`` as real/imaginary pairs). Fewer
values than the shape holds repeat the last value, no values at all give zeros, extra values are
ignored, and a tensor without elements ignores its values. The shape is the listed dims
(``unknown_rank`` is ignored, as ``TensorShape`` does). A proto TensorFlow cannot parse (invalid
dtype, negative dim, ``tensor_content`` of the wrong size or, for bools, with a byte other than
0 and 1, a shape whose elements cannot be allocated, as ``Tensor::FromProto``'s allocation
fails) fails with TF Serving's ``tensor parsing error: <alias>``.

A tensor whose dtype differs from the signature's fails as it does in TF Serving, where the
mismatch surfaces when the session is run: INVALID_ARGUMENT
``Expects arg[<i>] to be <signature dtype> but <request dtype> is provided`` (TensorFlow's
``FunctionCallFrame::SetArgs``, e.g. ``Expects arg[0] to be float but int32 is provided``).
``<i>`` is the input's position among the fed tensors sorted by graph tensor name (how
``DirectSession`` orders its call frame), which the caller passes as ``arg_index``.

:func:`from_ndarray` writes ``tensor_content`` for numeric dtypes (one memory copy, what
``tf.make_tensor_proto`` does for large arrays) and ``string_val`` for strings. With
``as_field=True`` it writes the typed fields instead, as TF Serving's own ``PredictResponse``
does (``Tensor::AsProtoField``, the server default): client code that reads
``response.outputs[k].float_val`` needs that.

Importing this module imports TensorFlow's protos (and so TensorFlow).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from tfserve_nb.core.status import invalid_argument, unimplemented
from tfserve_nb.protocol.signature import NUMPY_DTYPES, dtype_name_of, dtype_string

__all__ = ["from_ndarray", "to_ndarray"]

_NUMPY_MAX_DIMS = 64

_FIELDS = {
    "DT_FLOAT": "float_val",
    "DT_DOUBLE": "double_val",
    "DT_INT32": "int_val",
    "DT_INT16": "int_val",
    "DT_INT8": "int_val",
    "DT_UINT8": "int_val",
    "DT_UINT16": "int_val",
    "DT_INT64": "int64_val",
    "DT_UINT32": "uint32_val",
    "DT_UINT64": "uint64_val",
    "DT_BOOL": "bool_val",
    "DT_STRING": "string_val",
    "DT_HALF": "half_val",
    "DT_BFLOAT16": "half_val",
    "DT_COMPLEX64": "scomplex_val",
    "DT_COMPLEX128": "dcomplex_val",
}
"""The repeated field holding each dtype's values when ``tensor_content`` is empty."""

_FIELD_DTYPES: dict[str, np.dtype] = {
    "int_val": np.dtype(np.int32),
    "half_val": np.dtype(np.uint16),
    "scomplex_val": np.dtype(np.float32),
    "dcomplex_val": np.dtype(np.float64),
}
"""How a field's values are read before the cast to the tensor dtype (others: the dtype)."""

_FIXED_WIDTH_FIELDS = {"float_val": 5, "double_val": 6, "scomplex_val": 9, "dcomplex_val": 12}
"""Typed fields of fixed-width values, with their field numbers. Their wire form (packed) is the
values' little-endian bytes, so they are written and read as one block of bytes: value by value,
through Python objects, costs about 25 ns per value (1.6 ms for a 64k-float output)."""


def _packed_field(number: int, data: bytes) -> bytes:
    """The wire form of packed repeated field ``number`` holding ``data``: tag, length, data."""
    header = bytearray([number << 3 | 2])
    length = len(data)
    while length >= 0x80:
        header.append(length & 0x7F | 0x80)
        length >>= 7
    header.append(length)
    return bytes(header) + data


def _fixed_width_bytes(proto: tensor_pb2.TensorProto, field: str) -> memoryview:
    """The bytes of a (non-empty) fixed-width typed field: copied into an empty message, whose
    wire form is then that field alone; its tag and length are skipped."""
    holder = tensor_pb2.TensorProto()
    getattr(holder, field).MergeFrom(getattr(proto, field))
    data = holder.SerializeToString()
    _, start = _read_varint32(data, 1)
    return memoryview(data)[start:]


def _numpy_dtype(dtype: str) -> np.dtype | None:
    if dtype == "DT_BFLOAT16":
        import ml_dtypes  # installed with TensorFlow; numpy has no bfloat16

        bfloat16: np.dtype = np.dtype(ml_dtypes.bfloat16)
        return bfloat16
    return NUMPY_DTYPES.get(dtype)


def _read_varint32(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _strings_from_content(content: bytes, count: int) -> list[bytes]:
    """TensorFlow's string ``tensor_content`` encoding: ``count`` varint32 lengths, then the
    bytes of each string."""
    lengths = []
    pos = 0
    for _ in range(count):
        length, pos = _read_varint32(content, pos)
        lengths.append(length)
    if pos + sum(lengths) != len(content):
        raise ValueError("string tensor_content size mismatch")
    values = []
    for length in lengths:
        values.append(content[pos : pos + length])
        pos += length
    return values


def _object_array(values: list[bytes], shape: tuple[int, ...]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array.reshape(shape)


def _from_field(
    proto: tensor_pb2.TensorProto, dtype: str, target: np.dtype, count: int
) -> np.ndarray:
    """The first ``count`` values of a typed field, padded with the last value up to ``count``.
    The padding is written into the result in place: a short field costs the tensor plus the
    values given, not a second tensor."""
    field = _FIELDS[dtype]
    values = getattr(proto, field)
    width = 2 if field in ("scomplex_val", "dcomplex_val") else 1
    given = min(len(values) // width, count)
    if given == 0:
        return np.zeros(count, dtype=target)
    element = _FIELD_DTYPES.get(field, target)
    if field in _FIXED_WIDTH_FIELDS:
        data = _fixed_width_bytes(proto, field)
        raw = np.frombuffer(data, element.newbyteorder("<"), given * width).astype(element)
    else:
        raw = np.array(values[: given * width], dtype=element)
    reinterpret = field == "half_val" or width == 2  # bits of half/bfloat16, complex pairs
    flat = raw.view(target) if reinterpret else raw.astype(target, copy=False)
    if given < count:
        padded = np.empty(count, dtype=target)
        padded[:given] = flat
        padded[given:] = flat[-1]
        return padded
    return flat


def to_ndarray(
    proto: tensor_pb2.TensorProto,
    expected_dtype: str | None = None,
    *,
    alias: str = "",
    arg_index: int = 0,
) -> np.ndarray:
    """The array a ``TensorProto`` holds (strings: an object array of ``bytes``).

    ``expected_dtype`` is the signature's dtype name (``"DT_FLOAT"``); ``alias`` names the
    input in parsing errors and ``arg_index`` is its call-frame position (see the module
    docstring). The returned array owns its memory.

    Raises:
        ServingStatusError: INVALID_ARGUMENT ``tensor parsing error: <alias>`` for a proto
            TensorFlow would not parse; INVALID_ARGUMENT ``Expects arg[i] to be X but Y is
            provided`` when the dtype is not ``expected_dtype``; UNIMPLEMENTED for a valid dtype
            numpy cannot hold (quantized types, resource, variant).
    """
    dtype = types_pb2.DataType.Name(proto.dtype) if proto.dtype in _DTYPE_NAMES else ""
    dims = tuple(d.size for d in proto.tensor_shape.dim)
    if dtype in ("", "DT_INVALID") or len(dims) > _NUMPY_MAX_DIMS or min(dims, default=0) < 0:
        raise invalid_argument(f"tensor parsing error: {alias}")
    target = _numpy_dtype(dtype)
    if target is None or dtype not in _FIELDS:
        raise unimplemented(
            f"Tensors of type {dtype_string(dtype)} are not supported by this server"
        )
    count = math.prod(dims)
    content = proto.tensor_content  # each read of a bytes field copies it
    try:
        if count == 0:  # TensorFlow reads no values at all then
            array = _object_array([], dims) if dtype == "DT_STRING" else np.empty(dims, target)
        elif dtype == "DT_STRING":
            if content:
                values = _strings_from_content(content, count)
            else:
                values = list(proto.string_val[:count])
                values += [values[-1] if values else b""] * (count - len(values))
            array = _object_array(values, dims)
        elif content:
            if len(content) != count * target.itemsize:
                raise ValueError("tensor_content size mismatch")
            if dtype == "DT_BOOL" and max(content) > 1:  # TensorFlow refuses other bytes
                raise ValueError("bool tensor_content holds a byte other than 0 and 1")
            array = np.frombuffer(content, dtype=target.newbyteorder("<")).reshape(dims)
            array = array.astype(target)  # a writable copy in native byte order
        else:
            array = _from_field(proto, dtype, target, count).reshape(dims)
    except (ValueError, MemoryError):  # MemoryError: a shape whose elements cannot be allocated
        raise invalid_argument(f"tensor parsing error: {alias}") from None
    if expected_dtype is not None and dtype != expected_dtype:
        raise invalid_argument(
            f"Expects arg[{arg_index}] to be {dtype_string(expected_dtype)} "
            f"but {dtype_string(dtype)} is provided"
        )
    return array


_DTYPE_NAMES = frozenset(types_pb2.DataType.values())


def from_ndarray(
    array: np.ndarray, dtype: str | None = None, *, as_field: bool = False
) -> tensor_pb2.TensorProto:
    """A ``TensorProto`` holding ``array`` (anything ``np.asarray`` takes).

    ``dtype`` (a TensorFlow dtype name) converts the values first; without it the dtype
    follows the array's (``bytes``/``str``/object arrays are ``DT_STRING``, ``str`` encoded as
    UTF-8). Numeric values go to ``tensor_content`` (little-endian), or with ``as_field=True``
    to the typed repeated field as ``Tensor::AsProtoField`` writes them.

    Raises:
        ServingStatusError: INVALID_ARGUMENT for a numpy dtype TensorFlow has no dtype for.
    """
    array = np.asarray(array)
    name = dtype or dtype_name_of(array)
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DataType.Value(name))
    proto.tensor_shape.SetInParent()  # present even for scalars, as TensorFlow writes it
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if name == "DT_STRING":
        proto.string_val.extend(
            x if isinstance(x, bytes) else str(x).encode() for x in array.reshape(-1).tolist()
        )
        return proto
    target = _numpy_dtype(name)
    if target is None or name not in _FIELDS:
        raise unimplemented(
            f"Tensors of type {dtype_string(name)} are not supported by this server"
        )
    values = np.ascontiguousarray(array, dtype=target.newbyteorder("<"))
    if not as_field:
        proto.tensor_content = values.tobytes()
        return proto
    field = _FIELDS[name]
    flat = values.reshape(-1)
    if field in _FIXED_WIDTH_FIELDS:
        proto.MergeFromString(_packed_field(_FIXED_WIDTH_FIELDS[field], flat.tobytes()))
        return proto
    if field == "half_val":
        flat = flat.view(np.uint16)
    elif field in ("scomplex_val", "dcomplex_val"):
        flat = flat.view(_FIELD_DTYPES[field])
    getattr(proto, field).extend(flat.tolist())
    return proto


def ndarrays_by_alias(tensors: Any) -> dict[str, np.ndarray]:
    """A request's ``map<string, TensorProto>`` (e.g. ``PredictRequest.inputs``) as numpy
    arrays, by alias; see :func:`to_ndarray` for what is refused."""
    return {alias: to_ndarray(t, alias=alias) for alias, t in tensors.items()}
