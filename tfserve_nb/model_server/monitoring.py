"""``--monitoring_config_file``: TF Serving's metrics on a Prometheus endpoint.

The config is a text-format ``tensorflow.serving.MonitoringConfig``
(``prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }``; the message is not
in the ``tensorflow-serving-api`` wheel, so its two-message descriptor is built here and parsed
with protobuf's ``text_format``). The page is served on the REST port, as upstream does.

Metric names are upstream's with every character outside ``[A-Za-z0-9_]`` replaced by ``:``
(``/tensorflow/serving/request_count`` → ``:tensorflow:serving:request_count``), with upstream's
labels, help texts and bucket bounds (``Buckets::Exponential(10, 1.8, 33)`` µs). Upstream's
counters carry no ``_total`` suffix, so they are exposed by a small collector rather than
prometheus-client's ``Counter`` (whose exposition would rename them), and the ``# HELP`` and
``# TYPE`` lines prometheus-client writes for them are given the same names back. Upstream
metrics carry no version; ours add ``:tfserve_nb:version_request_count{model_name,version,
status}`` so a rollout can be watched per version. With ``--enable_batching`` the batch
schedulers report upstream's ``batching_session`` metrics (queuing latency, input and processed
batch sizes, padding, wrapped runs) through :class:`Metrics`, which implements
:class:`~tfserve_nb.batching.metrics.BatchingMetrics`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ..batching.metrics import (
    INPUT_BATCH_SIZE,
    PADDING_SIZE,
    PROCESSED_BATCH_SIZE,
    QUEUING_LATENCY,
    WRAPPED_RUN_COUNT,
)
from ..core.metric import MetricDefinition, exponential_buckets
from ..core.status import Code, invalid_argument

DEFAULT_PATH = "/monitoring/prometheus/metrics"
CONTENT_TYPE = "text/plain"


def _monitoring_config_class() -> type:
    pool = descriptor_pool.DescriptorPool()
    file = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    f = descriptor_pb2.FieldDescriptorProto
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    config = file.message_type.add(name="MonitoringConfig")
    config.field.add(
        name="prometheus_config",
        number=1,
        type=f.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=f.LABEL_OPTIONAL,
    )
    pool.AddSerializedFile(file.SerializeToString())
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    )


MonitoringConfig = _monitoring_config_class()


def read_prometheus_path(config_path: str) -> str | None:
    """The Prometheus path a monitoring config file enables, or ``None`` when disabled.
    Raises INVALID_ARGUMENT naming the file when it cannot be read or parsed."""
    try:
        with open(config_path) as f:
            text = f.read()
        config = text_format.Parse(text, MonitoringConfig())
    except (OSError, text_format.ParseError) as exc:
        raise invalid_argument(f"Invalid protobuf file: '{config_path}': {exc}") from None
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_PATH


def prometheus_name(name: str) -> str:
    """Upstream's ``GetPrometheusMetricName``."""
    new = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return "_" + new if new[:1].isdigit() else new


REQUEST_COUNT = MetricDefinition(
    "/tensorflow/serving/request_count", "The total number of requests.", ("model_name", "status")
)
REQUEST_LATENCY = MetricDefinition(
    "/tensorflow/serving/request_latency",
    "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
    ("model_name", "API", "entrypoint"),
    exponential_buckets(10, 1.8, 33),
)
MODEL_WARMUP_LATENCY = MetricDefinition(
    "/tensorflow/serving/model_warmup_latency",
    "Distribution of wall time (in microseconds) for warming up the model.",
    ("model_path", "status"),
    exponential_buckets(10, 1.8, 33),
)
VERSION_REQUEST_COUNT = MetricDefinition(
    "/tfserve_nb/version_request_count",
    "Requests answered per model version (tfserve-nb's own; upstream has no version label).",
    ("model_name", "version", "status"),
)


