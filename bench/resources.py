"""``python -m bench.resources [--mb 50] [--cases ...] [--paths regular,fast] [--json FILE]``:
what one large numeric REST predict body costs the server, and what it costs everybody else.

For each case (row format ``{"instances": [[...], ...]}`` or columnar ``{"inputs": [[...], ...]}``;
64 numbers per row: ``float``, random float32 values as ``json.dumps`` writes them (~18 digits);
``int``, integers in [0, 256); ``short``, one-decimal floats ``0.0`` to ``0.9`` without spaces, the
most numbers per byte), a fresh server serves three models: ``digits`` (the digits classifier of
``tests/helpers/models.py``, float32[?,64] -> [?,10]), ``int_max`` and ``float_max``
(:func:`max_model`: int32 or float32[?,64] -> the row's maximum, [?,1], an answer that costs
little). A body of about ``--mb`` MB is POSTed once, while two bystander clients (one REST, one
gRPC) send one-row predicts to ``digits`` back to back. The server is ``python -m
tfserve_nb.model_server`` ("fast"), or :mod:`bench.regular_json_server`, the same with the codec's
path for large numeric arrays off ("regular": the REST JSON path before it, for before/after).
Reported per case:

- the server's resident-memory growth during the request, as a multiple of the body: the peak
  (``VmHWM`` of ``/proc/<pid>/status``, reset through ``/proc/<pid>/clear_refs`` just before)
  minus the resident size before it;
- the big request's duration;
- the bystanders' latencies (p50, p99, max) of the requests that overlapped it.

All traffic stays on 127.0.0.1; every loop is bounded in count and time; every server started
is stopped. :func:`measure` is also what ``tests/reliability/test_rest_resources.py`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.loadgen import MAX_MESSAGE_BYTES, PREDICT_METHOD

ROW_VALUES = 64
"""Values per row of the models' input."""

FLOAT_MODEL = "digits"
INT_MODEL = "int_max"
SHORT_MODEL = "float_max"
MODELS = {"float": FLOAT_MODEL, "int": INT_MODEL, "short": SHORT_MODEL}
"""The model each kind of number is sent to."""
CASES = ("row-float", "columnar-float", "row-int", "columnar-int", "row-short")
SERVERS = {"fast": "tfserve_nb.model_server", "regular": "bench.regular_json_server"}

BYSTANDER_MAX_REQUESTS = 20_000
BYSTANDER_MAX_SECONDS = 300.0
BIG_REQUEST_TIMEOUT = 300.0


def max_model(dtype: str) -> Any:
    """``pixels`` ``dtype``[?,64] -> ``peak`` [?,1], each row's maximum: a large input whose
    answer stays small, so that the response costs little."""
    import keras

    pixels = keras.Input((ROW_VALUES,), dtype=dtype, name="pixels")
    peak = keras.ops.max(pixels, axis=1, keepdims=True)
    return keras.Model(pixels, {"peak": peak}, name=f"{dtype}_max")


def numeric_body(case: str, target_bytes: int, seed: int = 0) -> tuple[bytes, int]:
    """A predict body of about ``target_bytes`` for ``case`` (``<format>-<float|int>``) and its
    number of rows: random float32 values in [0, 1) (as ``json.dumps`` writes them, ~18 digits)
    integers in [0, 256) or one-decimal floats (``short``, written without spaces), 64 per row."""
    layout, kind = case.split("-")
    rng = np.random.default_rng(seed)
    separators = (",", ":") if kind == "short" else None

    def rows_of(count: int) -> list[Any]:
        if kind == "float":
            return rng.random((count, ROW_VALUES), dtype=np.float32).tolist()
        if kind == "short":
            return (rng.integers(0, 10, (count, ROW_VALUES)) / 10).tolist()
        return rng.integers(0, 256, (count, ROW_VALUES)).tolist()

    per_row = len(json.dumps(rows_of(100), separators=separators)) / 100
    rows = max(1, round(target_bytes / per_row))
    key = "instances" if layout == "row" else "inputs"
    return json.dumps({key: rows_of(rows)}, separators=separators).encode(), rows


def model_for(case: str) -> str:
    return MODELS[case.split("-")[1]]


# ---- the server's memory ------------------------------------------------------------------------


