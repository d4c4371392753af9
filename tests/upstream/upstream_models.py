"""Generators of the models TF Serving's integration suite
(``tensorflow_serving/model_servers/tensorflow_model_server_test.py``) loads.

Upstream commits its test models as binaries under
``tensorflow_serving/servables/tensorflow/testdata/``; we commit only these generators, written
here from what upstream's export scripts do (``saved_model_half_plus_two.py``,
``export_counter.py``, TF Text's ``save_models.py``) and checked against ``saved_model_cli show
--all`` of upstream's binaries: the same signature keys, method names, tensor names, dtypes and
shapes (:data:`EXPECTED_SIGNATURE_DEFS`, asserted by ``test_upstream_models.py``). The fixtures
write them into a session's temporary directory; nothing is downloaded.

=====================================  ==========================================================
generator                              reproduces upstream's
=====================================  ==========================================================
:func:`saved_model_half_plus_two`      ``saved_model_half_plus_two_cpu`` (TF1 graph), and the
                                       ``_mlmd`` variant (``mlmd=True``)
:func:`saved_model_half_plus_two_tf2`  ``saved_model_half_plus_two_tf2_cpu`` (``tf.Module``)
:func:`saved_model_half_plus_two_      ``saved_model_half_plus_two_tflite`` and
tflite`                                ``..._tflite_with_sigdef`` (``with_signature_def=True``)
:func:`saved_model_half_plus_three`    ``saved_model_half_plus_three``, with its SignatureDefs
                                       that disagree with its graph
:func:`saved_model_counter`            ``saved_model_counter`` (``export_counter.py``)
:func:`tf_text_regression`             ``tf_text_regression`` (needs ``tensorflow-text``, and
                                       ``sentencepiece`` to train its SentencePiece model)
:func:`tf_saved_model_save` ...        the models upstream's tests build inline
                                       (``test_tf_saved_model_save``, ...; Keras 2 via
                                       ``tf_keras``)
=====================================  ==========================================================

Version directories are named as upstream's (``00000123``; ``01`` for TF Text's). Each generator
writes one version directory (``export_dir``, which must not exist) and returns it.

Run as a script (``python upstream_models.py GENERATOR EXPORT_DIR``) a generator runs in a fresh
process: :func:`keras_distributed_sequential` needs two virtual CPUs, which TensorFlow allows
to configure only before its runtime starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

VERSION_DIR = "00000123"
"""Upstream's version directory of every half_plus_two/three and counter model (version 123)."""

ASSET_CONTENTS = "asset-file-contents"
"""What upstream's ``assets/foo.txt`` holds."""


def _tf() -> Any:
    import tensorflow as tf

    return tf


# --- signature helpers (tf.compat.v1, as upstream's export scripts) ---------------------------


def _signature(inputs: Mapping[str, Any], outputs: Mapping[str, Any], method_name: str) -> Any:
    """A SignatureDef whose TensorInfos are built from graph tensors."""
    v1 = _tf().compat.v1
    return v1.saved_model.signature_def_utils.build_signature_def(
        {key: v1.saved_model.utils.build_tensor_info(t) for key, t in inputs.items()},
        {key: v1.saved_model.utils.build_tensor_info(t) for key, t in outputs.items()},
        method_name,
    )


PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


def _write_original_asset(staging: Path) -> Path:
    """``foo.txt`` with :data:`ASSET_CONTENTS`, where the builder copies it from (upstream writes
    it to ``/tmp/original/export/assets``; we write into a private temporary directory)."""
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / "foo.txt"
    path.write_text(ASSET_CONTENTS)
    return path


def _asset_file_op(staging: Path) -> Any:
    """Upstream's TF1 asset set-up: the asset's path in ``ASSET_FILEPATHS`` and an untracked
    string variable ``filename_tensor`` whose assignment becomes the main op."""
    tf = _tf()
    v1 = tf.compat.v1
    path = _write_original_asset(staging)
    v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, tf.constant(str(path)))
    filename_tensor = v1.Variable(
        "foo.txt", name="filename_tensor", trainable=False, collections=[], use_resource=False
    )
    return filename_tensor.assign("foo.txt")


def _parse_example(serialized: Any, with_x2: bool) -> list[Any]:
    """Upstream's ``tf.parse_example`` of ``x`` (float [1], required) and, with ``with_x2``,
    ``x2`` (float [1], default 0): the TF1 ``ParseExample`` op its binaries hold (TF 2's
    ``tf.compat.v1.parse_example`` would emit ``ParseExampleV2``)."""
    tf = _tf()
    with tf.name_scope("ParseExample"):
        defaults = [tf.constant([], tf.float32)]
        keys = ["x"]
        if with_x2:
            defaults.append(tf.reshape(tf.constant([0.0], name="key_x2"), [1]))
            keys.append("x2")
        dense = tf.raw_ops.ParseExample(
            serialized=serialized,
            names=tf.constant([], tf.string, name="ParseExample/names"),
            sparse_keys=[],
            dense_keys=[
                tf.constant(k, name=f"ParseExample/dense_keys_{i}") for i, k in enumerate(keys)
            ],
            dense_defaults=defaults,
            sparse_types=[],
            dense_shapes=[[1]] * len(keys),
            name="ParseExample",
        ).dense_values
    return list(dense)


