"""Warmup requests for export: ``assets.extra/tf_serving_warmup_requests``.

:func:`as_request_list` takes the user's examples (one batch, or a list of them),
:func:`warmup_inputs` casts each to the signature's dtypes (never changing kind),
:func:`write_warmup` writes them as TFRecord ``PredictionLog`` records, and :func:`run_warmup`
replays them on the version read back, as TF Serving will before serving it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ExportError
from ..protocol.signature import (
    Signature,
    TensorSpec,
)

if TYPE_CHECKING:
    from ..servables.saved_model import SavedModelServable


WARMUP_FILE = Path("assets.extra", "tf_serving_warmup_requests")
"""Where TF Serving looks for warmup requests, relative to a version directory."""


MAX_WARMUP_RECORDS = 1000
"""TF Serving replays at most this many warmup records."""


def as_request_list(examples: Any) -> list[Any]:
    """``warmup_examples`` as a list of requests (each an array-like or a mapping)."""
    if examples is None:
        return []
    several = isinstance(examples, list | tuple) and all(
        isinstance(item, Mapping | np.ndarray) for item in examples
    )
    requests = list(examples) if several else [examples]
    if len(requests) > MAX_WARMUP_RECORDS:
        raise ExportError(
            f"{len(requests)} warmup examples given; TF Serving replays at most "
            f"{MAX_WARMUP_RECORDS}. Pass fewer (a handful of typical batch sizes is enough)."
        )
    return requests


def write_warmup(
    export_dir: Path, warmup: Sequence[Mapping[str, np.ndarray]], name: str, signature_name: str
) -> None:
    """Write one ``PredictionLog`` per request to ``export_dir / WARMUP_FILE``."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = export_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for inputs in warmup:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = name
            request.model_spec.signature_name = signature_name
            for alias, array in inputs.items():
                request.inputs[alias].CopyFrom(tf.make_tensor_proto(array))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def warmup_inputs(index: int, request: Any, signature: Signature) -> dict[str, np.ndarray]:
    """Warmup request ``index`` as input alias → array of the signature's dtype and rank."""
    where = f"warmup example {index}"
    if not isinstance(request, Mapping):
        if len(signature.inputs) != 1:
            raise ExportError(
                f"{where} is a single array, but signature {signature.key!r} has inputs "
                f"{sorted(signature.inputs)}: pass a dict input name → array."
            )
        request = {next(iter(signature.inputs)): request}
    missing = sorted(set(signature.inputs) - set(request))
    extra = sorted(set(request) - set(signature.inputs))
    if missing or extra:
        raise ExportError(
            f"{where} has inputs {sorted(request)}; signature {signature.key!r} needs exactly "
            f"{sorted(signature.inputs)} (missing: {missing}, unknown: {extra})."
        )
    return {
        alias: _warmup_array(where, request[alias], spec)
        for alias, spec in signature.inputs.items()
    }


def _warmup_array(where: str, value: Any, spec: TensorSpec) -> np.ndarray:
    """``value`` cast to ``spec``'s dtype, with a shape ``spec`` accepts."""
    dtype = spec.numpy_dtype
    if dtype is None:
        raise ExportError(
            f"{where}: input {spec.alias!r} has dtype {spec.dtype}, which numpy cannot hold; "
            f"export without warmup_examples."
        )
    try:
        array = np.asarray(value).astype(dtype, casting="same_kind")
    except (TypeError, ValueError) as exc:
        raise ExportError(
            f"{where}: input {spec.alias!r} cannot be cast to {spec.describe()}: {exc}"
        ) from exc
    if spec.shape is not None and (
        array.ndim != len(spec.shape)
        or any(
            want is not None and want != got
            for want, got in zip(spec.shape, array.shape, strict=True)
        )
    ):
        raise ExportError(
            f"{where}: input {spec.alias!r} has shape {array.shape}; the signature expects "
            f"{spec.describe()} (the first dimension is the batch)."
        )
    return array


def run_warmup(
    servable: SavedModelServable, signature: Signature, warmup: Sequence[Mapping[str, np.ndarray]]
) -> None:
    """Run every warmup request through ``signature``, as TF Serving does before serving."""
    from ..core.status import ServingStatusError

    for index, inputs in enumerate(warmup):
        try:
            servable.run(signature, inputs, list(signature.outputs))
        except ServingStatusError as exc:
            raise ExportError(
                f"warmup example {index} fails when run through signature {signature.key!r} "
                f"(TF Serving would refuse to load this version): {exc}"
            ) from exc
