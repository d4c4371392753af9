"""The targets the benchmark's results are judged by, each computed in every round.

A target's ratio is computed once per round, from that round's measurements (round ``i`` of a
cell with round ``i`` of the other cells and of the in-process limit; a cell measured once,
because it is slow, pairs with the first round only), and reported as min / median / max. It is
*met* only if its worst round meets it.

For the tiny models (digits, the small CNN) a request is all transport, so they are judged
against the transport floor; the model whose compute matters (MobileNetV2) is judged against
the in-process batched limit, which is what batching can approach. (Its other form, "the gain
over the unbatched server ≥ 0.8 x the in-process limit's gain over it", is the same inequality
divided by the unbatched rate: it is reported in the detail, not judged twice.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.models import MODELS
from bench.report import Lifecycle, Results, Round, median
from bench.setups import (
    BATCHING_GRPC,
    EMBEDDED_GRPC,
    EMBEDDED_REST,
    FASTAPI,
    TRANSPORT_FLOOR_GRPC,
)
from bench.stats import Summary

GENERATOR_LABELS = {"python": "Python clients", "native": "h2load/wrk"}

COMPUTE_BOUND = ("mobilenet_v2",)
"""Models judged against the in-process batched limit rather than the transport floor."""


@dataclass(frozen=True)
class Target:
    """A target as measured: one value per round against ``bound`` (``at_most``: values must
    not exceed it; else not fall below it); ``detail`` says what the median round compared."""

    name: str
    values: list[float]
    bound: float
    at_most: bool
    detail: str

    @property
    def met(self) -> bool:
        """Measured, and met in every round."""
        return bool(self.values) and all(self._meets(v) for v in self.values)

    def _meets(self, value: float) -> bool:
        return not math.isnan(value) and (
            value <= self.bound if self.at_most else value >= self.bound
        )

    @property
    def spread(self) -> tuple[float, float, float]:
        """(min, median, max) over the rounds (NaN if not measured)."""
        if not self.values:
            return (math.nan, math.nan, math.nan)
        return (min(self.values), median(self.values), max(self.values))


Series = Sequence[object] | None
"""A cell's rounds or the in-process limit's (``None``: not measured)."""


def _best_limit(results: Results, model: str, batch: int) -> list[Summary] | None:
    """Per round, the faster of the two in-process calls at ``batch`` rows."""
    calls = [results.limit(model, call, batch) for call in ("signature", "prepared")]
    found = [c.rounds for c in calls if c is not None]
    if not found:
        return None
    return [max(pair, key=lambda s: s.rate) for pair in zip(*found, strict=False)]


class _Found(list[Target]):
    def add(
        self,
        name: str,
        bound: float,
        at_most: bool,
        series: Sequence[Series],
        value: Callable[..., float],
        describe: Callable[..., str],
    ) -> None:
        """A target whose round ``i`` is ``value(*(s[i] for s in series))``; ``describe`` of the
        median round is its detail."""
        measured = [s for s in series if s is not None]
        rounds = list(zip(*measured, strict=False)) if len(measured) == len(series) else []
        if not rounds:
            self.append(Target(name, [], bound, at_most, "not measured in this run"))
            return
        values = [value(*r) for r in rounds]
        middle = sorted(range(len(values)), key=lambda i: values[i])[len(values) // 2]
        detail = describe(*rounds[middle]) + (" (median round)" if len(rounds) > 1 else "")
        self.append(Target(name, values, bound, at_most, detail))


def targets(results: Results) -> list[Target]:
    """Every target of this run: per model and load generator, then the lifecycle's."""
    found = _Found()
    for model in results.models:
        for generator in results.generators:
            _model_targets(found, results, model, generator)
    _lifecycle_targets(found, results.lifecycle)
    return list(found)


