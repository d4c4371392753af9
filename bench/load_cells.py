"""One setup under closed-loop load, measured once: a :class:`Round` of a cell.

Two load generators drive it:

- ``python``: the benchmark's own clients (:mod:`bench.loadgen`), in the
  :class:`LoadGenerator`'s worker processes, what a notebook sends;
- ``native``: ``h2load`` for gRPC setups and ``wrk`` for REST ones (:mod:`bench.native_load`),
  which cost the machine a fraction of the Python clients' CPU.

Around the measured period (not its warm-up) the round reads the CPU seconds of the setup's
server processes and of the clients, and, for a server with a metrics page, its batching
sessions' counts: so each round has the server's and the clients' CPU per request and the mean
batch the scheduler formed.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import native_load, server_metrics
from bench.cpu import cpu_seconds
from bench.loadgen import CLIENT_PROCESSES, Tally, Target, Window, run_clients, warm_up
from bench.models import ModelSpec
from bench.report import Round
from bench.setups import Setup
from bench.stats import Summary, summarize

GENERATORS = ("python", "native")

START_DELAY_S = 0.2
"""Time the Python clients are given to reach their workers before the window opens."""


class LoadGenerator:
    """The client worker processes (:mod:`bench.loadgen`), kept for the whole run."""

    def __init__(self) -> None:
        self._pool = multiprocessing.get_context("spawn").Pool(CLIENT_PROCESSES)
        self._pool.map(warm_up, [0.5] * CLIENT_PROCESSES, chunksize=1)
        self.pids = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
        """The workers' pids (this process's only multiprocessing children)."""

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def start(self, target: Target, clients: int, window: Window) -> Callable[[], Tally]:
        """Start ``clients`` closed-loop clients spread over the workers; returns a function
        that waits for the window's end and gives the merged tally."""
        shares = [
            clients // CLIENT_PROCESSES + (i < clients % CLIENT_PROCESSES)
            for i in range(CLIENT_PROCESSES)
        ]
        jobs = [self._pool.apply_async(run_clients, (target, n, window)) for n in shares if n]

        def result() -> Tally:
            tally = Tally()
            for job in jobs:
                tally.merge(job.get(timeout=max(0.0, window.end - time.time()) + 120))
            return tally

        return result


@dataclass(frozen=True)
class _Reading:
    server_cpu_s: float
    rows: float
    batches: float

    @classmethod
    def take(cls, setup: Setup, spec: ModelSpec) -> _Reading:
        rows, count = server_metrics.batches(*setup.metrics) if setup.metrics else (0.0, 0.0)
        return cls(cpu_seconds(setup.pids(spec)), rows, count)


def _round(summary: Summary, before: _Reading, after: _Reading, client_cpu_s: float) -> Round:
    answered = summary.count or math.nan
    batches = after.batches - before.batches
    return Round(
        summary,
        1e3 * (after.server_cpu_s - before.server_cpu_s) / answered,
        1e3 * client_cpu_s / answered,
        (after.rows - before.rows) / batches if batches else math.nan,
    )


def measure(
    load: LoadGenerator,
    setup: Setup,
    spec: ModelSpec,
    clients: int,
    generator: str,
    warmup: float,
    duration: float,
    workdir: Path,
) -> Round:
    """``clients`` closed-loop batch-1 clients of ``generator`` on ``setup`` serving ``spec``:
    ``warmup`` seconds untallied, then ``duration`` seconds measured."""
    target = setup.target(spec)
    if generator == "python":
        window = Window(time.time() + START_DELAY_S, warmup, duration)
        result = load.start(target, clients, window)
        time.sleep(max(0.0, window.begin - time.time()))
        before, clients_before = _Reading.take(setup, spec), cpu_seconds(load.pids)
        time.sleep(max(0.0, window.end - time.time()))
        after, clients_after = _Reading.take(setup, spec), cpu_seconds(load.pids)
        tally = result()
        summary = summarize(tally.latencies, duration, tally.errors, tally.first_error)
        return _round(summary, before, after, clients_after - clients_before)
    if generator != "native":
        raise ValueError(f"no load generator {generator!r}; there are {GENERATORS}")

    def native(seconds: float) -> native_load.NativeRun:
        if target.protocol == "http":
            return native_load.wrk_rest(target, clients, 0, seconds, workdir)
        counter = server_metrics.ok_counter(*setup.metrics, spec.name) if setup.metrics else None
        return native_load.h2load_grpc(target, clients, 0, seconds, workdir, counter)

    native(warmup)
    before = _Reading.take(setup, spec)
    run = native(duration)
    return _round(run.summary, before, _Reading.take(setup, spec), run.client_cpu_s)
