"""Every measurement of the benchmark, in one run, on one machine; see :mod:`bench`.

:func:`run` prepares the models, measures the version lifecycle on a digits server of its own,
measures the in-process limit in bare processes, then starts the servers compared under load
side by side, checks each one's answers once and loads each in turn. It returns the
:class:`~bench.report.Results` that :mod:`bench.report` writes out.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.loadgen import CLIENT_PROCESSES, Tally, Target, Window, run_clients, warm_up
from bench.report import InProcessCall, Lifecycle, LoadCell, Results, machine_facts
from bench.stats import Summary, summarize
from tfserve_nb.processes import stop_process
from tfserve_nb.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

BATCHING_PARAMETERS = """\
max_batch_size { value: 64 }
batch_timeout_micros { value: 2000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 100 }
"""
"""The batching server's parameters, after upstream's advice for CPUs (as many batch threads
as cores, a large ``max_batch_size``, a timeout of 0 then 1-10 ms). Tried with 64 clients on
two cores: a timeout of 0 keeps batches at two or three requests (a batch runs as soon as a
thread is free, and requests arrive about every 0.5 ms), 2 ms gave the most requests/s, 5 ms
fewer (the clients wait on the timeout); one batch thread did about as well as two."""

SWITCH_CLIENTS = 64


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark model: its generator in ``tests/helpers/models.py`` and its one input."""

    name: str
    input: str
    row_shape: tuple[int, ...]

    def build(self) -> Any:
        """The Keras model (deterministic: the generators are seeded)."""
        from tests.helpers import models

        if self.name == "digits":
            return models.digits_classifier()[0]
        if self.name == "mobilenet_v2":
            return models.mobilenet_v2()
        return models.image_cnn()

    def example(self, rows: int = 1) -> np.ndarray:
        return np.random.default_rng(0).random((rows, *self.row_shape), dtype=np.float32)


MODELS = {
    "digits": ModelSpec("digits", "pixels", (64,)),
    "image_cnn": ModelSpec("image_cnn", "image", (28, 28, 1)),
    "mobilenet_v2": ModelSpec("mobilenet_v2", "image", (128, 128, 3)),
}


@dataclass(frozen=True)
class Plan:
    """What one run measures, and for how long (seconds)."""

    mode: str
    models: tuple[str, ...]
    concurrencies: tuple[int, ...]
    warmup: float
    duration: float
    rounds: int
    """Each cell is measured ``rounds`` times for ``duration``, the setups taking turns."""
    inprocess_seconds: float
    switch_samples: int
    max_round: float
    """A cell whose clients need longer than this for one round of requests (estimated from
    the setup's latency at the lowest concurrency) is not measured."""
    batched_rows: int = 64

    def describe(self) -> str:
        return (
            f"Each cell: {self.rounds} x {self.duration:g} s after a {self.warmup:g} s warmup, "
            "the setups taking turns (slow ones: once, for two of their rounds of requests)."
        )

    @classmethod
    def full(cls) -> Plan:
        return cls("full", ("digits", "image_cnn"), (1, 8, 64), 0.5, 1.5, 3, 2.0, 3, 10.0)

    @classmethod
    def quick(cls) -> Plan:
        return cls("quick", ("digits",), (1, 64), 0.25, 0.8, 1, 0.4, 1, 1.0)


SETUPS = (
    "transport floor, gRPC",
    "transport floor, REST",
    "embedded, gRPC",
    "embedded, gRPC, batching",
    "embedded, REST",
    "FastAPI + model.predict",
)
"""The setups compared under load, in table order."""


# ---- processes the benchmark starts -------------------------------------------------------------


@dataclass
class Process:
    """A server started as ``python -m <module>``, which wrote its ports to a file."""

    popen: subprocess.Popen[bytes]
    ports: dict[str, int]

    def stop(self) -> None:
        stop_process(self.popen, 10)


def start_module(
    module: str, args: list[str], workdir: Path, label: str, timeout: float = 180.0
) -> Process:
    """Run ``python -m module args --port_file=...`` (output to ``<label>.log``) and wait for
    the port file."""
    port_file = workdir / f"{label}.ports.json"
    port_file.unlink(missing_ok=True)
    log = workdir / f"{label}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", module, *args, f"--port_file={port_file}"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )

    def not_started() -> RuntimeError:
        return RuntimeError(f"{module} did not start:\n{log.read_text(errors='replace')}")

    def reported() -> bool:
        if port_file.exists():
            return True
        if popen.poll() is not None:
            raise not_started()
        return False

    try:
        wait_until(reported, timeout, timed_out=not_started, interval=0.05)
    except RuntimeError:
        popen.kill()
        raise
    return Process(popen, json.loads(port_file.read_text()))


# ---- load ---------------------------------------------------------------------------------------