def _model_targets(found: _Found, results: Results, model: str, generator: str) -> None:
    top = max(c.concurrency for c in results.cells)
    low = min(c.concurrency for c in results.cells)

    def rounds(setup: str, clients: int) -> list[Round] | None:
        cell = results.cell(model, setup, clients, generator)
        return cell.rounds if cell else None

    by = f"{model}, {GENERATOR_LABELS[generator]}"
    limit1 = _best_limit(results, model, 1)
    grpc1 = rounds(EMBEDDED_GRPC, low)
    found.add(
        f"{by}: gRPC batch-1 p50, c={low} ≤ 1.25 x (in-process + transport floor)",
        1.25,
        True,
        [grpc1, rounds(TRANSPORT_FLOOR_GRPC, low), limit1],
        lambda g, f, s: g.summary.p50_ms / (s.p50_ms + f.summary.p50_ms),
        lambda g, f, s: f"{g.summary.p50_ms:.3f} ms vs {s.p50_ms:.3f} + {f.summary.p50_ms:.3f} ms",
    )
    batched = rounds(BATCHING_GRPC, top)
    if model in COMPUTE_BOUND:
        batch = MODELS[model].max_batch_size
        limit = _best_limit(results, model, batch)
        found.add(
            f"{by}: {top} clients, batching ≥ 0.8 x in-process rows/s at batch {batch}",
            0.8,
            False,
            [batched, rounds(EMBEDDED_GRPC, top), limit],
            lambda b, u, s: b.summary.rate / (s.rate * batch),
            lambda b, u, s: (
                f"{b.summary.rate:.1f} req/s vs {s.rate * batch:.1f} rows/s; p99 "
                f"{b.summary.p99_ms:.0f} ms, mean batch {b.batch_size:.1f}; gain over the "
                f"unbatched server {b.summary.rate / u.summary.rate:.2f} x, in-process "
                f"{s.rate * batch / u.summary.rate:.2f} x"
            ),
        )
        return
    for setup, factor in ((TRANSPORT_FLOOR_GRPC, 0.7), (FASTAPI, 10.0)):
        found.add(
            f"{by}: {top} clients, batching ≥ {factor:g} x {setup} req/s",
            factor,
            False,
            [batched, rounds(setup, top)],
            lambda b, o: b.summary.rate / o.summary.rate if o.summary.rate else math.inf,
            lambda b, o: f"{b.summary.rate:.0f} vs {o.summary.rate:.0f} req/s",
        )
    found.add(
        f"{by}: REST row batch-1 p50 ≤ 1.5 x gRPC p50 (c={low})",
        1.5,
        True,
        [rounds(EMBEDDED_REST, low), grpc1],
        lambda r, g: r.summary.p50_ms / g.summary.p50_ms,
        lambda r, g: f"{r.summary.p50_ms:.3f} vs {g.summary.p50_ms:.3f} ms",
    )


def _lifecycle_targets(found: _Found, life: Lifecycle) -> None:
    """Measured once per run: one round each."""

    def samples(values: list[float]) -> str:
        return ", ".join(f"{s:.2f} s" for s in values)

    found.add(
        "switch with 1 s polling ≤ 1.5 s (slowest sample)",
        1.5,
        True,
        [[max(life.switch_polling_s)]],
        float,
        lambda _: samples(life.switch_polling_s),
    )
    found.add(
        "switch with a triggered reload ≤ 0.5 s (slowest sample)",
        0.5,
        True,
        [[max(life.switch_triggered_s)]],
        float,
        lambda _: samples(life.switch_triggered_s),
    )
    found.add(
        f"failed requests during the switches ({life.switch_clients} clients) = 0",
        0,
        True,
        [[life.switch_failures]],
        float,
        lambda v: (
            f"{v} of {life.switch_requests}" + (f": {life.switch_first_failure}" if v else "")
        ),
    )
    found.add(
        "memory, one version ≤ 1.3 x bare process",
        1.3,
        True,
        [[life.rss_one_version / life.rss_bare]],
        float,
        lambda _: f"{life.rss_one_version / 2**20:.0f} MiB vs {life.rss_bare / 2**20:.0f} MiB",
    )
