"""export_model(signatures=...): classification and regression signatures over serialized
tf.Example, checked with TensorFlow's own loader and the embedded server's classify and regress
code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import fingerprinting_utils
from tensorflow_serving.apis import classification_pb2, regression_pb2

from tests.helpers import models
from tfserve_nb.errors import ExportError
from tfserve_nb.export import ClassifySignature, RegressSignature, export_model
from tfserve_nb.servables.classifier import run_classify
from tfserve_nb.servables.regressor import run_regress
from tfserve_nb.servables.saved_model import SavedModelServable

if TYPE_CHECKING:
    from conftest import ModelVersions


def signature_defs(path: Path) -> Any:
    """The ``signature_def`` map written in ``path/saved_model.pb``."""
    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    return saved_model.meta_graphs[0].signature_def


def examples_request(message: Any, signature_name: str, *examples: dict[str, list[Any]]) -> Any:
    """``message`` (a classify or regress request) holding ``examples``, feature → values."""
    message.model_spec.name = "m"
    message.model_spec.signature_name = signature_name
    for features in examples:
        example = message.input.example_list.examples.add()
        for name, values in features.items():
            kind = "float_list" if isinstance(values[0], float) else "int64_list"
            getattr(example.features.feature[name], kind).value.extend(values)
    return message


def classify(path: Path, signature_name: str, *examples: dict[str, list[Any]]) -> list[Any]:
    """``[[(label, score), ...], ...]`` the embedded server answers for ``examples``."""
    request = examples_request(
        classification_pb2.ClassificationRequest(), signature_name, *examples
    )
    result = run_classify(SavedModelServable(str(path)), 1, request).result
    return [[(c.label, c.score) for c in row.classes] for row in result.classifications]


def regress(path: Path, signature_name: str, *examples: dict[str, list[Any]]) -> list[float]:
    request = examples_request(regression_pb2.RegressionRequest(), signature_name, *examples)
    result = run_regress(SavedModelServable(str(path)), 1, request).result
    return [r.value for r in result.regressions]


def test_tf_serving_half_plus_two_signatures(half_plus_two_examples_models: ModelVersions) -> None:
    path = half_plus_two_examples_models.exports[1]
    defs = signature_defs(path)
    assert {key: defs[key].method_name for key in defs if not key.startswith("__")} == {
        "serving_default": "tensorflow/serving/predict",
        "classify_x_to_y": "tensorflow/serving/classify",
        "regress_x_to_y": "tensorflow/serving/regress",
    }
    for key, output in (("classify_x_to_y", "scores"), ("regress_x_to_y", "outputs")):
        ((alias, tensor),) = defs[key].inputs.items()
        assert (alias, tensor.dtype, [d.size for d in tensor.tensor_shape.dim]) == (
            "inputs",
            tf.string.as_datatype_enum,
            [-1],
        )
        assert list(defs[key].outputs) == [output]
        assert [d.size for d in defs[key].outputs[output].tensor_shape.dim] == [-1, 1]
    # TF Serving's own test: {"x": 2.0} classifies and regresses to 3.0
    assert classify(path, "classify_x_to_y", {"x": [2.0]}, {"x": [4.0]}) == [
        [("", 3.0)],
        [("", 4.0)],
    ]
    assert regress(path, "regress_x_to_y", {"x": [2.0]}) == [3.0]


def test_classes_are_the_names_and_scores_the_model_output(color_models: ModelVersions) -> None:
    path, model = color_models.exports[1], color_models.models[1]
    rows = [{"rgb": [1.0, 0.0, 0.0], "boost": [2]}, {"rgb": [0.0, 0.5, 1.0], "boost": [0]}]
    answered = classify(path, "classification", *rows)
    expected = model(
        {
            "rgb": np.array([r["rgb"] for r in rows], np.float32),
            "boost": np.array([r["boost"] for r in rows], np.int32),
        }
    ).numpy()
    assert [[label for label, _ in row] for row in answered] == [list(models.COLORS)] * 2
    np.testing.assert_allclose([[s for _, s in row] for row in answered], expected, rtol=1e-6)
    assert [[label for label, _ in row] for row in classify(path, "scores", *rows)] == [
        [""] * 3
    ] * 2


def test_one_sigmoid_unit_scores_two_classes(tmp_path: Path) -> None:
    x = keras.Input((1,), name="x")
    unit = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones")
    model = keras.Model(x, unit(x))
    exported = export_model(
        model, tmp_path / "binary", signatures={"c": ClassifySignature(["no", "yes"])}
    )
    (((no, p_no), (yes, p_yes)),) = classify(exported.path, "c", {"x": [0.5]})
    p = float(tf.sigmoid(0.5))
    assert (no, yes) == ("no", "yes")
    assert p_yes == pytest.approx(p) and p_no == pytest.approx(1 - p)


def test_regression_keeps_a_one_dimensional_output(tmp_path: Path) -> None:
    x = keras.Input((2,), name="x")
    model = keras.Model(x, keras.ops.sum(x, axis=1))
    exported = export_model(model, tmp_path / "sum", signatures={"r": RegressSignature()})
    assert [
        d.size for d in signature_defs(exported.path)["r"].outputs["outputs"].tensor_shape.dim
    ] == [-1]
    assert regress(exported.path, "r", {"x": [1.0, 2.0]}, {"x": [3.0, 4.0]}) == [3.0, 7.0]
    assert exported.example_signatures["r"].method_name == "tensorflow/serving/regress"


def test_a_classification_can_be_the_default_signature(tmp_path: Path) -> None:
    exported = export_model(
        models.half_plus_two(),
        tmp_path / "hp",
        signature_name="predict",
        signatures={"serving_default": ClassifySignature()},
    )
    defs = signature_defs(exported.path)
    assert defs["serving_default"].method_name == "tensorflow/serving/classify"
    assert defs["predict"].method_name == "tensorflow/serving/predict"
    assert classify(exported.path, "", {"x": [2.0]}) == [[("", 3.0)]]
    assert "serving_default=classify" in repr(exported)
    assert "classify" in exported._repr_html_()


def test_the_fingerprint_matches_the_rewritten_saved_model(
    half_plus_two_examples_models: ModelVersions,
) -> None:
    path = half_plus_two_examples_models.exports[1]
    fingerprint = tf.saved_model.experimental.read_fingerprint(str(path))
    fresh = fingerprinting_utils.fingerprinting_pywrap.CreateFingerprintDef(str(path))
    expected = fingerprinting_utils.fingerprint_pb2.FingerprintDef.FromString(fresh)
    assert fingerprint.saved_model_checksum == expected.saved_model_checksum


def _variable_length() -> keras.Model:
    seq = keras.Input((None,), name="seq")
    return keras.Model(seq, keras.ops.sum(seq, axis=1, keepdims=True))


@pytest.mark.parametrize(
    ("build", "signatures", "message"),
    [
        (
            models.half_plus_two,
            {"serving_default": RegressSignature()},
            "example signature names must be non-empty strings other than the predict "
            "signature's ('serving_default')",
        ),
        (
            models.half_plus_two,
            {"c": "classify"},
            "expected a ClassifySignature or RegressSignature",
        ),
        (models.half_plus_two, ["c"], "signatures must map signature names"),
        (
            models.half_plus_two,
            {"c": ClassifySignature("ab")},
            "class_names must be a list of strings",
        ),
        (
            models.color_classifier,
            {"c": ClassifySignature(["red", "green"])},
            "the model outputs 3 scores per example but 2 class_names are given",
        ),
        (
            models.half_plus_two,
            {"c": ClassifySignature(["a", "b", "c"])},
            "the model outputs one score per example (a sigmoid unit), which scores two classes",
        ),
        (
            models.color_classifier,
            {"r": RegressSignature()},
            "a regression needs one value per example, [?] or [?, 1]",
        ),
        (models.multi_io_model, {"r": RegressSignature()}, "has 2 outputs"),
        (_variable_length, {"r": RegressSignature()}, "a tf.Example feature needs a fixed shape"),
    ],
    ids=[
        "name-collision",
        "not-a-spec",
        "not-a-mapping",
        "names-a-string",
        "too-few-names",
        "sigmoid-not-two-names",
        "regress-three-outputs",
        "two-outputs",
        "variable-length-input",
    ],
)
def test_unusable_signatures_are_refused_before_writing(
    tmp_path: Path, build: Any, signatures: Any, message: str
) -> None:
    with pytest.raises(ExportError, match=re.escape(message)):
        export_model(build(), tmp_path / "m", signatures=signatures)
    assert list((tmp_path / "m").iterdir()) == []