def _save_builder(
    export_dir: Path,
    session: Any,
    signature_def_map: Mapping[str, Any],
    main_op: Any | None = None,
) -> None:
    v1 = _tf().compat.v1
    builder = v1.saved_model.builder.SavedModelBuilder(str(export_dir))
    builder.add_meta_graph_and_variables(
        session,
        [v1.saved_model.tag_constants.SERVING],
        signature_def_map=dict(signature_def_map),
        assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
        main_op=main_op,
    )
    builder.save()


def _rewrite_saved_model(export_dir: Path, edit: Callable[[Any], None]) -> None:
    """Apply ``edit`` to the ``MetaGraphDef`` in ``saved_model.pb`` and write it back (the
    fingerprint of the original bytes is dropped: upstream's TF 1.x binaries have none)."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = export_dir / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(pb.read_bytes())
    (meta_graph,) = saved_model.meta_graphs
    edit(meta_graph)
    pb.write_bytes(saved_model.SerializeToString())
    (export_dir / "fingerprint.pb").unlink(missing_ok=True)


# --- half_plus_two ----------------------------------------------------------------------------


def _half_plus_two_graph(staging: Path, variant: str) -> tuple[Any, Any, dict[str, Any], Any]:
    """Upstream's TF1 half_plus_two graph in the default graph, in ``/cpu:0``: ``y = a*x + b``,
    ``y2 = a*x + c``, ``y3 = a2*x2 + c2`` (a = a2 = 0.5, b = 2, c = c2 = 3), ``x`` and ``x2``
    parsed from the ``tf_example`` placeholder. ``variant`` is ``saved_model``, ``tflite``
    (``x`` fixed at [1,1]) or ``tflite_with_sigdef`` (the input also named ``tflite_input``).
    Returns ``(x, y, signature_def_map, main_op)``."""
    tf = _tf()
    v1 = tf.compat.v1
    with tf.device("/cpu:0"):
        a = v1.Variable(0.5, name="a", use_resource=False)
        b = v1.Variable(2.0, name="b", use_resource=False)
        c = v1.Variable(3.0, name="c", use_resource=False)
        serialized = v1.placeholder(tf.string, name="tf_example", shape=None)
        parsed_x, parsed_x2 = _parse_example(serialized, with_x2=True)
        if variant == "tflite":  # the TF Lite converter needs a known input shape
            x = tf.ensure_shape(parsed_x, (1, 1), name="x")
        else:
            x = tf.identity(parsed_x, name="x")
        if variant == "tflite_with_sigdef":
            x = tf.ensure_shape(parsed_x, (1, 1), name="tflite_input")
        y = tf.identity(tf.add(tf.multiply(a, x), b), name="y")
        y2 = tf.identity(tf.add(tf.multiply(a, x), c), name="y2")
        x2 = tf.identity(parsed_x2, name="x2")
        # Upstream's own variables for x2's path, so optimizers do not fuse it with y's.
        a2 = v1.Variable(0.5, name="a2", use_resource=False)
        c2 = v1.Variable(3.0, name="c2", use_resource=False)
        y3 = tf.identity(tf.add(tf.multiply(a2, x2), c2), name="y3")
    assign_filename = _asset_file_op(staging)
    signatures = {
        "regress_x_to_y": _signature({"inputs": serialized}, {"outputs": y}, REGRESS),
        "regress_x_to_y2": _signature({"inputs": serialized}, {"outputs": y2}, REGRESS),
        "regress_x2_to_y3": _signature({"inputs": x2}, {"outputs": y3}, REGRESS),
        "classify_x_to_y": _signature({"inputs": serialized}, {"scores": y}, CLASSIFY),
        "serving_default": _signature({"x": x}, {"y": y}, PREDICT),
    }
    return x, y, signatures, tf.group(assign_filename)


def saved_model_half_plus_two(export_dir: Path, *, mlmd: bool = False) -> Path:
    """Upstream's ``saved_model_half_plus_two_cpu/00000123``: a TF1 ``SavedModelBuilder``
    export of :func:`_half_plus_two_graph` with five signatures (``serving_default`` x → y,
    ``regress_x_to_y``, ``regress_x_to_y2``, ``regress_x2_to_y3``, ``classify_x_to_y``),
    ``assets/foo.txt`` and the asset assignment as main op. ``mlmd=True`` also writes
    ``assets.extra/mlmd_uuid`` (``saved_model_half_plus_two_mlmd``)."""
    tf = _tf()
    v1 = tf.compat.v1
    with (
        tempfile.TemporaryDirectory() as staging,
        tf.Graph().as_default(),
        v1.Session() as session,
    ):
        _, _, signatures, main_op = _half_plus_two_graph(Path(staging), "saved_model")
        session.run(v1.global_variables_initializer())
        _save_builder(export_dir, session, signatures, main_op)
    if mlmd:
        (export_dir / "assets.extra").mkdir()
        (export_dir / "assets.extra" / "mlmd_uuid").write_text("test_mlmd_uuid")
    return export_dir


def saved_model_half_plus_two_tflite(export_dir: Path, *, with_signature_def: bool = False) -> Path:
    """Upstream's ``saved_model_half_plus_two_tflite/00000123/model.tflite``: the TF Lite
    conversion (``TFLiteConverter.from_session``) of half_plus_two's ``x`` → ``y``, input
    float32 [1,1] named ``x``. With ``with_signature_def`` it is
    ``saved_model_half_plus_two_tflite_with_sigdef``: the input is named ``tflite_input`` and
    the model carries ``serving_default`` (``x`` → ``tflite_input:0``, ``y`` → ``y:0``) in its
    ``signature_defs_metadata`` entry, as TF Lite's ``signature_def_utils.set_signature_defs``
    (not in the pip package) writes it."""
    tf = _tf()
    v1 = tf.compat.v1
    variant = "tflite_with_sigdef" if with_signature_def else "tflite"
    with (
        tempfile.TemporaryDirectory() as staging,
        tf.Graph().as_default(),
        v1.Session() as session,
    ):
        x, y, signatures, _ = _half_plus_two_graph(Path(staging), variant)
        session.run(v1.global_variables_initializer())
        model = v1.lite.TFLiteConverter.from_session(session, [x], [y]).convert()
    if with_signature_def:
        model = _with_signature_defs(model, {"serving_default": signatures["serving_default"]})
    export_dir.mkdir(parents=True)
    (export_dir / "model.tflite").write_bytes(model)
    return export_dir


def _with_signature_defs(model: bytes, signature_defs: Mapping[str, Any]) -> bytes:
    """``model`` with a ``signature_defs_metadata`` metadata entry: a flexbuffer map from
    signature key to the serialized SignatureDef, stored as flexbuffer strings (the layout TF
    Lite's ``signature_def_util.cc`` writes and TF Serving's TF Lite session reads)."""
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    class Builder(flexbuffers.Builder):  # type: ignore[misc]
        def raw_string(self, data: bytes) -> None:
            """A flexbuffer string of raw bytes (``String`` takes text only)."""
            self._WriteBlob(data, append_zero=True, type_=flexbuffers.Type.STRING)

    builder = Builder()
    with builder.Map():
        for key in sorted(signature_defs):
            builder.Key(key)
            builder.raw_string(signature_defs[key].SerializeToString())
    flexbuffer = bytes(builder.Finish())

    model_object = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    buffer = schema.BufferT()
    buffer.data = list(flexbuffer)
    model_object.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name = "signature_defs_metadata"
    metadata.buffer = len(model_object.buffers) - 1
    model_object.metadata = [*(model_object.metadata or []), metadata]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_object))


class _HalfPlusTwoModule:
    """Factory of upstream's ``HalfPlusTwoModel`` (a ``tf.Module``), made on first use so that
    importing this file does not import TensorFlow."""

    @staticmethod
    def make(staging: Path) -> Any:
        tf = _tf()
        v1 = tf.compat.v1

        def feature_spec() -> dict[str, Any]:
            return {
                "x": v1.FixedLenFeature([1], dtype=tf.float32),
                "x2": v1.FixedLenFeature([1], dtype=tf.float32, default_value=[0.0]),
            }

        string_batch = tf.TensorSpec([None], dtype=tf.string, name="inputs")
        one_float = tf.TensorSpec(shape=[1], dtype=tf.float32, name="inputs")

        class HalfPlusTwo(tf.Module):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.a = tf.Variable(0.5, name="a")
                self.b = tf.Variable(2.0, name="b")
                self.c = tf.Variable(3.0, name="c")
                self.asset = tf.saved_model.Asset(str(_write_original_asset(staging)))

            def compute(self, x: Any, inc: Any) -> Any:
                return tf.add(tf.multiply(self.a, x), inc)

            @tf.function(input_signature=[tf.TensorSpec(shape=[1], dtype=tf.float32)])
            def predict(self, x: Any = tf.constant([0], shape=[1], dtype=tf.float32)) -> Any:  # noqa: B008
                return {"y": self.compute(x, self.b)}

            @tf.function(input_signature=[string_batch])
            def regress_xy(self, serialized_proto: Any) -> Any:
                x = v1.parse_example(serialized_proto, feature_spec())["x"]
                return {"outputs": self.compute(x, self.b)}

            @tf.function(input_signature=[string_batch])
            def regress_xy2(self, serialized_proto: Any) -> Any:
                x = v1.parse_example(serialized_proto, feature_spec())["x"]
                return {"outputs": self.compute(x, self.c)}

            @tf.function(input_signature=[one_float])
            def regress_x2y3(self, x2: Any) -> Any:
                return {"outputs": self.compute(x2, self.c)}

            @tf.function(input_signature=[string_batch])
            def classify_xy(self, serialized_proto: Any) -> Any:
                x = v1.parse_example(serialized_proto, feature_spec())["x"]
                return {"scores": self.compute(x, self.b)}

            @tf.function(input_signature=[one_float])
            def classify_x2y3(self, x2: Any) -> Any:
                return {"scores": self.compute(x2, self.c)}

            def signatures(self) -> dict[str, Any]:
                return {
                    "regress_x_to_y": self.regress_xy,
                    "regress_x_to_y2": self.regress_xy2,
                    "regress_x2_to_y3": self.regress_x2y3,
                    "classify_x_to_y": self.classify_xy,
                    "classify_x2_to_y3": self.classify_x2y3,
                    "serving_default": self.predict,
                }

        return HalfPlusTwo()


def saved_model_half_plus_two_tf2(export_dir: Path) -> Path:
    """Upstream's ``saved_model_half_plus_two_tf2_cpu/00000123``: a native TF2
    ``tf.saved_model.save`` of a ``tf.Module`` with six signatures, every one with TF2's
    method name ``tensorflow/serving/predict``: ``serving_default`` (``x`` float [1], default
    ``[0]`` → ``y``), ``regress_x_to_y``/``regress_x_to_y2``/``classify_x_to_y`` (serialized
    tf.Examples [?] → [?,1]) and ``regress_x2_to_y3``/``classify_x2_to_y3`` (float [1])."""
    tf = _tf()
    with tempfile.TemporaryDirectory() as staging:
        module = _HalfPlusTwoModule.make(Path(staging))
        tf.saved_model.save(module, str(export_dir), signatures=module.signatures())
    return export_dir


# --- half_plus_three --------------------------------------------------------------------------


def saved_model_half_plus_three(export_dir: Path) -> Path:
    """Upstream's ``saved_model_half_plus_three/00000123``, a TF 1.0 export: ``y = a*x + b``
    (a = 0.5, b = 3; ``x`` parsed from ``tf_example``) and ``y2 = a*x2 + c`` (c = 3, ``x2`` a
    float placeholder), ``assets/foo.txt``, the asset assignment as ``legacy_init_op``.

    Its two SignatureDefs disagree with the graph, and are rewritten to be exactly upstream's:
    no TensorInfo has a shape (``saved_model_cli`` shows ``()``) though ``x:0``/``y:0`` are
    [?,1]; ``serving_default`` is ``x:0`` → ``y:0``; ``tensorflow/serving/regress`` declares its
    input ``tf_example:0`` DT_FLOAT (the placeholder is a string) and outputs ``Identity:0``."""
    tf = _tf()
    v1 = tf.compat.v1
    with (
        tempfile.TemporaryDirectory() as staging,
        tf.Graph().as_default(),
        v1.Session() as session,
    ):
        a = v1.Variable(0.5, name="a", use_resource=False)
        b = v1.Variable(3.0, name="b", use_resource=False)
        c = v1.Variable(3.0, name="c", use_resource=False)
        serialized = v1.placeholder(tf.string, name="tf_example", shape=None)
        (parsed_x,) = _parse_example(serialized, with_x2=False)
        x = tf.identity(parsed_x, name="x")
        y = tf.add(tf.multiply(a, x), b, name="y")
        x2 = v1.placeholder(tf.float32, name="x2", shape=None)
        tf.add(tf.multiply(a, x2), c, name="y2")
        assign_filename = _asset_file_op(Path(staging))
        regress_output = tf.identity(y)
        signatures = {
            "serving_default": _signature({"x": x}, {"y": y}, PREDICT),
            REGRESS: _signature({"inputs": serialized}, {"outputs": regress_output}, REGRESS),
        }
        session.run(v1.global_variables_initializer())
        _save_builder(export_dir, session, signatures, tf.group(assign_filename))

    def as_upstream(meta_graph: Any) -> None:
        from tensorflow.core.framework import types_pb2

        for signature in meta_graph.signature_def.values():
            for info in [*signature.inputs.values(), *signature.outputs.values()]:
                info.ClearField("tensor_shape")
        meta_graph.signature_def[REGRESS].inputs["inputs"].dtype = types_pb2.DT_FLOAT
        collections = meta_graph.collection_def
        collections["legacy_init_op"].CopyFrom(collections["saved_model_main_op"])
        del collections["saved_model_main_op"]

    _rewrite_saved_model(export_dir, as_upstream)
    return export_dir


# --- counter ----------------------------------------------------------------------------------


def saved_model_counter(export_dir: Path) -> Path:
    """Upstream's ``saved_model_counter/00000123`` (``export_counter.py``): one float variable
    ``counter`` and four stateful predict signatures, ``get_counter``, ``incr_counter``,
    ``incr_counter_by`` (input ``delta``) and ``reset_counter``, each with output ``output``
    (DT_FLOAT_REF, shape ()); no assets, no main op."""
    tf = _tf()
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        counter = v1.Variable(0.0, dtype=tf.float32, name="counter", use_resource=False)
        with tf.name_scope("incr_counter_op"):
            incr_counter = counter.assign_add(1.0)
        delta = v1.placeholder(dtype=tf.float32, name="delta")
        with tf.name_scope("incr_counter_by_op"):
            incr_counter_by = counter.assign_add(delta)
        with tf.name_scope("reset_counter_op"):
            reset_counter = counter.assign(0.0)
        session.run(v1.global_variables_initializer())
        signatures = {
            "get_counter": _signature({}, {"output": counter}, PREDICT),
            "incr_counter": _signature({}, {"output": incr_counter}, PREDICT),
            "incr_counter_by": _signature({"delta": delta}, {"output": incr_counter_by}, PREDICT),
            "reset_counter": _signature({}, {"output": reset_counter}, PREDICT),
        }
        _save_builder(export_dir, session, signatures)
    return export_dir


# --- models upstream's tests build inline -----------------------------------------------------


def tf_saved_model_save(export_dir: Path) -> Path:
    """``test_tf_saved_model_save``'s model: a ``tf.train.Checkpoint`` with ``v1 = 3`` and
    ``v2 = 2`` and ``f(x) = {"y": v1 * v2 * x}`` for float32 of any shape as ``serving_default``
    (``x = 2`` gives ``12``)."""
    tf = _tf()
    root = tf.train.Checkpoint()
    root.v1 = tf.Variable(3.0)
    root.v2 = tf.Variable(2.0)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
    to_save = root.f.get_concrete_function(tf.TensorSpec(None, tf.float32))
    tf.saved_model.save(root, str(export_dir), to_save)
    return export_dir


def tf_saved_model_save_multiple_signatures(export_dir: Path) -> Path:
    """``test_tf_saved_model_save_multiple_signatures``'s model: ``serving_default`` answers
    ``{"y": 1.0}`` and ``custom_signature_key`` ``{"y": 2.0}``, each taking a float32 ``x``."""
    tf = _tf()
    root = tf.train.Checkpoint()
    spec = [tf.TensorSpec(None, tf.float32)]
    root.f = tf.function(lambda x: {"y": 1.0}, input_signature=spec)
    root.g = tf.function(lambda x: {"y": 2.0}, input_signature=spec)
    tf.saved_model.save(
        root,
        str(export_dir),
        signatures={"serving_default": root.f, "custom_signature_key": root.g},
    )
    return export_dir


def keras_sequential(export_dir: Path) -> Path:
    """``test_sequential_keras_saved_model_save``'s model, built with Keras 2 (``tf_keras``, as
    upstream's ``tf.keras`` was): a ``Sequential`` of ``Input(shape=(1,), name="x")`` and the
    identity ``Lambda`` named ``y``, saved with ``tf.saved_model.save``."""
    import tf_keras

    tf = _tf()
    model = tf_keras.models.Sequential()
    model.add(tf_keras.layers.Input(dtype="float32", shape=(1,), name="x"))
    model.add(tf_keras.layers.Lambda(lambda x: x, name="y"))
    tf.saved_model.save(model, str(export_dir))
    return export_dir


def keras_distributed_sequential(export_dir: Path) -> Path:
    """``test_distrat_sequential_keras_saved_model_save``'s model: under a
    ``MirroredStrategy`` over two virtual CPUs, a Keras 2 ``Sequential`` of ``Input`` ``x``,
    ``Dense(1)`` with weight 1 and bias 0, and the identity ``Lambda`` ``y``.

    Runs in a fresh Python process (virtual CPUs must be configured before TensorFlow's
    runtime starts, and the calling test process has usually started it)."""
    done = subprocess.run(
        [sys.executable, __file__, "_keras_distributed_sequential", str(export_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"exporting the MirroredStrategy model failed:\n{done.stderr}")
    return export_dir


def _keras_distributed_sequential(export_dir: Path) -> Path:
    import tf_keras

    tf = _tf()
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    strategy = tf.distribute.MirroredStrategy(devices=("/cpu:0", "/cpu:1"))
    with strategy.scope():
        model = tf_keras.models.Sequential()
        model.add(tf_keras.layers.Input(dtype="float32", shape=(1,), name="x"))
        model.add(tf_keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros"))
        model.add(tf_keras.layers.Lambda(lambda x: x, name="y"))
    tf.saved_model.save(model, str(export_dir))
    return export_dir


# --- TF Text ----------------------------------------------------------------------------------


SENTENCEPIECE_VOCAB_SIZE = 32
"""Pieces in :func:`sentencepiece_model`'s vocabulary, at most (``id_to_string(1)`` needs two:
``<unk>``, ``<s>`` and ``</s>`` are always there)."""


def sentencepiece_corpus() -> list[str]:
    """The text :func:`sentencepiece_model` learns from: the sentence ``save_models.py``
    tokenizes, then 200 sentences of eight words drawn in turn from a few."""
    words = ["a", "sentence", "of", "things", "the", "quick", "brown", "fox", "jumps", "over"]
    words += ["lazy", "dog", "serving", "model", "text", "tokens"]
    generated = [" ".join(words[(i * k) % len(words)] for k in range(1, 9)) for i in range(200)]
    return ["A sentence of things.", *generated]


def sentencepiece_model() -> bytes:
    """A small SentencePiece model (serialized ``ModelProto``) trained here, with the
    ``sentencepiece`` package's trainer, on :func:`sentencepiece_corpus`: a stand-in for TF
    Text's ``python/ops/test_data/test_oss_model.model``, which ``save_models.py`` reads from
    TF Text's sources and its wheel does not ship. Any model serves: the model's output does
    not depend on what its SentencePiece ops answer, only on their running."""
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentencepiece_corpus()),
        model_writer=model,
        vocab_size=SENTENCEPIECE_VOCAB_SIZE,
        hard_vocab_limit=False,  # at most that many: a corpus too small for them is no error
        model_type="unigram",
        normalization_rule_name="identity",  # no NFKC table: a model of a few hundred bytes
        num_threads=1,  # the same model every time
        minloglevel=2,
    )
    return model.getvalue()


def tf_text_regression(export_dir: Path) -> Path:
    """Upstream's ``tf_text_regression/01`` (TF Text's ``oss_scripts/model_server/
    save_models.py``): ``serving_default`` takes ``x`` float32 [1] and answers ``y = x + 1``
    after running, as control dependencies, one op of each TF Text family the model server must
    have linked in (Viterbi constrained sequence, max spanning tree, UTF-8 case folding and
    normalization, regex split, ROUGE-L, sentence fragments, SentencePiece, split-merge,
    Unicode-script, whitespace and WordPiece tokenizers, word shapes). ``y`` is the only
    output, and the TF Text ops feed nothing but the control dependencies of its ``add``: for
    ``x = 2`` it is 3 whatever they compute (upstream's ``expected_output=3.0``).

    Needs ``tensorflow_text``, and ``sentencepiece`` for the SentencePiece model
    (:func:`sentencepiece_model`, in place of TF Text's test model)."""
    import numpy as np
    import tensorflow_text as text

    tf = _tf()
    sp_model = sentencepiece_model()

    class TfTextOps(tf.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            # save_models.py makes this table inside __call__; TensorFlow now traces __call__
            # again when saving, and a table made there would replace the one the concrete
            # function captured, which then is no tracked object's ("untracked resource").
            self.wp_vocab_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    ["i"], [1], key_dtype=tf.string, value_dtype=tf.int64
                ),
                default_value=-1,
            )

        @tf.function
        def __call__(self, x: Any) -> Any:
            cs_scores = np.array([[10.0, 12.0, 6.0, 4.0], [13.0, 12.0, 11.0, 10.0]])
            cs_input = np.array([cs_scores, cs_scores, cs_scores], dtype=np.float32)
            cs_weights = np.array(
                [
                    [-1.0, 1.0, -2.0, 2.0, 0.0],
                    [3.0, -3.0, 4.0, -4.0, 0.0],
                    [5.0, 1.0, 10.0, 1.0, 1.0],
                    [-7.0, 7.0, -8.0, 8.0, 0.0],
                    [0.0, 1.0, 2.0, 3.0, 0.0],
                ],
                dtype=np.float32,
            )
            cs_allowed = np.array(
                [
                    [True, True, True, True, True],
                    [True, True, True, True, True],
                    [True, False, True, False, False],
                    [True, True, True, True, True],
                    [True, False, True, True, True],
                ]
            )
            constrained_sequence = text.viterbi_constrained_sequence(
                cs_input,
                [2, 2, 2],
                allowed_transitions=cs_allowed,
                transition_weights=cs_weights,
                use_log_space=True,
                use_start_and_end_states=True,
            )
            mst_num_nodes = tf.constant([4, 3], tf.int32)
            mst_scores = tf.constant(
                [
                    [[0, 0, 0, 0], [1, 0, 0, 0], [1, 2, 0, 0], [1, 2, 3, 4]],
                    [[4, 3, 2, 9], [0, 0, 2, 9], [0, 0, 0, 9], [9, 9, 9, 9]],
                ],
                tf.int32,
            )
            max_spanning_tree, _ = text.max_spanning_tree(mst_num_nodes, mst_scores)
            normalized = text.normalize_utf8(text.case_fold_utf8(["A String"]))
            regex_split = text.regex_split(input=["Yo dawg!"], delim_regex_pattern=r"\s")
            rouge_l, _, _ = text.metrics.rouge_l(
                tf.ragged.constant(
                    [["captain", "of", "the", "delta", "flight"], ["the", "1990", "transcript"]]
                ),
                tf.ragged.constant(
                    [
                        ["delta", "air", "lines", "flight"],
                        ["this", "concludes", "the", "transcript"],
                    ]
                ),
            )
            words = [
                ["Welcome", "to", "the", "U.S.", "!", "Harry"],
                ["Wu", "Tang", "Clan", ";", "ain't", "nothing"],
            ]
            starts, ends = [], []
            for sentence in words:
                joined = ""
                sentence_starts, sentence_ends = [], []
                for word in sentence:
                    sentence_starts.append(len(joined))
                    joined = joined.join([word, " "])
                    sentence_ends.append(len(joined))
                starts.append(sentence_starts)
                ends.append(sentence_ends)
            sentence_breaking, _, _, _ = text.sentence_fragments(
                words,
                tf.constant(starts, dtype=tf.int64),
                tf.constant(ends, dtype=tf.int64),
                tf.ragged.constant([[0, 0, 0, 256, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=tf.int64),
            )
            sp_tokenizer = text.SentencepieceTokenizer(sp_model)
            sentencepiece = sp_tokenizer.detokenize(
                sp_tokenizer.tokenize(["A sentence of things."])
            )
            sentencepiece, _, _ = sp_tokenizer.tokenize_with_offsets(sentencepiece)
            sentencepiece_size = sp_tokenizer.vocab_size()
            sentencepiece_id = sp_tokenizer.id_to_string(1)
            split_merge = text.SplitMergeTokenizer().tokenize(
                b"IloveFlume!", [0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0]
            )
            unicode_script = text.UnicodeScriptTokenizer().tokenize(["a string"])
            whitespace = text.WhitespaceTokenizer().tokenize(["a string"])
            wordpiece = text.WordpieceTokenizer(self.wp_vocab_table).tokenize(["i am"])
            wordshapes = text.wordshape(
                ["a-b", "a\u2010b".encode()], text.WordShape.HAS_PUNCTUATION_DASH
            )
            with tf.control_dependencies(
                [
                    constrained_sequence,
                    max_spanning_tree,
                    normalized,
                    regex_split,
                    rouge_l,
                    sentence_breaking,
                    sentencepiece,
                    sentencepiece_id,
                    sentencepiece_size,
                    split_merge,
                    unicode_script,
                    whitespace,
                    wordpiece,
                    wordshapes,
                ]
            ):
                y = tf.add(x, [1])
            return {"y": y}

    module = TfTextOps()
    call = module.__call__.get_concrete_function(tf.TensorSpec([1], tf.float32, "x"))
    tf.saved_model.save(module, str(export_dir), call)
    return export_dir


# --- what upstream's binaries declare ---------------------------------------------------------


def _info(name: str, dtype: str, shape: tuple[int, ...] | str | None) -> dict[str, Any]:
    """A TensorInfo as ``saved_model_cli`` reports it: ``shape`` is the dims, ``None`` for
    unknown rank, ``"absent"`` for a TensorInfo with no ``tensor_shape`` at all."""
    return {"name": name, "dtype": dtype, "shape": shape}


def _sig(method: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    return {"method_name": method, "inputs": inputs, "outputs": outputs}


_BATCH_1 = (-1, 1)

EXPECTED_SIGNATURE_DEFS: dict[str, dict[str, dict[str, Any]]] = {
    "saved_model_half_plus_two_cpu": {
        "serving_default": _sig(
            PREDICT,
            {"x": _info("x:0", "DT_FLOAT", _BATCH_1)},
            {"y": _info("y:0", "DT_FLOAT", _BATCH_1)},
        ),
        "classify_x_to_y": _sig(
            CLASSIFY,
            {"inputs": _info("tf_example:0", "DT_STRING", None)},
            {"scores": _info("y:0", "DT_FLOAT", _BATCH_1)},
        ),
        "regress_x_to_y": _sig(
            REGRESS,
            {"inputs": _info("tf_example:0", "DT_STRING", None)},
            {"outputs": _info("y:0", "DT_FLOAT", _BATCH_1)},
        ),
        "regress_x_to_y2": _sig(
            REGRESS,
            {"inputs": _info("tf_example:0", "DT_STRING", None)},
            {"outputs": _info("y2:0", "DT_FLOAT", _BATCH_1)},
        ),
        "regress_x2_to_y3": _sig(
            REGRESS,
            {"inputs": _info("x2:0", "DT_FLOAT", _BATCH_1)},
            {"outputs": _info("y3:0", "DT_FLOAT", _BATCH_1)},
        ),
    },
    "saved_model_half_plus_two_tf2_cpu": {
        "serving_default": _sig(
            PREDICT,
            {"x": _info("serving_default_x:0", "DT_FLOAT", (1,))},
            {"y": _info("StatefulPartitionedCall_5:0", "DT_FLOAT", (1,))},
        ),
        "classify_x2_to_y3": _sig(
            PREDICT,
            {"inputs": _info("classify_x2_to_y3_inputs:0", "DT_FLOAT", (1,))},
            {"scores": _info("StatefulPartitionedCall:0", "DT_FLOAT", (1,))},
        ),
        "classify_x_to_y": _sig(
            PREDICT,
            {"inputs": _info("classify_x_to_y_inputs:0", "DT_STRING", (-1,))},
            {"scores": _info("StatefulPartitionedCall_1:0", "DT_FLOAT", _BATCH_1)},
        ),
        "regress_x2_to_y3": _sig(
            PREDICT,
            {"inputs": _info("regress_x2_to_y3_inputs:0", "DT_FLOAT", (1,))},
            {"outputs": _info("StatefulPartitionedCall_2:0", "DT_FLOAT", (1,))},
        ),
        "regress_x_to_y": _sig(
            PREDICT,
            {"inputs": _info("regress_x_to_y_inputs:0", "DT_STRING", (-1,))},
            {"outputs": _info("StatefulPartitionedCall_3:0", "DT_FLOAT", _BATCH_1)},
        ),
        "regress_x_to_y2": _sig(
            PREDICT,
            {"inputs": _info("regress_x_to_y2_inputs:0", "DT_STRING", (-1,))},
            {"outputs": _info("StatefulPartitionedCall_4:0", "DT_FLOAT", _BATCH_1)},
        ),
    },
    "saved_model_half_plus_three": {
        "serving_default": _sig(
            PREDICT,
            {"x": _info("x:0", "DT_FLOAT", "absent")},
            {"y": _info("y:0", "DT_FLOAT", "absent")},
        ),
        REGRESS: _sig(
            REGRESS,
            {"inputs": _info("tf_example:0", "DT_FLOAT", "absent")},
            {"outputs": _info("Identity:0", "DT_FLOAT", "absent")},
        ),
    },
    "saved_model_counter": {
        name: _sig(PREDICT, inputs, {"output": _info(output, "DT_FLOAT_REF", ())})
        for name, inputs, output in (
            ("get_counter", {}, "counter:0"),
            ("incr_counter", {}, "incr_counter_op/AssignAdd:0"),
            (
                "incr_counter_by",
                {"delta": _info("delta:0", "DT_FLOAT", None)},
                "incr_counter_by_op/AssignAdd:0",
            ),
            ("reset_counter", {}, "reset_counter_op/Assign:0"),
        )
    },
}
"""The SignatureDefs of upstream's binaries, as ``saved_model_cli show --all`` prints them
(``__saved_model_init_op`` left out); ``test_upstream_models.py`` checks the generators
against them."""

EXPECTED_TFLITE = {
    "saved_model_half_plus_two_tflite": {"input": "x", "output": "y", "shape": [1, 1]},
    "saved_model_half_plus_two_tflite_with_sigdef": {
        "input": "tflite_input",
        "output": "y",
        "shape": [1, 1],
        "signature_defs": {
            "serving_default": _sig(
                PREDICT,
                {"x": _info("tflite_input:0", "DT_FLOAT", (1, 1))},
                {"y": _info("y:0", "DT_FLOAT", (1, 1))},
            )
        },
    },
}
"""Upstream's TF Lite models: input and output tensor names and shapes, and the
``signature_defs_metadata`` of the ``_with_sigdef`` one."""


def describe_signature_defs(signature_defs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SignatureDef protos as :data:`EXPECTED_SIGNATURE_DEFS` writes them."""
    from tensorflow.core.framework import types_pb2

    def info(proto: Any) -> dict[str, Any]:
        shape: tuple[int, ...] | str | None
        if not proto.HasField("tensor_shape"):
            shape = "absent"
        elif proto.tensor_shape.unknown_rank:
            shape = None
        else:
            shape = tuple(d.size for d in proto.tensor_shape.dim)
        return _info(proto.name, types_pb2.DataType.Name(proto.dtype), shape)

    return {
        key: _sig(
            sig.method_name,
            {k: info(v) for k, v in sig.inputs.items()},
            {k: info(v) for k, v in sig.outputs.items()},
        )
        for key, sig in signature_defs.items()
        if key != "__saved_model_init_op"
    }


def describe_tflite(path: Path) -> dict[str, Any]:
    """A TF Lite model as :data:`EXPECTED_TFLITE` writes it."""
    from flatbuffers import flexbuffers
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.lite.python import schema_py_generated as schema

    data = path.read_bytes()
    model = schema.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    (input_index,) = graph.InputsAsNumpy()
    (output_index,) = graph.OutputsAsNumpy()
    described: dict[str, Any] = {
        "input": graph.Tensors(input_index).Name().decode(),
        "output": graph.Tensors(output_index).Name().decode(),
        "shape": graph.Tensors(input_index).ShapeAsNumpy().tolist(),
    }
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() != b"signature_defs_metadata":
            continue
        buffer = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
        signature_defs: dict[str, Any] = {}
        root = flexbuffers.GetRoot(bytearray(buffer)).AsMap
        for key in root.Keys:
            value = root[key.AsKey]
            signature_def = meta_graph_pb2.SignatureDef()
            if not value.IsString:
                raise AssertionError(f"signature {key.AsKey!r} is not a flexbuffer string")
            signature_def.ParseFromString(bytes(value.AsStringBytes))
            signature_defs[key.AsKey] = signature_def
        described["signature_defs"] = describe_signature_defs(signature_defs)
    return described


GENERATORS: dict[str, Callable[[Path], Path]] = {
    "_keras_distributed_sequential": _keras_distributed_sequential,
}

if __name__ == "__main__":
    generator, target = sys.argv[1:]
    GENERATORS[generator](Path(target))
