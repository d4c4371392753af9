"""Request checks shared by gRPC and REST predict, with TF Serving's texts.

After ``servables/tensorflow/predict_util.cc`` and TensorFlow's ``saved_model/util.cc``
(``GetInputValues``): signature lookup, the input-set check and output filtering, by name only,
as upstream. Works on the framework-free :class:`~tfserve_nb.protocol.signature.Signature`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.status import Code, ServingStatusError, failed_precondition, invalid_argument
from ..protocol.signature import (
    CLASSIFY_METHOD_NAME,
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    PREDICT_METHOD_NAME,
    REGRESS_METHOD_NAME,
    Signature,
)
from .servable import Servable

_PREDICT_METHOD_NAMES = (PREDICT_METHOD_NAME, CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME)


def _set(names: Collection[str]) -> str:
    return ",".join(sorted(names))


def find_signature(signatures: Mapping[str, Signature], signature_name: str) -> Signature:
    """The signature called ``signature_name`` (empty = ``serving_default``).

    Raises FAILED_PRECONDITION ``Serving signature key "x" not found.``
    """
    key = signature_name or DEFAULT_SERVING_SIGNATURE_DEF_KEY
    signature = signatures.get(key)
    if signature is None:
        raise failed_precondition(f'Serving signature key "{key}" not found.')
    return signature


def check_inputs(signature: Signature, request_inputs: Collection[str]) -> None:
    """The request must name exactly the signature's inputs (signatures have no defaults here).

    Raises INVALID_ARGUMENT with upstream's ``input size does not match signature`` text when the
    counts differ, and ``Signature input alias: ...`` when the counts match but names do not.
    """
    expected = signature.inputs.keys()
    sent = set(request_inputs)
    if len(sent) != len(expected):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{_set(sent)}}}) != len({{{_set(expected)}}}). "
            f"Sent extra: {{{_set(sent - expected)}}}. "
            f"Missing but required: {{{_set(expected - sent)}}}."
        )
    for alias in sorted(expected):
        if alias not in sent:
            raise invalid_argument(
                f"Signature input alias: {alias}(feed name: {signature.inputs[alias].tensor_name})"
                f" not found in request and no default value provided. Inputs expected to be in "
                f"the request {{{_set(sent)}}}, or default input alias set: "
            )


def output_aliases(signature: Signature, output_filter: Sequence[str]) -> list[str]:
    """The outputs to return: ``output_filter`` checked against the signature, or all of them.

    Raises INVALID_ARGUMENT ``output tensor alias not found in signature: z Outputs expected to be
    in the set {y}.`` or ``duplicate output tensor alias: z``.
    """
    if not output_filter:
        return list(signature.outputs)
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                f"the set {{{_set(signature.outputs)}}}."
            )
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(output_filter)


@dataclass(frozen=True)
class PredictAnswer:
    """What a predict run answers before a front-end encodes it as a ``PredictResponse``: the
    version and signature key that ran, and the outputs by alias."""

    version: int
    signature_name: str
    outputs: dict[str, np.ndarray]


def run_predict(
    version: int,
    servable: Servable,
    inputs: Mapping[str, np.ndarray],
    signature_name: str,
    output_filter: Sequence[str] = (),
    *,
    method_name_check: bool = False,
) -> PredictAnswer:
    """Check ``inputs`` against the signature and run it on ``servable`` (anything with
    ``signatures`` and ``run(signature, inputs, aliases)``, e.g. a SavedModelServable).

    As upstream's ``PreProcessPrediction``, only names are checked here (the signature, the
    input set, the output filter); the tensors go to the servable as they are, and TensorFlow
    decides what their dtypes and shapes do.

    With ``method_name_check`` (``--enable_signature_method_name_check``) a signature whose
    method is not predict, classify or regress fails with upstream's INTERNAL ``Expected
    prediction signature method_name to be one of {...}. Was: m``.
    """
    signature = find_signature(servable.signatures, signature_name)
    if method_name_check and signature.method_name not in _PREDICT_METHOD_NAMES:
        raise ServingStatusError(
            Code.INTERNAL,
            "Expected prediction signature method_name to be one of "
            f"{{{', '.join(_PREDICT_METHOD_NAMES)}}}. Was: {signature.method_name}",
        )
    check_inputs(signature, inputs.keys())
    aliases = output_aliases(signature, output_filter)
    return PredictAnswer(version, signature.key, servable.run(signature, inputs, aliases))