class LoadGenerator:
    """The client worker processes (:mod:`bench.loadgen`), kept for the whole run."""

    def __init__(self) -> None:
        self._pool = multiprocessing.get_context("spawn").Pool(CLIENT_PROCESSES)
        self._pool.map(warm_up, [0.5] * CLIENT_PROCESSES, chunksize=1)

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

    def measure(self, target: Target, clients: int, warmup: float, duration: float) -> Tally:
        return self.start(target, clients, Window(time.time() + 0.2, warmup, duration))()


def grpc_target(spec: ModelSpec, port: int) -> Target:
    from tensorflow_serving.apis import predict_pb2

    from tfserve_nb.protocol import tensor_proto

    request = predict_pb2.PredictRequest()
    request.model_spec.name = spec.name
    request.inputs[spec.input].CopyFrom(tensor_proto.from_ndarray(spec.example()))
    return Target("grpc", "127.0.0.1", port, request.SerializeToString())


def rest_target(spec: ModelSpec, port: int, path: str) -> Target:
    body = json.dumps({"instances": spec.example().tolist()}).encode()
    return Target("http", "127.0.0.1", port, body, path)


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# ---- answers ------------------------------------------------------------------------------------


def answer(target: Target, spec: ModelSpec) -> np.ndarray:
    """What the server behind ``target`` answers to ``spec``'s example (decoded)."""
    if target.protocol == "grpc":
        from tfserve_nb.client import ServingClient

        client = ServingClient(f"{target.host}:{target.port}", model_name=spec.name)
        try:
            return np.asarray(client.predict(spec.example()))
        finally:
            client.close()
    url = f"http://{target.host}:{target.port}{target.path}"
    request = urllib.request.Request(url, target.payload, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return np.asarray(json.loads(r.read())["predictions"], np.float32)


@dataclass(frozen=True)
class Endpoint:
    """A setup: its load target for a model; ``canned`` if it answers zeros (the floor)."""

    target: Callable[[ModelSpec], Target]
    canned: bool = False


def check_answers(endpoints: dict[str, Endpoint], expected: dict[str, np.ndarray]) -> None:
    """Every setup answers every model's example like the Keras model (zeros for the floor)."""
    for setup, endpoint in endpoints.items():
        for name, want in expected.items():
            got = answer(endpoint.target(MODELS[name]), MODELS[name])
            reference = np.zeros_like(want) if endpoint.canned else want
            if got.shape != want.shape or not np.allclose(got, reference, rtol=1e-4, atol=1e-6):
                raise AssertionError(f"{setup} answered {got} for {name}; expected {reference}")


# ---- the run ------------------------------------------------------------------------------------


def run(plan: Plan, workdir: Path, say: Callable[[str], None]) -> Results:
    """Measure everything ``plan`` asks for; models, logs and servers' files go in ``workdir``."""
    from tfserve_nb import export_model

    started = time.monotonic()
    machine = machine_facts()
    say(f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB RAM")
    keras_models, expected = {}, {}
    for name in plan.models:
        spec = MODELS[name]
        say(f"building {name}, exporting version 1")
        model = keras_models[name] = spec.build()
        export_model(model, workdir / "models" / name, 1)
        model.save(workdir / f"{name}.keras")
        expected[name] = model.predict(spec.example(), verbose=0)

    load = LoadGenerator()
    try:
        say("in-process limit, in bare processes")
        inprocess = [c for name in plan.models for c in measure_inprocess(plan, workdir, name)]
        say("version lifecycle and memory (digits, on a server of its own)")
        lifecycle = measure_lifecycle(plan, workdir, keras_models["digits"], load, say)
        with servers(plan, workdir) as endpoints:
            check_answers(endpoints, expected)
            cells = measure_load(plan, endpoints, load, say)
    finally:
        load.close()
    machine["load_after"] = os.getloadavg()[0]
    return Results(
        plan.mode,
        plan.describe(),
        machine,
        BATCHING_PARAMETERS,
        time.monotonic() - started,
        inprocess,
        cells,
        lifecycle,
    )


def measure_load(
    plan: Plan, endpoints: dict[str, Endpoint], load: LoadGenerator, say: Callable[[str], None]
) -> list[LoadCell]:
    """Every (model, setup, clients) cell. The setups take turns, ``plan.rounds`` times, so
    that load from elsewhere on the machine falls on all of them alike. A setup whose clients
    need longer than ``plan.duration / 2`` for one round of requests (estimated from its
    latency at the lowest concurrency) is measured once, in steady state: its warmup is one
    round, its measurement two; past ``plan.max_round`` it is not measured."""
    cells = []
    for name in plan.models:
        targets = {setup: endpoints[setup].target(MODELS[name]) for setup in SETUPS}
        lowest: dict[str, Summary] = {}
        for clients in plan.concurrencies:
            tallies = {setup: Tally() for setup in SETUPS}
            seconds = dict.fromkeys(SETUPS, 0.0)
            for turn in range(plan.rounds):
                for setup in SETUPS:
                    one_round = clients * lowest[setup].p50_ms / 1e3 if setup in lowest else 0
                    slow = one_round > plan.duration / 2
                    if one_round > plan.max_round or (slow and turn > 0):
                        continue
                    duration = max(plan.duration, 2 * one_round)
                    warmup = max(plan.warmup, one_round)
                    tallies[setup].merge(load.measure(targets[setup], clients, warmup, duration))
                    seconds[setup] += duration
            for setup in SETUPS:
                if not seconds[setup]:
                    say(f"{name:9} {setup:25} {clients:3} clients: not measured (too slow)")
                    continue
                tally = tallies[setup]
                summary = summarize(
                    tally.latencies, seconds[setup], tally.errors, tally.first_error
                )
                lowest.setdefault(setup, summary)
                cells.append(LoadCell(name, setup, clients, summary))
                say(
                    f"{name:9} {setup:25} {clients:3} clients: p50 {summary.p50_ms:7.2f} ms, "
                    f"p99 {summary.p99_ms:7.2f} ms, {summary.rate:6.0f} req/s"
                    + (f", {summary.errors} failed" if summary.errors else "")
                )
    cells.sort(key=lambda c: (plan.models.index(c.model), SETUPS.index(c.setup), c.concurrency))
    return cells


def measure_inprocess(plan: Plan, workdir: Path, name: str) -> list[InProcessCall]:
    """The limit, in a bare process (:mod:`bench.inprocess`); its memory is kept for digits."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.inprocess",
            f"--saved_model={workdir / 'models' / name / '1'}",
            f"--batches=1,{plan.batched_rows}",
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
        InProcessCall(name, c["call"], c["batch"], Summary(**c["summary"])) for c in report["calls"]
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
        target = grpc_target(spec, _port(server.grpc_address))
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
        rss_one,
        rss_two,
        int((workdir / "digits.bare_rss").read_text()),
    )


@contextlib.contextmanager
def servers(plan: Plan, workdir: Path) -> Iterator[dict[str, Endpoint]]:
    """The servers compared under load, started side by side and stopped on exit: the
    embedded server with and without batching, the transport floor, one FastAPI app per
    model. Yields an :class:`Endpoint` per setup."""
    from tfserve_nb import ModelConfig, serve
    from tfserve_nb.config import render_config_file

    configs = [ModelConfig(n, str(workdir / "models" / n)) for n in plan.models]
    config_file = workdir / "models.config"
    config_file.write_text(render_config_file(configs))
    batching_file = workdir / "batching.txt"
    batching_file.write_text(BATCHING_PARAMETERS)
    batching_flags = ["--enable_batching", f"--batching_parameters_file={batching_file}"]
    with ThreadPoolExecutor(len(plan.models) + 3) as pool:
        starts: dict[str, Future[Any]] = {
            "embedded": pool.submit(serve, configs, "embedded"),
            "batching": pool.submit(serve, configs, "embedded", extra_args=batching_flags),
            "floor": pool.submit(
                start_module,
                "bench.floor_server",
                [f"--model_config_file={config_file}", "--ephemeral_ports"],
                workdir,
                "floor",
            ),
            **{
                f"fastapi-{n}": pool.submit(
                    start_module,
                    "bench.fastapi_app",
                    [f"--keras_model={workdir / f'{n}.keras'}"],
                    workdir,
                    f"fastapi-{n}",
                )
                for n in plan.models
            },
        }
        started: dict[str, Any] = {}
        failure: Exception | None = None
        for key, future in starts.items():  # wait for every start, so that all are stopped
            try:
                started[key] = future.result()
            except Exception as exc:
                failure = failure or exc
        try:
            if failure is not None:
                raise failure
            yield endpoints(started)
        finally:
            list(pool.map(lambda server: server.stop(), started.values()))


def endpoints(started: dict[str, Any]) -> dict[str, Endpoint]:
    """The setups, on the servers :func:`servers` started."""
    embedded, batching, floor = started["embedded"], started["batching"], started["floor"]

    def ours(server_port: int) -> Callable[[ModelSpec], Target]:
        return lambda s: rest_target(s, server_port, f"/v1/models/{s.name}:predict")

    def fastapi(s: ModelSpec) -> Target:
        return rest_target(s, started[f"fastapi-{s.name}"].ports["rest_port"], "/predict")

    return {
        "transport floor, gRPC": Endpoint(
            lambda s: grpc_target(s, floor.ports["grpc_port"]), canned=True
        ),
        "transport floor, REST": Endpoint(ours(floor.ports["rest_port"]), canned=True),
        "embedded, gRPC": Endpoint(lambda s: grpc_target(s, _port(embedded.grpc_address))),
        "embedded, gRPC, batching": Endpoint(
            lambda s: grpc_target(s, _port(batching.grpc_address))
        ),
        "embedded, REST": Endpoint(ours(_port(embedded.rest_url))),
        "FastAPI + model.predict": Endpoint(fastapi),
    }