def _status_bytes(pid: int, key: str) -> int:
    """A ``kB`` line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak(pid: int) -> int:
    """Reset the process's peak resident size to its current one; returns that size."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_bytes(pid, "VmRSS")


def peak_rss(pid: int) -> int:
    return _status_bytes(pid, "VmHWM")


# ---- clients ------------------------------------------------------------------------------------


class Bystander(threading.Thread):
    """Sends one small request after another until stopped (at most
    :data:`BYSTANDER_MAX_REQUESTS`, for at most :data:`BYSTANDER_MAX_SECONDS`), keeping each
    request's ``(start, end)`` (``time.perf_counter()``)."""

    def __init__(self, name: str, send: Callable[[], None]) -> None:
        super().__init__(name=f"bystander-{name}", daemon=True)
        self.label = name
        self.send = send
        self.samples: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + BYSTANDER_MAX_SECONDS
        for _ in range(BYSTANDER_MAX_REQUESTS):
            if self.stop_event.is_set() or time.monotonic() > deadline:
                return
            start = time.perf_counter()
            try:
                self.send()
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                if len(self.errors) > 10:
                    return
                continue
            self.samples.append((start, time.perf_counter()))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=120)

    def latencies(self, begin: float, end: float) -> list[float]:
        """Seconds taken by the requests that overlapped ``[begin, end]``."""
        return [b - a for a, b in self.samples if b > begin and a < end]


def rest_sender(port: int, path: str, body: bytes) -> Callable[[], None]:
    """One keep-alive connection POSTing ``body``; raises unless the answer is 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def send() -> None:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        reply = connection.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"HTTP {reply.status}: {data[:200]!r}")

    return send


def grpc_sender(port: int, model: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(send, close)``: a one-row ``Predict`` of ``model``'s 64-float input over one channel."""
    import grpc
    from tensorflow_serving.apis import predict_pb2

    from tfserve_nb.protocol import tensor_proto

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["pixels"].CopyFrom(
        tensor_proto.from_ndarray(np.zeros((1, ROW_VALUES), np.float32))
    )
    payload = request.SerializeToString()
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    )
    call = channel.unary_unary(PREDICT_METHOD)

    def send() -> None:
        call(payload, timeout=120)

    return send, channel.close


# ---- one measurement ----------------------------------------------------------------------------


@dataclass
class Latencies:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latencies:
        if not seconds:
            return cls(0, math.nan, math.nan, math.nan)
        ms = np.asarray(seconds) * 1000
        return cls(len(ms), *(float(np.percentile(ms, q)) for q in (50, 99, 100)))


@dataclass
class Measurement:
    case: str
    body_bytes: int
    rows: int
    status: int
    seconds: float
    rss_before: int
    rss_peak: int
    bystanders: dict[str, Latencies] = field(default_factory=dict)
    bystander_errors: list[str] = field(default_factory=list)
    path: str = "fast"
    """Which server answered: :data:`SERVERS`."""

    @property
    def rss_growth(self) -> int:
        return self.rss_peak - self.rss_before

    @property
    def ratio(self) -> float:
        """The resident-memory growth as a multiple of the body."""
        return self.rss_growth / self.body_bytes

    @property
    def worst_p99_ms(self) -> float:
        return max(latency.p99_ms for latency in self.bystanders.values())

    def describe(self) -> str:
        clients = "; ".join(
            f"{name} p50 {lat.p50_ms:.0f} ms, p99 {lat.p99_ms:.0f} ms, max {lat.max_ms:.0f} ms "
            f"(n={lat.count})"
            for name, lat in self.bystanders.items()
        )
        return (
            f"{self.case:15s} {self.path:8s} body {self.body_bytes / 1e6:.1f} MB "
            f"({self.rows} rows), HTTP {self.status} in {self.seconds:.2f} s; "
            f"RSS +{self.rss_growth / 1e6:.0f} MB = {self.ratio:.2f}x the body; "
            f"bystanders: {clients}"
        )


