"""Warmup: replaying a version's recorded requests before it serves, after TF Serving's
``servables/tensorflow/saved_model_warmup_util.cc`` (single-threaded replay).

``<version>/assets.extra/tf_serving_warmup_requests`` is a TFRecord file of
``tensorflow.serving.PredictionLog``. :func:`run_saved_model_warmup` reads it record by record
and hands each log to an executor ``num_request_iterations`` times; the caller (the loader)
runs it before the version becomes AVAILABLE, so a raised error fails the load. Texts and codes
are upstream's:

- no file: nothing to do (warmup is optional);
- a record that is not a ``PredictionLog``: INVALID_ARGUMENT ``Failed to parse warmup record:
  <record> from <path>`` (bytes that are not UTF-8 are shown as ``\\xNN`` escapes);
- more than :data:`MAX_NUM_RECORDS` records: INVALID_ARGUMENT ``Number of warmup records exceeds
  the maximum (1000) at <path>``, raised after the 1001st record ran, as upstream;
- a file that is not a TFRecord file, or is corrupted: DATA_LOSS with TensorFlow's record reader
  text plus ``. Please verify your warmup data is in TFRecord format.``;
- an executor error is raised as it is.

The ``model_warmup_latency`` metric is recorded where upstream records it: once the file is read
to its end (status ``OK``) or a read fails (status ``DATA_LOSS: ...``), but not when a record or
its execution fails.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..core.status import Code, ServingStatusError, invalid_argument

log = logging.getLogger(__name__)

WARMUP_REQUESTS_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
"""Where the warmup requests are, relative to a version directory."""

MAX_NUM_RECORDS = 1000
"""Upstream's ``WarmupConsts::kMaxNumRecords``."""

WarmupLatencyRecorder = Callable[[str, str, float], None]
"""``(model_path, status, latency_us)``; ``status`` is ``absl::Status::ToString()``."""


def _records(path: str) -> Iterator[bytes]:
    """The records of the TFRecord file at ``path``. Opening errors are raised at once; read
    errors (e.g. DATA_LOSS ``corrupted record at 12``) when the bad record is reached, both as
    ServingStatusError with TensorFlow's code and text."""
    import tensorflow as tf

    try:
        iterator = tf.compat.v1.io.tf_record_iterator(path)
    except tf.errors.OpError as exc:
        raise ServingStatusError(Code(exc.error_code), exc.message) from None
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as exc:
            raise ServingStatusError(Code(exc.error_code), exc.message) from None


def run_saved_model_warmup(
    export_dir: str,
    execute: Callable[[Any], None],
    num_request_iterations: int = 1,
    record_latency: WarmupLatencyRecorder | None = None,
) -> None:
    """Replay the warmup requests of the version at ``export_dir``: each ``PredictionLog`` is
    passed to ``execute`` ``num_request_iterations`` times. See the module docstring for the
    errors raised and when ``record_latency`` is called."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_dir, WARMUP_REQUESTS_FILE)
    if not os.path.exists(path):
        log.info("No warmup data file found at %s", path)
        return
    start = time.perf_counter()
    log.info(
        "Starting to read warmup data for model at %s with model-warmup-options "
        "num_request_iterations: %d",
        path,
        num_request_iterations,
    )
    records = _records(path)
    num_records = 0
    read_error: ServingStatusError | None = None
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except ServingStatusError as exc:
            read_error = exc
            break
        prediction_log = prediction_log_pb2.PredictionLog()
        try:
            prediction_log.ParseFromString(record)
        except Exception:  # protobuf's DecodeError, or an unexpected end of the message
            text = record.decode("utf-8", "backslashreplace")
            raise invalid_argument(f"Failed to parse warmup record: {text} from {path}") from None
        for _ in range(num_request_iterations):
            execute(prediction_log)
        num_records += 1
        if num_records > MAX_NUM_RECORDS:
            raise invalid_argument(
                f"Number of warmup records exceeds the maximum ({MAX_NUM_RECORDS}) at {path}"
            )
    latency_us = (time.perf_counter() - start) * 1e6
    if record_latency is not None:
        status = "OK" if read_error is None else f"{read_error.code.name}: {read_error.message}"
        record_latency(export_dir, status, latency_us)
    if read_error is not None:
        if read_error.code is Code.DATA_LOSS:
            raise ServingStatusError(
                Code.DATA_LOSS,
                f"{read_error.message}. Please verify your warmup data is in TFRecord format.",
            )
        raise read_error
    log.info(
        "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
        "Elapsed time (microseconds): %d.",
        path,
        num_records,
        latency_us,
    )
