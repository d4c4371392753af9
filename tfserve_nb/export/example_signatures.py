"""Classification and regression signatures over serialized ``tf.Example``, for export.

:class:`ClassifySignature` and :class:`RegressSignature` say what to add beside the forward pass;
:func:`check_example_signatures` refuses what TF Serving's ``Classify``/``Regress`` would not
serve before anything is written, :func:`example_endpoint` builds the function that parses the
examples into the model's named inputs, :func:`set_method_names` gives each its method name in
the written ``saved_model.pb``, and :func:`check_example_signature` runs TF Serving's own checks
on the version read back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ExportError
from ..protocol.signature import (
    CLASSIFY_METHOD_NAME,
    REGRESS_METHOD_NAME,
)
from .keras_model import describe_model

if TYPE_CHECKING:
    from ..servables.saved_model import SavedModelServable


@dataclass(frozen=True)
class ClassifySignature:
    """A classification signature for :func:`export_model`'s ``signatures``: what TF Serving's
    ``Classify`` and REST ``:classify`` answer with.

    Input ``inputs``: a batch of serialized ``tf.Example`` (DT_STRING ``[?]``), one feature per
    model input, named like its ``keras.Input`` and holding its values (float inputs as a
    ``float_list``, integer and bool inputs as an ``int64_list``, string inputs as a
    ``bytes_list``; multi-dimensional inputs flattened). Outputs: ``scores``, the model's single
    output as DT_FLOAT ``[?, num_classes]``, and with ``class_names`` also ``classes``, those
    names (DT_STRING ``[?, num_classes]``). A model ending in one sigmoid unit, given two class
    names, is scored ``[1 - p, p]``. Method: ``tensorflow/serving/classify``.
    """

    class_names: Sequence[str] | None = None
    method_name: ClassVar[str] = CLASSIFY_METHOD_NAME

    def _output_aliases(self) -> list[str]:
        return ["classes", "scores"] if self.class_names is not None else ["scores"]

    def _check(self, where: str, output_shape: tuple[int | None, ...]) -> None:
        """:class:`ExportError` unless the model's per-example output shape suits."""
        names = self.class_names
        if names is not None and (
            isinstance(names, str | bytes) or not all(isinstance(n, str) for n in names)
        ):
            raise ExportError(
                f"{where}: class_names must be a list of strings, one per model output unit; "
                f"got {names!r}."
            )
        if len(output_shape) != 1:
            raise ExportError(
                f"{where}: the model's output has shape {('?', *output_shape)}; a classifier "
                f"needs one score per class, [?, num_classes]."
            )
        width = output_shape[0]
        if names is not None and width is not None and width != len(names) and width != 1:
            raise ExportError(
                f"{where}: the model outputs {width} scores per example but {len(names)} "
                f"class_names are given; give one name per output unit."
            )
        if names is not None and width == 1 and len(names) != 2:
            raise ExportError(
                f"{where}: the model outputs one score per example (a sigmoid unit), which "
                f"scores two classes [1 - p, p]; give two class_names, not {len(names)}."
            )

    def _outputs(self, output: Any) -> dict[str, Any]:
        """The signature's outputs from the model's output tensor (TensorFlow graph code)."""
        import tensorflow as tf

        scores = tf.cast(output, tf.float32)
        if self.class_names is None:
            return {"scores": scores}
        if len(self.class_names) == 2 and scores.shape[-1] == 1:
            scores = tf.concat([1.0 - scores, scores], axis=1)
        classes = tf.tile(tf.constant([list(self.class_names)]), [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    def _check_served(self, signature_def: Any) -> None:
        """TF Serving's own structural checks of a classification signature."""
        from ..servables.classifier import pre_process_classification

        pre_process_classification(signature_def, method_name_check=True)


@dataclass(frozen=True)
class RegressSignature:
    """A regression signature for :func:`export_model`'s ``signatures``: what TF Serving's
    ``Regress`` and REST ``:regress`` answer with.

    Input ``inputs``: a batch of serialized ``tf.Example``, as for :class:`ClassifySignature`.
    Output ``outputs``: the model's single output, one value per example, as DT_FLOAT ``[?]``
    or ``[?, 1]`` (the model's shape). Method: ``tensorflow/serving/regress``.
    """

    method_name: ClassVar[str] = REGRESS_METHOD_NAME

    def _output_aliases(self) -> list[str]:
        return ["outputs"]

    def _check(self, where: str, output_shape: tuple[int | None, ...]) -> None:
        """:class:`ExportError` unless the model gives one value per example."""
        if output_shape not in ((), (1,)):
            raise ExportError(
                f"{where}: the model's output has shape {('?', *output_shape)}; a regression "
                f"needs one value per example, [?] or [?, 1]."
            )

    def _outputs(self, output: Any) -> dict[str, Any]:
        import tensorflow as tf

        return {"outputs": tf.cast(output, tf.float32)}

    def _check_served(self, signature_def: Any) -> None:
        """TF Serving's own structural checks of a regression signature."""
        from ..servables.regressor import pre_process_regression

        pre_process_regression(signature_def, method_name_check=True)


ExampleSignature = ClassifySignature | RegressSignature
"""A signature over serialized ``tf.Example``."""


_FEATURE_DTYPES = {
    **dict.fromkeys(("float16", "bfloat16", "float32", "float64"), "float32"),
    **dict.fromkeys(
        ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"), "int64"
    ),
    "string": "string",
}
"""The ``tf.Example`` feature type (float, int64 or bytes list) each input dtype is read from."""


def check_example_signatures(
    signatures: Any, signature_name: str, model: Any, input_signature: Any
) -> dict[str, ExampleSignature]:
    """``signatures`` as a dict, once checked against the model: names that are non-empty
    strings other than ``signature_name``, :class:`ClassifySignature` or
    :class:`RegressSignature` values, named model inputs of fixed shape and a dtype
    ``tf.Example`` can carry, and one model output of a shape the signature can use."""
    import keras

    if not signatures:
        return {}
    if not isinstance(signatures, Mapping):
        raise ExportError(
            f"signatures must map signature names to ClassifySignature or RegressSignature; got "
            f"{type(signatures).__name__}."
        )
    checked: dict[str, ExampleSignature] = {}
    for key, spec in signatures.items():
        where = f"signature {key!r}"
        if not isinstance(key, str) or not key or key == signature_name:
            raise ExportError(
                f"{where}: example signature names must be non-empty strings other than the "
                f"predict signature's ({signature_name!r})."
            )
        if not isinstance(spec, ClassifySignature | RegressSignature):
            raise ExportError(
                f"{where}: expected a ClassifySignature or RegressSignature; got "
                f"{type(spec).__name__}."
            )
        for input_spec in keras.tree.flatten(input_signature):
            _check_feature(where, input_spec)
        outputs = keras.tree.flatten(model.outputs)
        if len(outputs) != 1:
            raise ExportError(
                f"{where}: {describe_model(model)} has {len(outputs)} outputs; a "
                f"classification or regression signature needs a model with exactly one."
            )
        spec._check(where, tuple(outputs[0].shape[1:]))
        checked[key] = spec
    return checked


def _check_feature(where: str, spec: Any) -> None:
    """:class:`ExportError` unless model input ``spec`` can be read from a ``tf.Example``."""
    if spec.name is None:
        raise ExportError(
            f"{where}: every model input becomes a tf.Example feature of its name; give each "
            f"keras.Input a name."
        )
    if any(d is None for d in spec.shape[1:]):
        raise ExportError(
            f"{where}: input {spec.name!r} has shape {spec.shape}; a tf.Example feature needs a "
            f"fixed shape after the batch dimension."
        )
    if spec.dtype not in _FEATURE_DTYPES:
        raise ExportError(
            f"{where}: input {spec.name!r} has dtype {spec.dtype}, which a tf.Example feature "
            f"(float, int64 or bytes list) cannot carry."
        )


def example_endpoint(model: Any, input_signature: Any, spec: ExampleSignature) -> Any:
    """The function of an example signature: parse the serialized examples of its argument
    ``inputs`` into the model's inputs (one feature each, cast to the input's dtype), run the
    model, and turn its output into the signature's outputs."""
    import keras
    import tensorflow as tf

    specs = keras.tree.flatten(input_signature)
    features = {s.name: tf.io.FixedLenFeature(s.shape[1:], _FEATURE_DTYPES[s.dtype]) for s in specs}

    def endpoint(inputs: Any) -> dict[str, Any]:
        parsed = tf.io.parse_example(inputs, features)
        args = keras.tree.pack_sequence_as(
            input_signature, [tf.cast(parsed[s.name], s.dtype) for s in specs]
        )
        (output,) = keras.tree.flatten(model(*args))
        return spec._outputs(output)

    return endpoint


def set_method_names(export_dir: Path, methods: Mapping[str, str]) -> None:
    """Give signatures their TF Serving method (``tf.saved_model.save`` marks every signature
    ``tensorflow/serving/predict``) and write the SavedModel's fingerprint anew."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    path = export_dir / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for meta_graph in saved_model.meta_graphs:
        for key, method in methods.items():
            meta_graph.signature_def[key].method_name = method
    path.write_bytes(saved_model.SerializeToString())
    fingerprinting_utils.write_fingerprint(str(export_dir))


def check_example_signature(servable: SavedModelServable, key: str, spec: ExampleSignature) -> None:
    """:class:`ExportError` unless example signature ``key`` has the outputs ``spec`` promises
    and passes TF Serving's checks of its API (method name included)."""
    from ..core.status import ServingStatusError

    signature_def = servable.signature_def_map[key]
    outputs, expected = sorted(signature_def.outputs), sorted(spec._output_aliases())
    if outputs != expected:
        raise ExportError(
            f"The exported signature {key!r} has outputs {outputs}; expected {expected}."
        )
    try:
        spec._check_served(signature_def)
    except ServingStatusError as exc:
        raise ExportError(
            f"The exported signature {key!r} would be refused by TF Serving: {exc.message}"
        ) from exc
