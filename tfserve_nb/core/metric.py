"""A metric as TensorFlow's ``monitoring`` library declares one: name, help text, labels and,
for a sampler, its bucket bounds (``monitoring::Buckets``).

Declarations only: whoever records the metric (the model server's Prometheus registry) turns a
:class:`MetricDefinition` into a counter or histogram. The batching code and the model server
declare their metrics with it, so neither takes its vocabulary from the other.
"""

from __future__ import annotations

from dataclasses import dataclass


def exponential_buckets(scale: float, growth_factor: float, bucket_count: int) -> tuple[float, ...]:
    """Upper bounds of ``monitoring::Buckets::Exponential``: ``scale * growth_factor**i``.

    Upstream adds a last bucket bounded by ``DBL_MAX``; Prometheus calls it ``+Inf``.
    """
    bounds = []
    bound = scale
    for _ in range(bucket_count):
        bounds.append(bound)
        bound *= growth_factor
    return tuple(bounds)


@dataclass(frozen=True)
class MetricDefinition:
    """One upstream metric: its name, help text, label names and (for samplers) bucket bounds."""

    name: str
    description: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    """``None`` for a counter."""
