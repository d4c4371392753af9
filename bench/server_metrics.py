"""Counters read off a model server's metrics page (``--monitoring_config_file`` with
:data:`PROMETHEUS_CONFIG`): what the server itself says it did during a measurement."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
PROMETHEUS_CONFIG = f'prometheus_config {{ enable: true path: "{PROMETHEUS_PATH}" }}'
"""A ``MonitoringConfig`` text proto for ``--monitoring_config_file``: the server then serves
its metrics at :data:`PROMETHEUS_PATH` on its REST port."""

_BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"


def metrics_page(host: str, rest_port: int) -> str:
    """The server's metrics, in Prometheus' text format."""
    with urllib.request.urlopen(f"http://{host}:{rest_port}{PROMETHEUS_PATH}", timeout=10) as page:
        return page.read().decode()


def ok_counter(host: str, rest_port: int, model_name: str) -> Callable[[], float]:
    """A function reading the server's count of OK inference requests for ``model_name``
    (``:tensorflow:serving:request_count{model_name=...,status="OK"}``, 0 before the first)."""
    line = re.compile(
        rf'^:tensorflow:serving:request_count\{{model_name="{re.escape(model_name)}",'
        rf'status="OK"\}} (\S+)$',
        re.MULTILINE,
    )

    def count() -> float:
        match = line.search(metrics_page(host, rest_port))
        return float(match.group(1)) if match else 0.0

    return count


def batches(host: str, rest_port: int) -> tuple[float, float]:
    """Rows and batches the server's batching sessions have run so far, all models together
    (the sum and count of ``processed_batch_size``; ``(0, 0)`` without batching). Between two
    readings, rows / batches is the mean batch the scheduler formed (with no
    ``allowed_batch_sizes``, nothing is padded)."""
    page = metrics_page(host, rest_port)

    def total(suffix: str) -> float:
        pattern = rf"^{re.escape(_BATCH_SIZE + suffix)}(?:\{{[^}}]*\}})? (\S+)$"
        return sum(float(v) for v in re.findall(pattern, page, re.MULTILINE))

    return total("_sum"), total("_count")
