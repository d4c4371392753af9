"""servables.multi_inference against a fake servable: TF Serving's task checks, every task run
before any answer is converted, and one result per task in task order."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow_serving.apis import inference_pb2

from tests.helpers.servable_fakes import (
    FakeServable,
    classify_signature,
    invalid,
    regress_signature,
)
from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.protocol.signature import CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME
from tfserve_nb.servables.multi_inference import run_multi_inference
from tfserve_nb.servables.util import debug_string

CLASSIFY, REGRESS = CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME


def servable() -> FakeServable:
    return FakeServable(
        {"serving_default": classify_signature(), "r": regress_signature()},
        {
            "serving_default": {"scores": np.array([[0.5]], np.float32)},
            "r": {"outputs": np.array([2.5], np.float32)},
        },
    )


def request(*tasks: tuple[str, str, str], examples: int = 1) -> inference_pb2.MultiInferenceRequest:
    """``tasks`` as ``(model name, signature name, method name)``."""
    message = inference_pb2.MultiInferenceRequest()
    for name, signature_name, method_name in tasks:
        task = message.tasks.add(method_name=method_name)
        task.model_spec.name = name
        task.model_spec.signature_name = signature_name
    for _ in range(examples):
        message.input.example_list.examples.add()
    return message


def test_each_task_answers_in_order_from_one_batch_of_examples() -> None:
    fake = servable()
    response = run_multi_inference(fake, 4, request(("m", "r", REGRESS), ("m", "", CLASSIFY)))
    assert [key for key, _, _ in fake.runs] == ["r", "serving_default"]
    assert fake.runs[0][1]["inputs"] is fake.runs[1][1]["inputs"]
    regression, classification = response.results
    assert [r.value for r in regression.regression_result.regressions] == [2.5]
    assert classification.classification_result.classifications[0].classes[0].score == 0.5
    assert [(r.model_spec.name, r.model_spec.signature_name) for r in response.results] == [
        ("m", "r"),
        ("m", "serving_default"),
    ]
    assert {r.model_spec.version.value for r in response.results} == {4}


def test_no_tasks_answers_nothing() -> None:
    assert run_multi_inference(servable(), 1, request()).results == []


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ((("m", "r", REGRESS), ("", "", CLASSIFY)), "Found ModelSpec with an empty model name."),
        (
            (("m", "r", REGRESS), ("n", "", CLASSIFY)),
            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
        ),
        (
            (("m", "", CLASSIFY), ("m", "serving_default", CLASSIFY)),
            "Duplicate evaluation of signature: serving_default",
        ),
        ((("m", "nope", CLASSIFY),), "Requested signature not found in model graph: nope"),
        (
            (("m", "serving_default", REGRESS),),
            f"No regression outputs found in SignatureDef: {debug_string(classify_signature())}",
        ),
    ],
    ids=["empty-name", "two-models", "duplicate", "missing", "wrong-kind"],
)
def test_task_errors_come_before_any_run(tasks, message) -> None:
    fake = servable()
    assert invalid(run_multi_inference, fake, 1, request(*tasks, examples=0)) == message
    assert fake.runs == []


def test_no_examples() -> None:
    fake = servable()
    assert invalid(run_multi_inference, fake, 1, request(("m", "r", REGRESS), examples=0)) == (
        "Input is empty."
    )
    assert fake.runs == []


def test_a_method_other_than_classify_or_regress_is_unimplemented() -> None:
    with pytest.raises(ServingStatusError) as exc:
        run_multi_inference(servable(), 1, request(("m", "r", "tensorflow/serving/predict")))
    assert (exc.value.code, exc.value.message) == (
        Code.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict",
    )


def test_method_names_are_checked_only_when_asked() -> None:
    tasks = (("m", "r", CLASSIFY),)  # a regression signature has no classes or scores
    assert invalid(run_multi_inference, servable(), 1, request(*tasks)).startswith(
        "Expected classification signature outputs to contain at least one of"
    )
    assert invalid(run_multi_inference, servable(), 1, request(*tasks), method_name_check=True) == (
        "Expected classification signature method_name to be tensorflow/serving/classify. "
        "Was: tensorflow/serving/regress"
    )
