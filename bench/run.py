"""Every measurement of the benchmark, in one run, on one machine; see :mod:`bench`.

:func:`run` prepares the models, measures the version lifecycle on a digits server of its own,
then starts the servers compared under load side by side (:mod:`bench.setups`), checks each
one's answers once, and measures in rounds: in each round, the in-process limit of every model
in a bare process, then every load cell (:mod:`bench.load_cells`), the setups and load
generators taking turns. It returns the :class:`~bench.report.Results` that
:mod:`bench.report` writes out.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import load_cells, mlflow_peer
from bench.load_cells import GENERATORS, LoadGenerator
from bench.loadgen import Window
from bench.models import MODELS, SHARED_BATCHING
from bench.report import InProcessCall, Lifecycle, LoadCell, Results, Round, machine_facts
from bench.setups import SETUP_NAMES, Setup, check_answers, grpc_target, servers
from bench.stats import Summary
from tfserve_nb.servables.saved_model import PER_MODEL_BATCHING_FILE

ROOT = Path(__file__).resolve().parents[1]

SWITCH_CLIENTS = 64


@dataclass(frozen=True)
class Plan:
    """What one run measures, and for how long (seconds)."""

    mode: str
    models: tuple[str, ...]
    concurrencies: tuple[int, ...]
    warmup: float
    duration: float
    rounds: int
    """Every cell is measured once per round, the setups and generators taking turns."""
    inprocess_seconds: float
    switch_samples: int
    max_round: float
    """A cell whose clients need longer than this for one round of requests (estimated from
    the setup's latency at the lowest concurrency) is not measured."""
    peers: bool = False
    """Measure MLflow's scoring server too (installing the ``peers`` extra if needed)."""

    def describe(self) -> str:
        return (
            f"{self.rounds} round(s); in each, every cell {self.duration:g} s after a "
            f"{self.warmup:g} s warmup, the setups and load generators taking turns (slow "
            "cells: in the first round only, for two of their rounds of requests)."
        )

    def batch_sizes(self, model: str) -> tuple[int, ...]:
        """The in-process limit's batch sizes: 1, and up to the model's ``max_batch_size``."""
        top = MODELS[model].max_batch_size
        return tuple(b for b in (1, 8, 16, 32, 64) if b <= top) if top > 32 else (1, 8, 16, top)

    @classmethod
    def full(cls, peers: bool = False) -> Plan:
        models = ("digits", "image_cnn", "mobilenet_v2")
        return cls("full", models, (1, 8, 64), 0.5, 1.5, 3, 1.5, 3, 10.0, peers)

    @classmethod
    def quick(cls, peers: bool = False) -> Plan:
        return cls("quick", ("digits",), (1, 64), 0.25, 0.8, 1, 0.4, 1, 1.0, peers)


# ---- the run ------------------------------------------------------------------------------------


def prepare(plan: Plan, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Build every model of ``plan`` and write what the servers read under ``workdir``:
    ``models/<name>/1`` (with the model's ``batching_params.pbtxt``), ``<name>.keras`` and,
    for peers, ``<name>.mlflow``. Returns the Keras models."""
    from tfserve_nb import export_model

    if plan.peers:
        mlflow_peer.ensure_installed(say)
    built = {}
    for name in plan.models:
        spec = MODELS[name]
        say(f"building {name}, exporting version 1")
        model = built[name] = spec.build()
        version = export_model(model, workdir / "models" / name, 1)
        (Path(version.path) / PER_MODEL_BATCHING_FILE).write_text(spec.batching)
        model.save(workdir / f"{name}.keras")
        if plan.peers:
            mlflow_peer.save(model, workdir / f"{name}.mlflow", spec.example())
    return built


def run(plan: Plan, workdir: Path, say: Callable[[str], None]) -> Results:
    """Measure everything ``plan`` asks for; models, logs and servers' files go in ``workdir``."""
    started = time.monotonic()
    machine = machine_facts()
    say(f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB RAM")
    keras_models = prepare(plan, workdir, say)
    expected = {n: m.predict(MODELS[n].example(), verbose=0) for n, m in keras_models.items()}
    load = LoadGenerator()
    try:
        with servers(plan.models, workdir, plan.peers) as setups:
            check_answers(setups, expected)
            inprocess, cells = measure_rounds(plan, setups, load, workdir, say)
        say("version lifecycle and memory (digits, on a server of its own)")
        lifecycle = measure_lifecycle(plan, workdir, keras_models["digits"], load, say)
    finally:
        load.close()
    machine["load_after"] = os.getloadavg()[0]
    batching = {"shared": SHARED_BATCHING} | {n: MODELS[n].batching for n in plan.models}
    return Results(
        plan.mode,
        plan.describe(),
        machine,
        batching,
        time.monotonic() - started,
        inprocess,
        cells,
        lifecycle,
    )


def measure_rounds(
    plan: Plan,
    setups: list[Setup],
    load: LoadGenerator,
    workdir: Path,
    say: Callable[[str], None],
) -> tuple[list[InProcessCall], list[LoadCell]]:
    """``plan.rounds`` rounds of every in-process call and every load cell, interleaved, so
    that load from elsewhere on the machine falls on all of them alike. A (setup, generator)
    whose clients need longer than ``plan.duration / 2`` for one round of requests (estimated
    from its latency at the lowest concurrency, in the first round) is measured in the first
    round only, in steady state: its warmup is one round of requests, its measurement two;
    past ``plan.max_round`` it is not measured."""
    inprocess: dict[tuple[str, str, int], InProcessCall] = {}
    rounds: dict[tuple[str, str, int, str], list[Round]] = {}
    lowest: dict[tuple[str, str, str], float] = {}
    for turn in range(plan.rounds):
        say(f"round {turn + 1} of {plan.rounds}")
        for name in plan.models:
            for call in measure_inprocess(plan, workdir, name):
                kept = inprocess.setdefault((name, call.call, call.batch), call)
                if kept is not call:
                    kept.rounds.extend(call.rounds)
                    kept.cpu_ms_per_row.extend(call.cpu_ms_per_row)
            spec = MODELS[name]
            for clients in plan.concurrencies:
                for setup in setups:
                    for generator in GENERATORS:
                        p50 = lowest.get((name, setup.name, generator), 0.0)
                        one_round = clients * p50 / 1e3
                        slow = one_round > plan.duration / 2
                        if one_round > plan.max_round or (slow and turn > 0):
                            continue
                        duration = max(plan.duration, 2 * one_round)
                        warmup = max(plan.warmup, one_round)
                        measured = load_cells.measure(
                            load, setup, spec, clients, generator, warmup, duration, workdir
                        )
                        lowest.setdefault((name, setup.name, generator), measured.summary.p50_ms)
                        rounds.setdefault((name, setup.name, clients, generator), []).append(
                            measured
                        )
                        say(_line(name, setup.name, clients, generator, measured))
    cells = [LoadCell(*key, found) for key, found in rounds.items()]
    cells.sort(
        key=lambda c: (
            plan.models.index(c.model),
            SETUP_NAMES.index(c.setup),
            c.concurrency,
            GENERATORS.index(c.generator),
        )
    )
    return list(inprocess.values()), cells


def _line(name: str, setup: str, clients: int, generator: str, measured: Round) -> str:
    s = measured.summary
    return (
        f"{name:12} {setup:25} {generator:6} {clients:3} clients: p50 {s.p50_ms:7.2f} ms, "
        f"{s.rate:7.1f} req/s, server {measured.server_cpu_ms:6.3f} ms CPU/req"
        + ("" if math.isnan(measured.batch_size) else f", batch {measured.batch_size:.1f}")
        + (f", {s.errors} failed: {s.first_error[:200]}" if s.errors else "")
    )


def measure_inprocess(plan: Plan, workdir: Path, name: str) -> list[InProcessCall]:
    """The limit, in a bare process (:mod:`bench.inprocess`), one round; its memory is kept
    for the lifecycle's comparison."""
    batches = ",".join(str(b) for b in plan.batch_sizes(name))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.inprocess",
            f"--saved_model={workdir / 'models' / name / '1'}",
            f"--batches={batches}",
            f"--seconds={plan.inprocess_seconds}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    report = json.loads(done.stdout)
    (workdir / f"{name}.bare_rss").write_text(str(report["rss_bytes"]))
    return [
        InProcessCall(name, c["call"], c["batch"], [Summary(**c["summary"])], [c["cpu_ms_per_row"]])
        for c in report["calls"]
    ]


def _rss(server: Any) -> int:
    """Resident bytes of an embedded server's process."""
    import psutil

    from tfserve_nb.backends.embedded import EmbeddedProcess

    assert isinstance(server.process, EmbeddedProcess)
    return psutil.Process(server.process.pid).memory_info().rss


def measure_lifecycle(
    plan: Plan, workdir: Path, model: Any, load: LoadGenerator, say: Callable[[str], None]
) -> Lifecycle:
    """Cold start, resident memory with one version, version switches under
    :data:`SWITCH_CLIENTS` gRPC clients (with 1 s polling, then triggered by a reload), and
    memory with two versions, on a digits server of its own."""
    from tfserve_nb import Latest, export_model, serve

    spec = MODELS["digits"]
    base = workdir / "lifecycle" / "digits"
    export_model(model, base, 1)
    start = time.perf_counter()
    server = serve(base, backend="embedded", extra_args=["--file_system_poll_wait_seconds=1"])
    cold_start = time.perf_counter() - start
    say(f"cold start {cold_start:.2f} s")
    try:
        x = spec.example()
        for _ in range(20):
            server.predict(x)
        rss_one = _rss(server)
        target = grpc_target(spec, int(server.grpc_address.rsplit(":", 1)[1]))
        switches: dict[bool, list[float]] = {False: [], True: []}
        requests = failures = 0
        first_failure = ""
        version = 1
        for triggered in [False] * plan.switch_samples + [True] * plan.switch_samples:
            version += 1
            stop_file = workdir / f"stop-load-{version}"
            window = Window(time.time() + 0.2, 0.0, 120.0, str(stop_file))
            result = load.start(target, SWITCH_CLIENTS, window)
            time.sleep(max(0.0, window.start + 0.5 - time.time()))  # let the load settle
            export_model(model, base, version)
            exported = time.perf_counter()
            if triggered:
                server.reload_config(list(server.models.values()))
            while server.predict_detailed(x).version != version:
                if time.perf_counter() - exported > 60:
                    raise RuntimeError(f"version {version} did not answer within 60 s")
            switches[triggered].append(time.perf_counter() - exported)
            time.sleep(0.5)  # the old version unloads under load too
            stop_file.touch()
            tally = result()
            requests += len(tally.latencies) + tally.errors
            failures += tally.errors
            first_failure = first_failure or tally.first_error
            say(
                f"switch to v{version} ({'reload' if triggered else '1 s polling'}): "
                f"{switches[triggered][-1]:.2f} s, {tally.errors} failed"
            )
        server.set_version_policy(Latest(2))
        server.wait_until_available(version - 1)
        for _ in range(20):
            server.predict(x, version=version - 1)
        rss_two = _rss(server)
    finally:
        server.stop()
    return Lifecycle(
        cold_start,
        switches[False],
        switches[True],
        requests,
        failures,
        first_failure,
        SWITCH_CLIENTS,
        rss_one,
        rss_two,
        int((workdir / "digits.bare_rss").read_text()),
    )
