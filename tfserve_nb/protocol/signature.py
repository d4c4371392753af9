"""A framework-free description of a SavedModel signature (``SignatureDef``).

The REST codec and request validation work from these objects, so they are testable without
TensorFlow. Dtypes are TensorFlow's ``DataType`` enum names (``"DT_FLOAT"``); :data:`NUMPY_DTYPES`
maps the ones that have a numpy equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.status import invalid_argument

NUMPY_DTYPES: dict[str, np.dtype] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_DOUBLE": np.dtype(np.float64),
    "DT_HALF": np.dtype(np.float16),
    "DT_INT8": np.dtype(np.int8),
    "DT_INT16": np.dtype(np.int16),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_UINT8": np.dtype(np.uint8),
    "DT_UINT16": np.dtype(np.uint16),
    "DT_UINT32": np.dtype(np.uint32),
    "DT_UINT64": np.dtype(np.uint64),
    "DT_BOOL": np.dtype(np.bool_),
    "DT_STRING": np.dtype(object),
    "DT_COMPLEX64": np.dtype(np.complex64),
    "DT_COMPLEX128": np.dtype(np.complex128),
}
"""numpy dtype for each TensorFlow dtype name. Strings are numpy object arrays of ``bytes``."""

_DTYPES_BY_NUMPY = {np_dtype: name for name, np_dtype in NUMPY_DTYPES.items()}


def dtype_string(dtype: str) -> str:
    """TensorFlow's ``DataTypeString``: ``DT_FLOAT`` -> ``float``."""
    return dtype.removeprefix("DT_").lower()


def dtype_name_of(array: np.ndarray) -> str:
    """The TensorFlow dtype name of a numpy array (bytes, str and object arrays: strings).
    Raises INVALID_ARGUMENT for a numpy dtype TensorFlow has no dtype for."""
    name = _DTYPES_BY_NUMPY.get(array.dtype)  # first: the common case, and the cheapest test
    if name is not None:
        return name
    if array.dtype.kind in "OSU":
        return "DT_STRING"
    if array.dtype.name == "bfloat16":
        return "DT_BFLOAT16"
    raise invalid_argument(f"Cannot convert an array of numpy dtype {array.dtype} to a tensor")


DEFAULT_SERVING_SIGNATURE_DEF_KEY = "serving_default"
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature.

    ``alias`` is the signature's key (what clients use); ``tensor_name`` the graph tensor name;
    ``shape`` has ``None`` for unknown dimensions and is ``None`` altogether for unknown rank.
    """

    alias: str
    dtype: str
    shape: tuple[int | None, ...] | None
    tensor_name: str = ""

    @property
    def numpy_dtype(self) -> np.dtype | None:
        """The numpy dtype, or ``None`` when numpy has none (e.g. ``DT_BFLOAT16``)."""
        return NUMPY_DTYPES.get(self.dtype)

    def describe(self) -> str:
        """Short human form, e.g. ``float[?,64]``."""
        name = self.dtype.removeprefix("DT_").lower()
        if self.shape is None:
            return f"{name}[...]"
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{name}[{dims}]"


@dataclass(frozen=True)
class Signature:
    """One entry of a SavedModel's signature map."""

    key: str
    method_name: str
    inputs: dict[str, TensorSpec] = field(default_factory=dict)
    outputs: dict[str, TensorSpec] = field(default_factory=dict)


def _tensor_spec(alias: str, info: Any) -> TensorSpec:
    from tensorflow.core.framework import types_pb2

    shape_proto = info.tensor_shape
    shape = (
        None
        if shape_proto.unknown_rank
        else tuple(None if d.size < 0 else d.size for d in shape_proto.dim)
    )
    return TensorSpec(alias, types_pb2.DataType.Name(info.dtype), shape, info.name)


def signatures_from_meta_graph(meta_graph: Any) -> dict[str, Signature]:
    """Framework-free descriptions of every signature in ``meta_graph`` (a ``MetaGraphDef``, or
    anything else with a ``signature_def`` map, such as a ``SignatureDefMap``)."""
    return {
        key: Signature(
            key,
            sig.method_name,
            {a: _tensor_spec(a, i) for a, i in sorted(sig.inputs.items())},
            {a: _tensor_spec(a, i) for a, i in sorted(sig.outputs.items())},
        )
        for key, sig in meta_graph.signature_def.items()
    }
