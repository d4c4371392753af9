"""Serving a version's ``model.tflite`` with TF Lite (``--prefer_tflite_model``), as upstream's
``TfLiteSession`` (``servables/tensorflow/tflite_session.cc``) does.

:class:`TfLiteModelLoader` is the loader the server core makes for a version directory holding
:data:`TFLITE_MODEL_FILENAME` when the flag is on; its servable, :class:`TfLiteModelServable`,
has the interface of the SavedModel servable (``path``, ``signatures``, ``signature_def_map``,
``run``, ``close``), so predict, metadata and warmup work on it unchanged, over gRPC and REST.

Signatures, as upstream derives them:

- The model's SignatureDefs are the ones TF Lite's ``signature_def_util`` stores in the model's
  ``signature_defs_metadata`` metadata entry (a FlexBuffer map of key → serialized
  ``SignatureDef``). Each ``TensorInfo`` name must name an input (or output) tensor of the
  model, or do so without its ``:N`` suffix (early converters dropped it), and is rewritten to
  the tensor's name. TF Lite's own signature runners (what today's converters write from
  ``tf.function`` signatures) are not read, as upstream does not read them.
- Without such an entry, one ``serving_default`` predict signature is made from the model's
  input and output tensors: each keyed by its tensor name without ``:N``
  (``serving_default_x:0`` → ``serving_default_x``), with the tensor's full name, dtype and
  current dimensions.

A run feeds each request tensor to the model tensor its signature input names, resizing the
interpreter's inputs to the request's shapes when they differ, invokes, and copies out the
outputs asked for. Errors keep upstream's codes and texts (``Failed to resize input tensor: ...``,
``Failed to allocate tensors``, ``Failed to invoke TfLite interpreter``, all INTERNAL, with TF
Lite's reason logged); one difference: an input of another dtype is refused with TF Lite's
INVALID_ARGUMENT ``Cannot set tensor: Got value of type INT32 but expected type FLOAT32 for
input 0, name: x`` where upstream copies its bytes unchecked.

Interpreters are not thread-safe: a servable has a pool of ``num_interpreters`` (upstream's
``--num_tflite_pools``), each used by one request at a time, single-threaded as upstream's are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.loader import Loader
from ..core.status import Code, ServingStatusError, invalid_argument
from ..protocol.signature import (
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    PREDICT_METHOD_NAME,
    Signature,
    signatures_from_meta_graph,
)

log = logging.getLogger(__name__)

TFLITE_MODEL_FILENAME = "model.tflite"
"""The TF Lite model in a version directory (upstream's ``kTfLiteModelFilename``)."""

SIGNATURE_DEFS_METADATA_NAME = "signature_defs_metadata"
"""The metadata entry holding SignatureDefs (TF Lite's ``kSignatureDefsMetadataName``)."""

_TF_DTYPES: dict[np.dtype, str] = {
    np.dtype(np.float32): "DT_FLOAT",
    np.dtype(np.int32): "DT_INT32",
    np.dtype(np.uint8): "DT_UINT8",
    np.dtype(np.int64): "DT_INT64",
    np.dtype(np.bytes_): "DT_STRING",
    np.dtype(np.object_): "DT_STRING",
    np.dtype(np.bool_): "DT_BOOL",
    np.dtype(np.int16): "DT_INT16",
    np.dtype(np.complex64): "DT_COMPLEX64",
    np.dtype(np.int8): "DT_INT8",
}
"""TF Lite tensor types upstream's ``TfLiteTypeToTfType`` maps (by the numpy dtype TF Lite's
Python reports), to TensorFlow dtype names."""

_TFLITE_TYPE_NUMBERS: dict[np.dtype, int] = {
    np.dtype(np.float16): 10,
    np.dtype(np.float64): 11,
    np.dtype(np.complex128): 12,
    np.dtype(np.uint64): 13,
    np.dtype(np.uint32): 16,
    np.dtype(np.uint16): 17,
}
"""``TfLiteType`` numbers of the types it does not map, for its ``Unknown TfLite type: N``."""


def tflite_model_found(path: str) -> bool:
    """Whether the version directory ``path`` holds a TF Lite model (``TfLiteModelFound``)."""
    return os.path.isfile(os.path.join(path, TFLITE_MODEL_FILENAME))


def legacy_tensor_name(name: str) -> str:
    """``name`` without its ``:N`` suffix (``TfToTfLiteLegacyTensorName``)."""
    return name.split(":", 1)[0]


def _fixed_tensor_name(tensor_names: Collection[str], name: str) -> str:
    """``name`` if the model has that tensor, else its legacy form if it has that one
    (``FixTfLiteTensorName``); raises INTERNAL ``Unknown tensor 'x'.``"""
    if name in tensor_names:
        return name
    legacy = legacy_tensor_name(name)
    if legacy in tensor_names:
        return legacy
    raise ServingStatusError(Code.INTERNAL, f"Unknown tensor '{name}'.")


def _tf_dtype(dtype: np.dtype) -> str:
    name = _TF_DTYPES.get(np.dtype(dtype))
    if name is None:
        number = _TFLITE_TYPE_NUMBERS.get(np.dtype(dtype), np.dtype(dtype).name)
        raise ServingStatusError(Code.INTERNAL, f"Unknown TfLite type: {number}")
    return name


def read_signature_defs(model_content: bytes) -> dict[str, Any]:
    """The SignatureDefs (key → ``SignatureDef`` proto) stored in the model's
    :data:`SIGNATURE_DEFS_METADATA_NAME` entry; empty without one (``GetSignatureDefMap``).
    Raises INVALID_ARGUMENT ``Invalid SignatureDefs found in TfLite model: ...`` with TF Lite's
    reason when the entry cannot be read."""
    from flatbuffers import flexbuffers
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.lite.python import schema_py_generated as schema

    def invalid(reason: str) -> ServingStatusError:
        return invalid_argument(f"Invalid SignatureDefs found in TfLite model: {reason}")

    model = schema.Model.GetRootAs(model_content, 0)
    for i in range(model.MetadataLength()):
        metadata = model.Metadata(i)
        if metadata.Name() != SIGNATURE_DEFS_METADATA_NAME.encode():
            continue
        if metadata.Buffer() >= model.BuffersLength():
            raise invalid("Error reading signature def map: Invalid buffer index in metadata")
        data = model.Buffers(metadata.Buffer()).DataAsNumpy()
        try:
            if isinstance(data, int) or data.size < 3:
                raise ValueError("too short")
            entries = flexbuffers.GetRoot(data.tobytes()).AsMap
            serialized = {
                key.AsKey: value.AsStringBytes
                for key, value in zip(entries.Keys, entries.Values, strict=True)
            }
        except Exception:  # the FlexBuffer is not a map of strings
            raise invalid("Error reading signature def map: Invalid flexbuffer data") from None
        signature_defs = {}
        for key, blob in serialized.items():
            signature_def = meta_graph_pb2.SignatureDef()
            try:
                signature_def.ParseFromString(bytes(blob))
            except Exception:
                raise invalid("Cannot parse signature def found in flatbuffer.") from None
            signature_defs[key] = signature_def
        return signature_defs
    return {}


def _tensor_map(details: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Mapping[str, Any]]:
    """Tensor name → details of the model's inputs or outputs (``GetTensorInfoMap``)."""
    tensors: dict[str, Mapping[str, Any]] = {}
    for detail in details:
        name = detail["name"]
        if not name:
            raise ServingStatusError(
                Code.INTERNAL, f"{kind} name missing for tensor index: {detail['index']}"
            )
        if name in tensors:
            raise ServingStatusError(
                Code.ALREADY_EXISTS, f"{kind} tensor name: {name} has multiple indices"
            )
        _tf_dtype(detail["dtype"])
        tensors[name] = detail
    return tensors


def _tensor_info(info: Any, detail: Mapping[str, Any]) -> None:
    """Fill ``TensorInfo`` ``info`` from a tensor's details (``TfLiteTensorToTensorInfo``)."""
    from tensorflow.core.framework import types_pb2

    info.name = detail["name"]
    info.dtype = types_pb2.DataType.Value(_tf_dtype(detail["dtype"]))
    for size in detail["shape"]:
        info.tensor_shape.dim.add().size = int(size)


def build_signature_defs(
    model_content: bytes,
    inputs: Mapping[str, Mapping[str, Any]],
    outputs: Mapping[str, Mapping[str, Any]],
) -> Any:
    """A ``MetaGraphDef`` holding the model's signature map, as ``TfLiteSession::Create``
    builds it: the stored SignatureDefs with tensor names fixed, or the default signature."""
    from tensorflow.core.protobuf import meta_graph_pb2

    meta_graph = meta_graph_pb2.MetaGraphDef()
    stored = read_signature_defs(model_content)
    for key, stored_def in sorted(stored.items()):
        signature_def = meta_graph.signature_def[key]
        signature_def.CopyFrom(stored_def)
        for kind, names, infos in (
            ("input", inputs, signature_def.inputs),
            ("output", outputs, signature_def.outputs),
        ):
            for alias, info in infos.items():
                try:
                    info.name = _fixed_tensor_name(names, info.name)
                except ServingStatusError as exc:
                    raise ServingStatusError(
                        exc.code,
                        f"{exc.message}\n\tSignature {kind} {alias} references an unknown tensor",
                    ) from None
    if not stored:
        log.warning("No signature def found in TFLite model. Generating one.")
        signature_def = meta_graph.signature_def[DEFAULT_SERVING_SIGNATURE_DEF_KEY]
        for name, detail in sorted(inputs.items()):
            _tensor_info(signature_def.inputs[legacy_tensor_name(name)], detail)
        for name, detail in sorted(outputs.items()):
            _tensor_info(signature_def.outputs[legacy_tensor_name(name)], detail)
        signature_def.method_name = PREDICT_METHOD_NAME
    return meta_graph


def _check_flatbuffer(model_content: bytes) -> None:
    """Raise INVALID_ARGUMENT ``Cannot build FlatBufferModel from buffer.`` unless
    ``model_content`` is a TF Lite flatbuffer (it starts with the ``TFL3`` identifier)."""
    from tensorflow.lite.python import schema_py_generated as schema

    if len(model_content) < 8 or not schema.Model.ModelBufferHasIdentifier(model_content, 0):
        raise invalid_argument("Cannot build FlatBufferModel from buffer.")


def _make_interpreter(model_content: bytes) -> Any:
    """A TF Lite interpreter of the model, single-threaded, tensors allocated. Raises INTERNAL
    ``Cannot build Interpreter from buffer.`` (TF Lite's reason logged)."""
    import tensorflow as tf

    try:
        with warnings.catch_warnings():  # tf.lite.Interpreter warns it is deprecated for LiteRT
            warnings.filterwarnings("ignore", "\\s*Warning: tf.lite.Interpreter is deprecated")
            interpreter = tf.lite.Interpreter(model_content=model_content, num_threads=1)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        log.error("TF Lite cannot build an interpreter: %s", exc)
        raise ServingStatusError(Code.INTERNAL, "Cannot build Interpreter from buffer.") from None
    return interpreter


class _Interpreter:
    """One interpreter and the input shapes it is allocated for. Not thread-safe."""

    def __init__(self, model_content: bytes) -> None:
        self._interpreter = _make_interpreter(model_content)
        self._shapes = {
            d["index"]: tuple(int(s) for s in d["shape"])
            for d in self._interpreter.get_input_details()
        }
        self._itemsizes = {
            d["index"]: np.dtype(d["dtype"]).itemsize for d in self._interpreter.get_input_details()
        }
        self._allocated = True

    def run(
        self, feeds: Sequence[tuple[int, str, np.ndarray]], fetches: Sequence[tuple[str, int]]
    ) -> dict[str, np.ndarray]:
        """Feed ``(index, tensor name, array)``, invoke, return ``alias → array`` of
        ``(alias, index)`` (``SetInputAndInvokeMiniBatch``, ``SetMiniBatchOutput``)."""
        interpreter = self._interpreter
        resize = not self._allocated
        for index, name, array in feeds:
            if array.shape != self._shapes[index]:
                current = int(np.prod(self._shapes[index])) * self._itemsizes[index]
                try:
                    interpreter.resize_tensor_input(index, list(array.shape))
                except (ValueError, RuntimeError) as exc:
                    log.error("TF Lite cannot resize %s to %s: %s", name, array.shape, exc)
                    raise ServingStatusError(
                        Code.INTERNAL,
                        f"Failed to resize input tensor: {name} from {current} to "
                        f"{array.nbytes} bytes.",
                    ) from None
                self._shapes[index] = array.shape
                resize = True
        if resize:
            self._allocated = False
            try:
                interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                log.error("TF Lite cannot allocate tensors: %s", exc)
                raise ServingStatusError(Code.INTERNAL, "Failed to allocate tensors") from None
            self._allocated = True
        for index, _, array in feeds:
            try:
                interpreter.set_tensor(index, array)
            except ValueError as exc:
                raise invalid_argument(str(exc).strip()) from None
        try:
            interpreter.invoke()
        except (ValueError, RuntimeError) as exc:
            log.error("TF Lite invoke failed: %s", exc)
            raise ServingStatusError(Code.INTERNAL, "Failed to invoke TfLite interpreter") from None
        return {alias: interpreter.get_tensor(index) for alias, index in fetches}


class TfLiteModelServable:
    """A loaded TF Lite version. Thread-safe: up to ``num_interpreters`` requests run at once,
    others wait for an interpreter. Raises ServingStatusError (upstream's codes and texts) when
    the model cannot be loaded."""

    def __init__(self, path: str, num_interpreters: int = 1) -> None:
        self.path = path
        with open(os.path.join(path, TFLITE_MODEL_FILENAME), "rb") as f:
            model_content = f.read()
        _check_flatbuffer(model_content)
        first = _Interpreter(model_content)
        inputs = _tensor_map(first._interpreter.get_input_details(), "Input")
        outputs = _tensor_map(first._interpreter.get_output_details(), "Output")
        self.meta_graph = build_signature_defs(model_content, inputs, outputs)
        self.signatures: dict[str, Signature] = signatures_from_meta_graph(self.meta_graph)
        self._input_indices = {name: int(d["index"]) for name, d in inputs.items()}
        self._output_indices = {name: int(d["index"]) for name, d in outputs.items()}
        self._pool: queue.SimpleQueue[_Interpreter] = queue.SimpleQueue()
        self._pool.put(first)
        for _ in range(max(1, num_interpreters) - 1):
            self._pool.put(_Interpreter(model_content))

    @property
    def signature_def_map(self) -> Any:
        """The ``signature_def`` protobuf map, as ``GetModelMetadata`` returns it."""
        return self.meta_graph.signature_def

    @contextlib.contextmanager
    def _interpreter(self) -> Iterator[_Interpreter]:
        interpreter = self._pool.get()
        try:
            yield interpreter
        finally:
            self._pool.put(interpreter)

    def run(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], aliases: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` on ``inputs`` (named as its inputs; checked by name already) and
        return the outputs named in ``aliases``. Raises ServingStatusError."""
        feeds = []
        for alias, array in inputs.items():
            name = signature.inputs[alias].tensor_name
            feeds.append((self._input_indices[name], name, np.asarray(array)))
        fetches = [
            (alias, self._output_indices[signature.outputs[alias].tensor_name]) for alias in aliases
        ]
        with self._interpreter() as interpreter:
            return interpreter.run(feeds, fetches)

    def close(self) -> None:
        """Nothing to release but memory (the interpreters go with the servable)."""


class TfLiteModelLoader(Loader):
    """Loads the TF Lite model of the version at ``path`` with ``num_interpreters`` interpreters.

    ``warmup``, if given, is called with the loaded servable before :meth:`load` returns (the
    version's warmup requests replay on it); if it raises, the load fails with that error.
    """

    def __init__(
        self,
        path: str,
        num_interpreters: int = 1,
        warmup: Callable[[TfLiteModelServable], None] | None = None,
    ) -> None:
        self.path = path
        self.num_interpreters = num_interpreters
        self.warmup = warmup
        self._servable: TfLiteModelServable | None = None

    def load(self) -> None:
        servable = TfLiteModelServable(self.path, self.num_interpreters)
        if self.warmup is not None:
            self.warmup(servable)
        self._servable = servable

    def unload(self) -> None:
        if self._servable is not None:
            self._servable.close()
        self._servable = None

    def servable(self) -> TfLiteModelServable:
        if self._servable is None:
            raise RuntimeError(f"TF Lite model at {self.path} is not loaded")
        return self._servable
