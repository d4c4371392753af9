"""The setups compared under load: the servers :func:`servers` starts side by side, and for each
a :class:`Setup`, which says where its requests go, which processes are charged for its CPU,
and where its own metrics are read."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import mlflow_peer
from bench.cpu import with_descendants
from bench.loadgen import Target
from bench.models import MODELS, SHARED_BATCHING, ModelSpec
from bench.server_metrics import PROMETHEUS_CONFIG
from tfserve_nb.processes import stop_process
from tfserve_nb.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

TRANSPORT_FLOOR_GRPC = "transport floor, gRPC"
TRANSPORT_FLOOR_REST = "transport floor, REST"
EMBEDDED_GRPC = "embedded, gRPC"
BATCHING_GRPC = "embedded, gRPC, batching"
EMBEDDED_REST = "embedded, REST"
FASTAPI = "FastAPI + model.predict"
MLFLOW = "MLflow scoring server"

SETUP_NAMES = (
    TRANSPORT_FLOOR_GRPC,
    TRANSPORT_FLOOR_REST,
    EMBEDDED_GRPC,
    BATCHING_GRPC,
    EMBEDDED_REST,
    FASTAPI,
    MLFLOW,
)
"""Every setup, in table order (MLflow only in a run with ``--peers``)."""


@dataclass(frozen=True)
class Setup:
    """One setup: its load target for a model, the processes its CPU is read from for a model
    (the server that serves it, and whatever that server started), the host and REST port of
    its metrics page (our servers: the model server's Prometheus page) and whether it answers
    canned zeros (the floor)."""

    name: str
    target: Callable[[ModelSpec], Target]
    pids: Callable[[ModelSpec], list[int]]
    metrics: tuple[str, int] | None = None
    canned: bool = False


# ---- processes ----------------------------------------------------------------------------------


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


# ---- requests and answers -----------------------------------------------------------------------


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


def check_answers(setups: list[Setup], expected: dict[str, np.ndarray]) -> None:
    """Every setup answers every model's example like the Keras model (zeros for the floor)."""
    for setup in setups:
        for name, want in expected.items():
            got = answer(setup.target(MODELS[name]), MODELS[name])
            reference = np.zeros_like(want) if setup.canned else want
            if got.shape != want.shape or not np.allclose(got, reference, rtol=1e-4, atol=1e-5):
                wrong = f"{setup.name} answered {got} for {name}; expected {reference}"
                raise AssertionError(wrong)


# ---- the servers --------------------------------------------------------------------------------


@contextlib.contextmanager
def servers(
    models: tuple[str, ...], workdir: Path, peers: bool, shared_batching: str = SHARED_BATCHING
) -> Iterator[list[Setup]]:
    """The servers compared under load, started side by side and stopped on exit: the embedded
    server with and without batching, the transport floor, one FastAPI app per model and, with
    ``peers``, one MLflow scoring server per model. Our servers serve their metrics
    (:data:`~bench.server_metrics.PROMETHEUS_CONFIG`); the batching one batches each model
    with its versions' own parameters (:attr:`~bench.models.ModelSpec.batching`, written by
    :func:`bench.run.prepare`; ``shared_batching`` is its ``--batching_parameters_file``).
    Models are read from ``workdir``: ``models/<name>`` (the
    SavedModels), ``<name>.keras`` and, with ``peers``, ``<name>.mlflow``. Yields a
    :class:`Setup` per setup, in :data:`SETUP_NAMES` order."""
    from tfserve_nb import ModelConfig, serve
    from tfserve_nb.config import render_config_file

    configs = [ModelConfig(n, str(workdir / "models" / n)) for n in models]
    config_file = workdir / "models.config"
    config_file.write_text(render_config_file(configs))
    (workdir / "monitoring.config").write_text(PROMETHEUS_CONFIG)
    monitoring = [f"--monitoring_config_file={workdir / 'monitoring.config'}"]
    (workdir / "batching.config").write_text(shared_batching)
    batching = [
        "--enable_batching",
        "--enable_per_model_batching_parameters",
        f"--batching_parameters_file={workdir / 'batching.config'}",
    ]

    def module(name: str, args: list[str], label: str) -> Callable[[], Process]:
        return lambda: start_module(name, args, workdir, label)

    starts: dict[str, Callable[[], Any]] = {
        "embedded": lambda: serve(configs, "embedded", extra_args=monitoring),
        "batching": lambda: serve(configs, "embedded", extra_args=monitoring + batching),
        "floor": module(
            "bench.floor_server",
            [f"--model_config_file={config_file}", "--ephemeral_ports", *monitoring],
            "floor",
        ),
    }
    for n in models:
        starts[f"fastapi-{n}"] = module(
            "bench.fastapi_app", [f"--keras_model={workdir / f'{n}.keras'}"], f"fastapi-{n}"
        )
        if peers:
            starts[f"mlflow-{n}"] = _mlflow_start(workdir, n)
    with ThreadPoolExecutor(len(starts)) as pool:
        futures: dict[str, Future[Any]] = {key: pool.submit(f) for key, f in starts.items()}
        started: dict[str, Any] = {}
        failure: Exception | None = None
        for key, future in futures.items():  # wait for every start, so that all are stopped
            try:
                started[key] = future.result()
            except Exception as exc:
                failure = failure or exc
        try:
            if failure is not None:
                raise failure
            yield setups(started, peers)
        finally:
            list(pool.map(lambda server: server.stop(), started.values()))


def _mlflow_start(workdir: Path, model: str) -> Callable[[], mlflow_peer.MlflowServer]:
    return lambda: mlflow_peer.serve(workdir / f"{model}.mlflow", workdir / f"mlflow-{model}.log")


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def setups(started: dict[str, Any], peers: bool) -> list[Setup]:
    """The setups, on the servers :func:`servers` started."""
    embedded, batching, floor = started["embedded"], started["batching"], started["floor"]
    embedded_rest, batching_rest = _port(embedded.rest_url), _port(batching.rest_url)

    def ours(port: int) -> Callable[[ModelSpec], Target]:
        return lambda s: rest_target(s, port, f"/v1/models/{s.name}:predict")

    def pids_of(pid: int) -> Callable[[ModelSpec], list[int]]:
        return lambda _: with_descendants(pid)

    def per_model(kind: str, path: str) -> Callable[[ModelSpec], Target]:
        return lambda s: rest_target(s, started[f"{kind}-{s.name}"].ports["rest_port"], path)

    def per_model_pids(kind: str) -> Callable[[ModelSpec], list[int]]:
        return lambda s: with_descendants(started[f"{kind}-{s.name}"].popen.pid)

    floor_metrics = ("127.0.0.1", floor.ports["rest_port"])
    found = [
        Setup(
            TRANSPORT_FLOOR_GRPC,
            lambda s: grpc_target(s, floor.ports["grpc_port"]),
            pids_of(floor.popen.pid),
            floor_metrics,
            canned=True,
        ),
        Setup(
            TRANSPORT_FLOOR_REST,
            ours(floor.ports["rest_port"]),
            pids_of(floor.popen.pid),
            floor_metrics,
            canned=True,
        ),
        Setup(
            EMBEDDED_GRPC,
            lambda s: grpc_target(s, _port(embedded.grpc_address)),
            pids_of(embedded.process.pid),
            ("127.0.0.1", embedded_rest),
        ),
        Setup(
            BATCHING_GRPC,
            lambda s: grpc_target(s, _port(batching.grpc_address)),
            pids_of(batching.process.pid),
            ("127.0.0.1", batching_rest),
        ),
        Setup(
            EMBEDDED_REST,
            ours(embedded_rest),
            pids_of(embedded.process.pid),
            ("127.0.0.1", embedded_rest),
        ),
        Setup(FASTAPI, per_model("fastapi", "/predict"), per_model_pids("fastapi")),
    ]
    if peers:
        found.append(
            Setup(MLFLOW, per_model("mlflow", mlflow_peer.REQUEST_PATH), per_model_pids("mlflow"))
        )
    return found
