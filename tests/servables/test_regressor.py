"""servables.regressor against a fake servable: TF Serving's checks and texts of a regression
signature and of its output, and the result built from it."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow_serving.apis import regression_pb2

from tests.helpers.servable_fakes import FakeServable, invalid, regress_signature, signature_def
from tfserve_nb.servables.regressor import (
    post_process_regression_result,
    pre_process_regression,
    run_regress,
)
from tfserve_nb.servables.util import debug_string


def test_method_name_is_checked_only_when_asked() -> None:
    classify = signature_def(outputs={"outputs": "DT_FLOAT"})
    assert pre_process_regression(classify, method_name_check=False) == ["outputs"]
    assert invalid(pre_process_regression, classify, method_name_check=True) == (
        "Expected regression signature method_name to be tensorflow/serving/regress. "
        "Was: tensorflow/serving/classify"
    )
    assert pre_process_regression(regress_signature(), method_name_check=True) == ["outputs"]


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        (
            {"inputs": "DT_STRING", "x": "DT_STRING"},
            {"outputs": "DT_FLOAT"},
            "Expected one input Tensor.",
        ),
        (
            {"inputs": "DT_STRING"},
            {"outputs": "DT_FLOAT", "y": "DT_FLOAT"},
            "Expected one output Tensor.",
        ),
    ],
    ids=["two-inputs", "two-outputs"],
)
def test_signature_structure(inputs, outputs, message) -> None:
    assert invalid(pre_process_regression, signature_def(inputs, outputs), False) == message


def test_signature_texts_print_the_signature_def() -> None:
    no_inputs = signature_def(inputs={"x": "DT_STRING"}, outputs={"outputs": "DT_FLOAT"})
    assert invalid(pre_process_regression, no_inputs, False) == (
        f"No regression inputs found in SignatureDef: {debug_string(no_inputs)}"
    )
    no_outputs = signature_def()
    assert invalid(pre_process_regression, no_outputs, False) == (
        f"No regression outputs found in SignatureDef: {debug_string(no_outputs)}"
    )


@pytest.mark.parametrize("shape", [(2,), (2, 1)])
def test_one_value_per_example(shape) -> None:
    result = regression_pb2.RegressionResult()
    post_process_regression_result(2, np.array([1.5, -2.0], np.float32).reshape(shape), result)
    assert [r.value for r in result.regressions] == [1.5, -2.0]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            np.zeros((2, 2), np.float32),
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            "[2,2]",
        ),
        (
            np.zeros((), np.float32),
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got []",
        ),
        (np.zeros((3,), np.float32), "Input batch size did not match output batch size: 2 vs. 3"),
        (np.zeros((2,), np.float64), "Expected output Tensor of DT_FLOAT.  Got: DT_DOUBLE"),
    ],
)
def test_output_checks(output, message) -> None:
    result = regression_pb2.RegressionResult()
    assert invalid(post_process_regression_result, 2, output, result) == message


def test_run_regress() -> None:
    servable = FakeServable(
        {"r": regress_signature()}, {"r": {"outputs": np.array([[3.0]], np.float32)}}
    )
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "m"
    request.model_spec.signature_name = "r"
    request.input.example_list.examples.add()
    response = run_regress(servable, 2, request)
    assert [r.value for r in response.result.regressions] == [3.0]
    assert (response.model_spec.signature_name, response.model_spec.version.value) == ("r", 2)
    request.model_spec.signature_name = ""
    assert invalid(run_regress, servable, 2, request) == (
        "No signature was found with the name: serving_default"
    )
