"""TF Lite test models, built by TensorFlow's own converters (nothing here writes a model by hand).

- :func:`converted_half_plus` — ``0.5 * x + n`` converted from a ``tf.function`` the way TF 2
  converts (``TFLiteConverter.from_concrete_functions``): tensors ``serving_default_x:0`` →
  ``PartitionedCall:0``, and only TF Lite's own signature runner, which TF Serving does not read.
- :func:`session_half_plus` — the same converted from a TF 1 session
  (``TFLiteConverter.from_session``), as TF Serving's ``saved_model_half_plus_two_tflite`` was:
  tensors ``x`` → ``y`` (names without ``:0``).
- :func:`broadcast_tflite` — ``x + [[0, 1, 2]]``, whose input cannot take two columns.
- :func:`with_signature_defs` — a model with SignatureDefs in its ``signature_defs_metadata``
  entry, laid out as TF Lite's ``signature_def_util.cc`` writes it (a FlexBuffer map of key →
  serialized ``SignatureDef``; the Python ``signature_def_utils`` is not in the pip package).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def converted_half_plus(n: float) -> bytes:
    import tensorflow as tf

    class HalfPlus(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"y": x * 0.5 + n}

    module = HalfPlus()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module
    )
    return bytes(converter.convert())


def session_half_plus(n: float) -> bytes:
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, shape=(1, 1), name="x")
        y = tf.identity(x * 0.5 + n, name="y")
        return bytes(v1.lite.TFLiteConverter.from_session(session, [x], [y]).convert())


def broadcast_tflite() -> bytes:
    """``y = x + [[0, 1, 2]]`` for ``x`` of shape ``[?, 1]`` (a ``[?, 2]`` input does not
    broadcast: its tensors cannot be allocated), converted as TF 2 converts; tensors
    ``serving_default_x:0`` → ``PartitionedCall:0``."""
    import tensorflow as tf

    class Broadcast(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            return {"y": x + tf.constant([[0.0, 1.0, 2.0]])}

    module = Broadcast()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module
    )
    return bytes(converter.convert())


def signature_def(
    inputs: Mapping[str, str], outputs: Mapping[str, str], shape: tuple[int, ...] = (1, 1)
) -> Any:
    """A float predict ``SignatureDef``: alias → tensor name, every tensor of ``shape``."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2

    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for infos, names in ((signature.inputs, inputs), (signature.outputs, outputs)):
        for alias, name in names.items():
            infos[alias].name = name
            infos[alias].dtype = types_pb2.DT_FLOAT
            for size in shape:
                infos[alias].tensor_shape.dim.add().size = size
    return signature


def with_signature_defs(model: bytes, signature_defs: Mapping[str, Any]) -> bytes:
    """``model`` with ``signature_defs`` (key → ``SignatureDef``) in a ``signature_defs_metadata``
    entry. The serialized SignatureDefs must be valid UTF-8 (small ones with non-negative
    dimensions are): Python's FlexBuffer builder writes strings from text only."""
    from flatbuffers import flexbuffers

    builder = flexbuffers.Builder()
    with builder.Map():
        for key in sorted(signature_defs):
            builder.String(key, signature_defs[key].SerializeToString().decode("utf-8"))
    return with_metadata(model, "signature_defs_metadata", bytes(builder.Finish()))


def with_metadata(model: bytes, name: str, data: bytes) -> bytes:
    """``model`` with one more metadata entry, ``name``, holding ``data`` in a buffer of its
    own."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model_object = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    buffer = schema.BufferT()
    buffer.data = list(data)
    model_object.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name = name
    metadata.buffer = len(model_object.buffers) - 1
    model_object.metadata = [*(model_object.metadata or []), metadata]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_object))
