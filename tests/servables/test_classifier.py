"""servables.classifier against a fake servable: TF Serving's checks and texts of a
classification signature and of its outputs, and the result built from them."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow_serving.apis import classification_pb2

from tests.helpers.servable_fakes import (
    FakeServable,
    classify_signature,
    invalid,
    signature_def,
    strings,
)
from tfserve_nb.servables.classifier import (
    post_process_classification_result,
    pre_process_classification,
    run_classify,
)
from tfserve_nb.servables.util import debug_string


def request(signature_name: str = "", n: int = 2) -> classification_pb2.ClassificationRequest:
    message = classification_pb2.ClassificationRequest()
    message.model_spec.name = "m"
    message.model_spec.signature_name = signature_name
    for i in range(n):
        message.input.example_list.examples.add().features.feature["x"].float_list.value.append(i)
    return message


# --- the signature -------------------------------------------------------------------------------


def test_outputs_to_fetch_are_classes_then_scores() -> None:
    both = classify_signature(scores="DT_FLOAT", classes="DT_STRING")
    assert pre_process_classification(both, method_name_check=True) == ["classes", "scores"]
    assert pre_process_classification(classify_signature(), False) == ["scores"]


def test_method_name_is_checked_only_when_asked() -> None:
    predict = signature_def(method_name="tensorflow/serving/predict")
    assert pre_process_classification(predict, method_name_check=False) == ["scores"]
    assert invalid(pre_process_classification, predict, method_name_check=True) == (
        "Expected classification signature method_name to be tensorflow/serving/classify. "
        "Was: tensorflow/serving/predict"
    )


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        (
            {"inputs": "DT_STRING", "x": "DT_STRING"},
            {"scores": "DT_FLOAT"},
            "Expected one input Tensor.",
        ),
        (
            {"inputs": "DT_STRING"},
            {"scores": "DT_FLOAT", "classes": "DT_STRING", "z": "DT_FLOAT"},
            "Expected one or two output Tensors, found 3",
        ),
    ],
    ids=["two-inputs", "three-outputs"],
)
def test_signature_structure(inputs, outputs, message) -> None:
    assert invalid(pre_process_classification, signature_def(inputs, outputs), False) == message


def test_signature_texts_print_the_signature_def() -> None:
    no_inputs = signature_def(inputs={"x": "DT_STRING"})
    assert invalid(pre_process_classification, no_inputs, False) == (
        f"No classification inputs found in SignatureDef: {debug_string(no_inputs)}"
    )
    no_outputs = signature_def(outputs={"outputs": "DT_FLOAT"})
    assert invalid(pre_process_classification, no_outputs, False) == (
        'Expected classification signature outputs to contain at least one of "classes" or '
        f'"scores". Signature was: {debug_string(no_outputs)}'
    )


# --- the outputs ---------------------------------------------------------------------------------


def test_result_holds_labels_and_scores_per_example() -> None:
    result = classification_pb2.ClassificationResult()
    outputs = {
        "classes": strings(["a", "b"], ["c", "d"]),
        "scores": np.array([[0.25, 0.75], [1.0, 0.0]], np.float32),
    }
    post_process_classification_result(2, outputs, result)
    assert [[(c.label, c.score) for c in row.classes] for row in result.classifications] == [
        [("a", 0.25), ("b", 0.75)],
        [("c", 1.0), ("d", 0.0)],
    ]


def test_a_missing_output_leaves_its_field_empty() -> None:
    only_classes = classification_pb2.ClassificationResult()
    post_process_classification_result(1, {"classes": strings(["a", "b"])}, only_classes)
    assert [(c.label, c.score) for c in only_classes.classifications[0].classes] == [
        ("a", 0.0),
        ("b", 0.0),
    ]
    only_scores = classification_pb2.ClassificationResult()
    post_process_classification_result(1, {"scores": np.array([[3.0]], np.float32)}, only_scores)
    assert [(c.label, c.score) for c in only_scores.classifications[0].classes] == [("", 3.0)]


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (
            {"classes": strings(["a"], ["b"]).reshape(2)},
            "Expected Tensor shape: [batch_size num_classes] but got [2]",
        ),
        (
            {"scores": np.zeros((2, 1, 1), np.float32)},
            "Expected Tensor shape: [batch_size num_classes] but got [2,1,1]",
        ),
        (
            {"classes": np.zeros((2, 2), np.int64)},
            "Expected classes Tensor of DT_STRING. Got: DT_INT64",
        ),
        (
            {"scores": np.zeros((2, 2), np.float64)},
            "Expected scores Tensor of DT_FLOAT. Got: DT_DOUBLE",
        ),
        ({"classes": strings(["a"])}, "Expected classes output batch size of 2. Got: 1"),
        (
            {"scores": np.zeros((3, 2), np.float32)},
            "Expected scores output batch size of 2. Got: 3",
        ),
        (
            {"classes": strings(["a", "b"], ["c", "d"]), "scores": np.zeros((2, 3), np.float32)},
            "Tensors class and score should match in dim_size(1). Got 2 vs. 3",
        ),
        (  # classes are checked before scores
            {"classes": np.zeros((2, 2), np.int64), "scores": np.zeros((2,), np.float32)},
            "Expected classes Tensor of DT_STRING. Got: DT_INT64",
        ),
    ],
)
def test_output_checks(outputs, message) -> None:
    result = classification_pb2.ClassificationResult()
    assert invalid(post_process_classification_result, 2, outputs, result) == message


# --- a whole request -----------------------------------------------------------------------------


def test_run_classify_feeds_the_examples_and_names_what_answered() -> None:
    servable = FakeServable(
        {"serving_default": classify_signature()},
        {"serving_default": {"scores": np.array([[0.5], [2.0]], np.float32)}},
    )
    response = run_classify(servable, 7, request())
    (key, inputs, aliases) = servable.runs[0]
    assert (key, list(inputs), aliases) == ("serving_default", ["inputs"], ["scores"])
    assert len(inputs["inputs"]) == 2
    assert [c.classes[0].score for c in response.result.classifications] == [0.5, 2.0]
    assert response.model_spec.name == "m"
    assert response.model_spec.signature_name == "serving_default"
    assert response.model_spec.version.value == 7
    assert not run_classify(servable, None, request()).model_spec.HasField("version")


def test_run_classify_errors_before_running() -> None:
    servable = FakeServable({"serving_default": classify_signature()})
    assert invalid(run_classify, servable, 1, request("nope")) == (
        "No signature was found with the name: nope"
    )
    assert invalid(run_classify, servable, 1, request(n=0)) == "Input is empty."
    assert servable.runs == []
