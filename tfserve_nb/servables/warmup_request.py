"""One warmup record run on a servable, after TF Serving's ``saved_model_warmup.cc``.

:func:`run_warmup_request` is the executor :func:`~.saved_model_warmup.run_saved_model_warmup`
hands each ``PredictionLog`` to; it answers it as the services would, on the version being
loaded, and drops the answer.
"""

from __future__ import annotations

from typing import Any

from ..core.status import unimplemented
from ..protocol import tensor_proto
from . import classifier, predict_util, regressor
from .multi_inference import run_multi_inference
from .servable import Servable


def run_warmup_request(
    servable: Servable, version: int, method_name_check: bool, prediction_log: Any
) -> None:
    """Run one warmup ``PredictionLog`` on ``servable`` (``saved_model_warmup.cc``'s
    ``RunWarmupRequest``): its request's model name and version are not looked at, the answer
    is dropped, a log of no type does nothing.

    Raises:
        ServingStatusError: the request's error; UNIMPLEMENTED ``Unsupported log_type for
            warmup: N`` (N the oneof case number) for session-run and streamed-predict logs.
    """
    kind = prediction_log.WhichOneof("log_type")
    if kind == "predict_log":
        request = prediction_log.predict_log.request
        predict_util.run_predict(
            version,
            servable,
            tensor_proto.ndarrays_by_alias(request.inputs),
            request.model_spec.signature_name,
            list(request.output_filter),
            method_name_check=method_name_check,
        )
    elif kind == "classify_log":
        classifier.run_classify(
            servable, version, prediction_log.classify_log.request, method_name_check
        )
    elif kind == "regress_log":
        regressor.run_regress(
            servable, version, prediction_log.regress_log.request, method_name_check
        )
    elif kind == "multi_inference_log":
        run_multi_inference(
            servable, version, prediction_log.multi_inference_log.request, method_name_check
        )
    elif kind is not None:
        case = prediction_log.DESCRIPTOR.fields_by_name[kind].number
        raise unimplemented(f"Unsupported log_type for warmup: {case}")
