"""Classification over serialized ``tf.Example``, after TF Serving's
``servables/tensorflow/classifier.cc``.

A classification signature has one input, ``inputs`` (a batch of serialized examples), and one
or both of the outputs ``classes`` (DT_STRING ``[batch, num_classes]``) and ``scores`` (DT_FLOAT
``[batch, num_classes]``). Its ``method_name`` (``tensorflow/serving/classify``) is only checked
with ``method_name_check`` (``--enable_signature_method_name_check``, off by default as upstream,
so native TF2 signatures, which all say ``tensorflow/serving/predict``, classify too). Every
error has upstream's code and text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorflow_serving.apis import classification_pb2

from ..core.status import invalid_argument
from ..protocol.signature import (
    CLASSIFY_METHOD_NAME,
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    dtype_name_of,
)
from .servable import Servable
from .util import (
    EXAMPLES_INPUT,
    debug_string,
    input_to_serialized_examples,
    make_model_spec,
    run_on_examples,
    shape_debug_string,
)

CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"


def classification_signature(
    servable: Servable, signature_name: str, method_name_check: bool
) -> tuple[str, list[str]]:
    """``GetClassificationSignatureDef``: the key of signature ``signature_name`` (empty means
    ``serving_default``) and its output aliases to fetch (:func:`pre_process_classification`).

    Raises:
        ServingStatusError: INVALID_ARGUMENT ``No signature was found with the name: x``, or
            one of :func:`pre_process_classification`'s.
    """
    key = signature_name or DEFAULT_SERVING_SIGNATURE_DEF_KEY
    if key not in servable.signature_def_map:
        raise invalid_argument(f"No signature was found with the name: {key}")
    return key, pre_process_classification(servable.signature_def_map[key], method_name_check)


def pre_process_classification(signature_def: Any, method_name_check: bool) -> list[str]:
    """``PreProcessClassification``: the output aliases to fetch (``classes`` before
    ``scores``, those present) after checking the signature's structure.

    Raises:
        ServingStatusError: INVALID_ARGUMENT with upstream's texts: a wrong method name (only
            with ``method_name_check``), not exactly one input, not one or two outputs, no
            ``inputs`` input, neither ``classes`` nor ``scores``.
    """
    if method_name_check and signature_def.method_name != CLASSIFY_METHOD_NAME:
        raise invalid_argument(
            f"Expected classification signature method_name to be {CLASSIFY_METHOD_NAME}. "
            f"Was: {signature_def.method_name}"
        )
    if len(signature_def.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature_def.outputs) not in (1, 2):
        raise invalid_argument(
            f"Expected one or two output Tensors, found {len(signature_def.outputs)}"
        )
    if EXAMPLES_INPUT not in signature_def.inputs:
        raise invalid_argument(
            f"No classification inputs found in SignatureDef: {debug_string(signature_def)}"
        )
    aliases = [
        alias
        for alias in (CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES)
        if alias in signature_def.outputs
    ]
    if not aliases:
        raise invalid_argument(
            "Expected classification signature outputs to contain at least one of "
            f'"{CLASSIFY_OUTPUT_CLASSES}" or "{CLASSIFY_OUTPUT_SCORES}". Signature was: '
            f"{debug_string(signature_def)}"
        )
    return aliases


def _check_output(name: str, tensor: np.ndarray, dtype: str, num_examples: int) -> None:
    if tensor.ndim != 2:
        raise invalid_argument(
            "Expected Tensor shape: [batch_size num_classes] but got "
            f"{shape_debug_string(tensor.shape)}"
        )
    if dtype_name_of(tensor) != dtype:
        raise invalid_argument(f"Expected {name} Tensor of {dtype}. Got: {dtype_name_of(tensor)}")
    if tensor.shape[0] != num_examples:
        raise invalid_argument(
            f"Expected {name} output batch size of {num_examples}. Got: {tensor.shape[0]}"
        )


def _label(value: Any) -> str:
    """A class label as the proto's string field holds it (invalid UTF-8 is replaced)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def post_process_classification_result(
    num_examples: int, outputs: Mapping[str, np.ndarray], result: Any
) -> None:
    """``PostProcessClassificationResult``: fill ``result`` (a ``ClassificationResult``) with
    one ``Classifications`` per example from the ``classes``/``scores`` in ``outputs`` (at least
    one of them); a class
    without ``classes`` has an empty label, one without ``scores`` a score of 0.

    Raises:
        ServingStatusError: INVALID_ARGUMENT with upstream's texts for an output that is not 2-D,
            has the wrong dtype or batch size, or disagrees with the other in ``dim_size(1)``.
    """
    classes = outputs.get(CLASSIFY_OUTPUT_CLASSES)
    scores = outputs.get(CLASSIFY_OUTPUT_SCORES)
    if classes is not None:
        _check_output("classes", classes, "DT_STRING", num_examples)
    if scores is not None:
        _check_output("scores", scores, "DT_FLOAT", num_examples)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    labels = None if classes is None else [[_label(c) for c in row] for row in classes.tolist()]
    values = None if scores is None else scores.tolist()
    num_classes = max(t.shape[1] for t in (classes, scores) if t is not None)
    for i in range(num_examples):
        classifications = result.classifications.add()
        for c in range(num_classes):
            cls = classifications.classes.add()
            if labels is not None:
                cls.label = labels[i][c]
            if values is not None:
                cls.score = values[i][c]


def run_classify(
    servable: Servable, version: int | None, request: Any, method_name_check: bool = False
) -> Any:
    """``RunClassify``: answer a ``ClassificationRequest`` with signature
    ``request.model_spec.signature_name`` of ``servable`` (the request's model name and version
    are not looked at; ``version`` goes into the answer's ``model_spec`` when given).

    Raises:
        ServingStatusError: upstream's texts (see the functions above,
            :func:`~.util.input_to_serialized_examples` and :func:`~.util.run_on_examples`).
    """
    spec = request.model_spec
    key, aliases = classification_signature(servable, spec.signature_name, method_name_check)
    response = classification_pb2.ClassificationResponse()
    make_model_spec(response.model_spec, spec.name, spec.signature_name, version)
    examples = input_to_serialized_examples(request.input)
    outputs = run_on_examples(servable, key, examples, aliases)
    post_process_classification_result(len(examples), outputs, response.result)
    return response
