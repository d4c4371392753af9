"""Latency percentiles and rates, computed the same way for every measurement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """``count`` successful calls in ``seconds``: their p50 and p99 latency (milliseconds),
    calls per second, and the failures seen in the same time."""

    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest rank; NaN if empty."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def summarize(
    latencies: Sequence[float], seconds: float, errors: int = 0, first_error: str = ""
) -> Summary:
    """A summary of latencies given in seconds."""
    ordered = sorted(latencies)
    return Summary(
        len(ordered),
        seconds,
        percentile(ordered, 0.5) * 1e3,
        percentile(ordered, 0.99) * 1e3,
        errors,
        first_error,
    )