class _Counters(Collector):
    """Counters exposed under upstream's exact names (no ``_total``)."""

    def __init__(self, definitions: Sequence[MetricDefinition]) -> None:
        self._lock = threading.Lock()
        self._definitions = {d.name: d for d in definitions}
        self._values: dict[str, dict[tuple[str, ...], int]] = {d.name: {} for d in definitions}
        self.names = [prometheus_name(d.name) for d in definitions]

    def inc(self, definition: MetricDefinition, *labels: str) -> None:
        with self._lock:
            cells = self._values[definition.name]
            cells[labels] = cells.get(labels, 0) + 1

    def first_value(self, name: str) -> int | None:
        """The value of counter ``name``'s first cell in label order (0 if it has none yet), or
        ``None`` if no counter has that name."""
        with self._lock:
            cells = self._values.get(name)
            if cells is None:
                return None
            return cells[min(cells)] if cells else 0

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = {name: dict(cells) for name, cells in self._values.items()}
        for name, cells in snapshot.items():
            definition = self._definitions[name]
            metric = Metric(prometheus_name(name), definition.description, "counter")
            for labels, value in sorted(cells.items()):
                metric.add_sample(
                    prometheus_name(name), dict(zip(definition.labels, labels, strict=True)), value
                )
            yield metric


class Metrics:
    """The server's metrics. Thread-safe; every ``record_*`` call is cheap."""

    def __init__(self) -> None:
        disable_created_metrics()  # upstream exports no *_created series
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = _Counters([REQUEST_COUNT, VERSION_REQUEST_COUNT, WRAPPED_RUN_COUNT])
        self.registry.register(self._counters)
        self._histograms = {
            d.name: Histogram(
                prometheus_name(d.name),
                d.description,
                d.labels,
                registry=self.registry,
                buckets=d.buckets or (),  # every histogram definition has buckets
            )
            for d in (
                REQUEST_LATENCY,
                MODEL_WARMUP_LATENCY,
                QUEUING_LATENCY,
                INPUT_BATCH_SIZE,
                PROCESSED_BATCH_SIZE,
                PADDING_SIZE,
            )
        }

    def record_request(
        self,
        model_name: str,
        api: str,
        entrypoint: str,
        code: Code,
        latency_us: float,
        version: int | None = None,
    ) -> None:
        """One finished request: upstream counts every request by status and records the
        latency of successful ones."""
        status = code.name
        self._counters.inc(REQUEST_COUNT, model_name, status)
        if version is not None:
            self._counters.inc(VERSION_REQUEST_COUNT, model_name, str(version), status)
        if code is Code.OK:
            self._histograms[REQUEST_LATENCY.name].labels(model_name, api, entrypoint).observe(
                latency_us
            )

    def record_warmup(self, model_path: str, status: str, latency_us: float) -> None:
        """One warmup replay of the version at ``model_path``; ``status`` is upstream's
        ``absl::Status::ToString()`` (``OK``, ``DATA_LOSS: corrupted record at 12``)."""
        self._histograms[MODEL_WARMUP_LATENCY.name].labels(model_path, status).observe(latency_us)

    # The batching measurements (tfserve_nb.batching.metrics.BatchingMetrics); upstream's
    # batching sessions record queuing latency with an empty thread pool name.

    def record_input_batch_size(self, size: int) -> None:
        self._histograms[INPUT_BATCH_SIZE.name].observe(size)

    def record_queuing_latency(self, micros: float) -> None:
        self._histograms[QUEUING_LATENCY.name].labels("").observe(micros)

    def record_processed_batch_size(self, size: int) -> None:
        self._histograms[PROCESSED_BATCH_SIZE.name].observe(size)

    def record_padding_size(self, padding_size: int, execution_batch_size: int) -> None:
        self._histograms[PADDING_SIZE.name].labels(str(execution_batch_size)).observe(padding_size)

    def record_wrapped_run(self) -> None:
        self._counters.inc(WRAPPED_RUN_COUNT)

    def int64_value(self, name: str) -> int:
        """What upstream's ``ModelServiceImpl::GetMetrics`` reads for the metric ``name`` (its TF
        name, ``/tensorflow/serving/request_count``): the first point's int64 value, which is a
        counter's first cell in label order and 0 for a histogram or an unknown name."""
        value = self._counters.first_value(name)
        return 0 if value is None else value

    def page(self) -> tuple[str, bytes]:
        """``(content_type, body)`` of the Prometheus page."""
        page = generate_latest(self.registry)
        for name in self._counters.names:
            page = page.replace(f" {name}_total ".encode(), f" {name} ".encode())
        return CONTENT_TYPE, page


METRICS = Metrics()
"""The process's metrics, like upstream's process-wide collection registry."""
