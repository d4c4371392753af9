"""The batching metrics TF Serving exports, and the hook the scheduler reports them through.

Upstream (``batching/batching_session.cc``, ``batching/batching_util.h``) keeps process-wide
samplers with no model or version label; ``--monitoring_config_file`` exposes them on the
Prometheus endpoint with every character outside ``[A-Za-z0-9_]`` replaced by ``:``, e.g.
``:tensorflow:serving:batching_session:queuing_latency``. This module declares them (each a
:class:`~tfserve_nb.core.metric.MetricDefinition`) with upstream's help texts and bucket limits,
so the monitoring code can declare matching histograms and hand one :class:`BatchingMetrics`
implementation to every :class:`~.batch_scheduler.BatchScheduler`.
"""

from __future__ import annotations

from typing import Protocol

from ..core.metric import MetricDefinition, exponential_buckets

__all__ = [
    "INPUT_BATCH_SIZE",
    "PADDING_SIZE",
    "PROCESSED_BATCH_SIZE",
    "QUEUING_LATENCY",
    "WRAPPED_RUN_COUNT",
    "BatchingMetrics",
]


QUEUING_LATENCY = MetricDefinition(
    "/tensorflow/serving/batching_session/queuing_latency",
    "Distribution of wall time spent (in microseconds) in queuing",
    ("thread_pool_name",),
    exponential_buckets(100, 1.2, 52),
)
"""Per task, µs from ``submit`` to the start of its batch. The model server records it with
``thread_pool_name=""``: ``WrapSessionForBatching`` creates its batching sessions with an empty
pool name, whatever the parameters file says."""

INPUT_BATCH_SIZE = MetricDefinition(
    "/tensorflow/serving/batching_session/input_batch_size",
    "Tracks the batch size distribution on the inputs.",
    (),
    exponential_buckets(1, 2, 14),
)
"""Per request, its 0th-dimension size; upstream samples it once per input tensor."""

PROCESSED_BATCH_SIZE = MetricDefinition(
    "/tensorflow/serving/batching_session/processed_batch_size",
    "Tracks the batch size distribution on processing.",
    (),
    exponential_buckets(1, 2, 14),
)
"""Per batch, its size after padding."""

PADDING_SIZE = MetricDefinition(
    "/tensorflow/serving/batching_session/padding_size",
    "Tracks the padding size distribution on batches.",
    ("execution_batch_size",),
    exponential_buckets(1, 2, 14),
)
"""Per batch, the rows of padding added, labelled with the padded batch size (a decimal)."""

WRAPPED_RUN_COUNT = MetricDefinition(
    "/tensorflow/serving/batching_session/wrapped_run_count",
    "Total count of run calls on the wrapped session",
)
"""Batches handed to ``process_batch``."""


class BatchingMetrics(Protocol):
    """Receives batching measurements; implemented by the monitoring code.

    Called from request threads (``record_input_batch_size``) and batch threads (the rest),
    concurrently: implementations must be thread-safe and quick, and must not raise.
    """

    def record_input_batch_size(self, size: int) -> None:
        """:data:`INPUT_BATCH_SIZE`: called once per input tensor of each submitted request."""

    def record_queuing_latency(self, micros: float) -> None:
        """:data:`QUEUING_LATENCY`: called once per task when its batch starts."""

    def record_processed_batch_size(self, size: int) -> None:
        """:data:`PROCESSED_BATCH_SIZE`: called once per batch, with the padded size."""

    def record_padding_size(self, padding_size: int, execution_batch_size: int) -> None:
        """:data:`PADDING_SIZE`: called once per batch."""

    def record_wrapped_run(self) -> None:
        """:data:`WRAPPED_RUN_COUNT`: called once per ``process_batch`` call."""