def measure(
    pid: int,
    rest_port: int,
    grpc_port: int,
    case: str,
    body: bytes,
    rows: int,
) -> Measurement:
    """POST ``body`` (a ``case`` body of ``rows`` rows) once to the server ``pid`` listening on
    ``rest_port``/``grpc_port``, with a REST and a gRPC bystander predicting ``digits`` one row
    at a time; the server must serve the models of :data:`MODELS`."""
    small = json.dumps({"instances": [[0.0] * ROW_VALUES]}).encode()
    small_path = f"/v1/models/{FLOAT_MODEL}:predict"
    grpc_send, grpc_close = grpc_sender(grpc_port, FLOAT_MODEL)
    bystanders = [
        Bystander("REST", rest_sender(rest_port, small_path, small)),
        Bystander("gRPC", grpc_send),
    ]
    try:
        for bystander in bystanders:  # warm up: connections made, first calls done
            for _ in range(5):
                bystander.send()
        one_row = {"instances": [[0] * ROW_VALUES]}
        if case.startswith("columnar"):
            one_row = {"inputs": one_row["instances"]}
        warm = rest_sender(
            rest_port, f"/v1/models/{model_for(case)}:predict", json.dumps(one_row).encode()
        )
        for _ in range(3):  # the big request's model too
            warm()
        rss_before = reset_peak(pid)
        for bystander in bystanders:
            bystander.start()
        time.sleep(0.3)
        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=BIG_REQUEST_TIMEOUT)
        begin = time.perf_counter()
        try:
            connection.request(
                "POST",
                f"/v1/models/{model_for(case)}:predict",
                body,
                {"Content-Type": "application/json"},
            )
            reply = connection.getresponse()
            answer = reply.read()
        finally:
            connection.close()
        end = time.perf_counter()
        time.sleep(0.1)
        rss_peak = peak_rss(pid)
    finally:
        for bystander in bystanders:
            bystander.stop()
        grpc_close()
    if reply.status == 200:
        key = "predictions" if case.startswith("row") else "outputs"
        got = len(json.loads(answer)[key])
        if got != rows:
            raise AssertionError(f"{case}: {got} rows answered, {rows} sent")
    return Measurement(
        case,
        len(body),
        rows,
        reply.status,
        end - begin,
        rss_before,
        rss_peak,
        {b.label: Latencies.of(b.latencies(begin, end)) for b in bystanders},
        [error for b in bystanders for error in b.errors],
    )


# ---- the command --------------------------------------------------------------------------------


def export_models(root: Path) -> list[Any]:
    """Export ``digits``, ``int_max`` and ``float_max`` under ``root``; their model configs."""
    from tests.helpers import models
    from tfserve_nb import ModelConfig, export_model

    export_model(models.digits_classifier()[0], root / FLOAT_MODEL, 1)
    export_model(max_model("int32"), root / INT_MODEL, 1)
    export_model(max_model("float32"), root / SHORT_MODEL, 1)
    return [ModelConfig(name, str(root / name)) for name in MODELS.values()]


@contextlib.contextmanager
def server(config: Path, workdir: Path, label: str, path: str = "fast") -> Iterator[Any]:
    """The server of ``path`` (:data:`SERVERS`) serving ``config``, stopped on exit."""
    from bench.setups import start_module

    process = start_module(
        SERVERS[path], [f"--model_config_file={config}", "--ephemeral_ports"], workdir, label
    )
    try:
        yield process
    finally:
        process.stop()


def main() -> None:
    from tfserve_nb.config import render_config_file

    parser = argparse.ArgumentParser(
        prog="python -m bench.resources",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mb", type=float, default=50.0, help="body size in MB (10^6 bytes)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument(
        "--paths", default="regular,fast", help="comma-separated: regular (before), fast"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="tfserve-nb-resources-") as tmp:
        workdir = Path(tmp)
        print("exporting the models", flush=True)
        config = workdir / "models.config"
        config.write_text(render_config_file(export_models(workdir / "models")))
        for case in args.cases.split(","):
            body, rows = numeric_body(case, int(args.mb * 1e6))
            for path in args.paths.split(","):
                with server(config, workdir, f"{case}-{path}", path) as process:
                    result = measure(
                        process.popen.pid,
                        process.ports["rest_port"],
                        process.ports["grpc_port"],
                        case,
                        body,
                        rows,
                    )
                result.path = path
                print(result.describe(), flush=True)
                for error in result.bystander_errors[:3]:
                    print(f"    bystander error: {error}", flush=True)
                results.append(result)
            del body
    if args.json:
        args.json.write_text(
            json.dumps(
                [{**asdict(r), "ratio": r.ratio, "rss_growth": r.rss_growth} for r in results],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
