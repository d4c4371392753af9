"""Regression over serialized ``tf.Example``, after TF Serving's
``servables/tensorflow/regressor.cc``.

A regression signature has one input, ``inputs`` (a batch of serialized examples), and one
output, ``outputs`` (DT_FLOAT ``[batch]`` or ``[batch, 1]``). Its ``method_name``
(``tensorflow/serving/regress``) is only checked with ``method_name_check``
(``--enable_signature_method_name_check``, off by default as upstream). Every error has
upstream's code and text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow_serving.apis import regression_pb2

from ..core.status import invalid_argument
from ..protocol.signature import (
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    REGRESS_METHOD_NAME,
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

REGRESS_OUTPUTS = "outputs"


def regression_signature(servable: Servable, signature_name: str, method_name_check: bool) -> str:
    """``GetRegressionSignatureDef``: the key of signature ``signature_name`` (empty means
    ``serving_default``), checked by :func:`pre_process_regression`.

    Raises:
        ServingStatusError: INVALID_ARGUMENT ``No signature was found with the name: x``, or
            one of :func:`pre_process_regression`'s.
    """
    key = signature_name or DEFAULT_SERVING_SIGNATURE_DEF_KEY
    if key not in servable.signature_def_map:
        raise invalid_argument(f"No signature was found with the name: {key}")
    pre_process_regression(servable.signature_def_map[key], method_name_check)
    return key


def pre_process_regression(signature_def: Any, method_name_check: bool) -> list[str]:
    """``PreProcessRegression``: the output aliases to fetch (``[outputs]``) after checking the
    signature's structure.

    Raises:
        ServingStatusError: INVALID_ARGUMENT with upstream's texts: a wrong method name (only
            with ``method_name_check``), not exactly one input or one output, no ``inputs``
            input, no ``outputs`` output.
    """
    if method_name_check and signature_def.method_name != REGRESS_METHOD_NAME:
        raise invalid_argument(
            f"Expected regression signature method_name to be {REGRESS_METHOD_NAME}. "
            f"Was: {signature_def.method_name}"
        )
    if len(signature_def.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature_def.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if EXAMPLES_INPUT not in signature_def.inputs:
        raise invalid_argument(
            f"No regression inputs found in SignatureDef: {debug_string(signature_def)}"
        )
    if REGRESS_OUTPUTS not in signature_def.outputs:
        raise invalid_argument(
            f"No regression outputs found in SignatureDef: {debug_string(signature_def)}"
        )
    return [REGRESS_OUTPUTS]


def post_process_regression_result(num_examples: int, output: np.ndarray, result: Any) -> None:
    """``PostProcessRegressionResult``: fill ``result`` (a ``RegressionResult``) with one
    regression per example from ``output``.

    Raises:
        ServingStatusError: INVALID_ARGUMENT with upstream's texts for a shape other than
            ``[batch]`` or ``[batch, 1]``, a batch size other than ``num_examples``, a dtype other
            than DT_FLOAT.
    """
    if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
        raise invalid_argument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{shape_debug_string(output.shape)}"
        )
    if output.shape[0] != num_examples:
        raise invalid_argument(
            "Input batch size did not match output batch size: "
            f"{num_examples} vs. {output.shape[0]}"
        )
    if dtype_name_of(output) != "DT_FLOAT":
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {dtype_name_of(output)}")
    for value in output.reshape(-1).tolist():
        result.regressions.add().value = value


def run_regress(
    servable: Servable, version: int | None, request: Any, method_name_check: bool = False
) -> Any:
    """``RunRegress``: answer a ``RegressionRequest`` with signature
    ``request.model_spec.signature_name`` of ``servable`` (the request's model name and version
    are not looked at; ``version`` goes into the answer's ``model_spec`` when given).

    Raises:
        ServingStatusError: upstream's texts (see the functions above,
            :func:`~.util.input_to_serialized_examples` and :func:`~.util.run_on_examples`).
    """
    spec = request.model_spec
    key = regression_signature(servable, spec.signature_name, method_name_check)
    response = regression_pb2.RegressionResponse()
    make_model_spec(response.model_spec, spec.name, spec.signature_name, version)
    examples = input_to_serialized_examples(request.input)
    outputs = run_on_examples(servable, key, examples, [REGRESS_OUTPUTS])
    post_process_regression_result(len(examples), outputs[REGRESS_OUTPUTS], response.result)
    return response
