"""Several classify and regress tasks on one batch of examples, after TF Serving's
``servables/tensorflow/multi_inference.cc`` (``TensorFlowMultiInferenceRunner::Infer``).

Every task names the same model and a different signature; all tasks are checked before any
runs, every signature is run on the same serialized examples, and then each answer is checked
and converted, in task order. Every error has upstream's code and text.
"""

from __future__ import annotations

from typing import Any

from tensorflow_serving.apis import inference_pb2

from ..core.status import invalid_argument, unimplemented
from ..protocol.signature import (
    CLASSIFY_METHOD_NAME,
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    REGRESS_METHOD_NAME,
)
from . import classifier, regressor
from .servable import Servable
from .util import input_to_serialized_examples, make_model_spec, run_on_examples


def run_multi_inference(
    servable: Servable, version: int | None, request: Any, method_name_check: bool = False
) -> Any:
    """Answer a ``MultiInferenceRequest`` with ``servable`` (the tasks' versions are not looked
    at; ``version`` goes into each result's ``model_spec`` when given).

    Raises:
        ServingStatusError: INVALID_ARGUMENT ``Found ModelSpec with an empty model name.``,
            ``All ModelSpecs in a MultiInferenceRequest must access the same model name.``,
            ``Duplicate evaluation of signature: x``, ``Requested signature not found in model
            graph: x``; UNIMPLEMENTED ``Unsupported signature method_name: m`` for a task that
            is neither classify nor regress; a task's classify or regress errors; ``Input is
            empty.``; TensorFlow's errors.
    """
    model_name = ""
    keys: list[str] = []
    aliases: list[list[str]] = []
    for task in request.tasks:
        name = task.model_spec.name
        if not name:
            raise invalid_argument("Found ModelSpec with an empty model name.")
        if not model_name:
            model_name = name
        elif name != model_name:
            raise invalid_argument(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        key = task.model_spec.signature_name or DEFAULT_SERVING_SIGNATURE_DEF_KEY
        if key in keys:
            raise invalid_argument(f"Duplicate evaluation of signature: {key}")
        keys.append(key)
        if key not in servable.signature_def_map:
            raise invalid_argument(f"Requested signature not found in model graph: {key}")
        signature_def = servable.signature_def_map[key]
        if task.method_name == CLASSIFY_METHOD_NAME:
            aliases.append(classifier.pre_process_classification(signature_def, method_name_check))
        elif task.method_name == REGRESS_METHOD_NAME:
            aliases.append(regressor.pre_process_regression(signature_def, method_name_check))
        else:
            raise unimplemented(f"Unsupported signature method_name: {task.method_name}")

    examples = input_to_serialized_examples(request.input)
    outputs = [
        run_on_examples(servable, key, examples, task_aliases)
        for key, task_aliases in zip(keys, aliases, strict=True)
    ]
    response = inference_pb2.MultiInferenceResponse()
    for task, task_outputs in zip(request.tasks, outputs, strict=True):
        result = response.results.add()
        if task.method_name == CLASSIFY_METHOD_NAME:
            classifier.post_process_classification_result(
                len(examples), task_outputs, result.classification_result
            )
        else:
            regressor.post_process_regression_result(
                len(examples), task_outputs[regressor.REGRESS_OUTPUTS], result.regression_result
            )
        make_model_spec(
            result.model_spec, task.model_spec.name, task.model_spec.signature_name, version
        )
    return response
