"""``python -m bench.profile [--model digits] [--clients 64] [--seconds 6] [--py-spy]``: where
the CPU goes at high concurrency, to explain the throughput the benchmark measures.

Two cores serve both the closed-loop clients and the server, so a setup's requests/s is bounded
by the CPU one request costs all processes together: ``cores / (server + client CPU per
request)``. For the gRPC setups of the benchmark (the transport floor, the embedded server,
the embedded server with batching) this measures, one after the other on the same model, the
requests/s and the CPU seconds the server process and the client processes spent per request
(``psutil``), and the machine's busy share. With ``--py-spy`` (``pip install py-spy``) it also
samples the unbatched server's interpreter-lock holder and sorts the samples into the parts
of a request (:data:`PARTS`). Writes a markdown report to stdout.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import Target, Window
from bench.run import BATCHING_PARAMETERS, MODELS, LoadGenerator, grpc_target, start_module

PARTS = (
    ("model call (TensorFlow)", ("tensorflow/", "keras/")),
    ("numpy <-> TensorProto", ("tfserve_nb/protocol/tensor_proto.py",)),
    ("batching (scheduler, merge, split)", ("tfserve_nb/batching/",)),
    ("server core (lookup, checks, metrics)", ("tfserve_nb/",)),
    ("gRPC and protobuf", ("grpc/", "google/protobuf/")),
    ("threads and locks", ("threading.py", "concurrent/futures/", "queue.py")),
)
"""How a py-spy sample is attributed: to the part of the innermost frame whose file path holds
one of that part's markers (checked in this order); a sample with no such frame is "other"."""
OTHER = "other"


def part_of(stack: str) -> str:
    """The part of :data:`PARTS` one sampled stack (py-spy's ``raw`` format: frames
    ``function (file:line)`` from outermost to innermost, ``;``-separated) is attributed to."""
    for frame in reversed(stack.split(";")):
        path = frame.rpartition("(")[2]
        for part, markers in PARTS:
            if any(marker in path for marker in markers):
                return part
    return OTHER


@dataclass(frozen=True)
class CpuCell:
    setup: str
    rate: float
    server_ms: float
    client_ms: float
    busy: float

    @property
    def ceiling(self) -> float:
        """Requests/s this machine's cores could give at this CPU cost per request."""
        return (os.cpu_count() or 1) * 1000.0 / (self.server_ms + self.client_ms)


def _cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _client_pids() -> list[int]:
    """The load generator's worker processes (this process's spawned children)."""
    import psutil

    return [
        child.pid
        for child in psutil.Process().children()
        if "multiprocessing" in " ".join(child.cmdline())
    ]


def measure_cpu(
    setup: str, target: Target, server_pid: int, load: LoadGenerator, clients: int, seconds: float
) -> CpuCell:
    """Requests/s and CPU per request of the server and the clients during ``seconds``."""
    import psutil

    clients_pids = _client_pids()
    window = Window(time.time() + 0.2, 1.0, seconds)
    result = load.start(target, clients, window)
    time.sleep(max(0.0, window.begin - time.time()))
    server_before, clients_before = _cpu_seconds([server_pid]), _cpu_seconds(clients_pids)
    psutil.cpu_percent()
    time.sleep(seconds)
    busy = psutil.cpu_percent() / 100.0
    server_cpu = _cpu_seconds([server_pid]) - server_before
    client_cpu = _cpu_seconds(clients_pids) - clients_before
    tally = result()
    requests = len(tally.latencies)
    if not requests or tally.errors:
        raise RuntimeError(f"{setup}: {requests} answered, {tally.errors} failed")
    return CpuCell(
        setup, requests / seconds, 1e3 * server_cpu / requests, 1e3 * client_cpu / requests, busy
    )


def py_spy_parts(
    server_pid: int, target: Target, load: LoadGenerator, clients: int, seconds: float
) -> dict[str, float]:
    """Share of the samples in each of :data:`PARTS`, taken under load from the thread holding
    the server's interpreter lock (``--gil``): what its one core of Python is spent on."""
    beside = Path(sys.executable).with_name("py-spy")
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--py-spy needs py-spy on PATH (pip install py-spy)")
    out = Path(tempfile.mkdtemp(prefix="tfserve-nb-profile-")) / "stacks.txt"
    window = Window(time.time() + 0.2, 1.0, seconds + 1.0)
    result = load.start(target, clients, window)
    time.sleep(max(0.0, window.begin - time.time()))
    subprocess.run(
        [py_spy, "record", "--pid", str(server_pid), "--duration", str(int(seconds)),
         "--rate", "250", "--format", "raw", "--gil", "--nonblocking", "--output", str(out)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    result()
    counts: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        counts[part_of(stack)] += int(count)
    total = sum(counts.values()) or 1
    return {part: counts[part] / total for part in (*(p for p, _ in PARTS), OTHER)}


@contextlib.contextmanager
def grpc_servers(model: str, workdir: Path) -> Iterator[dict[str, tuple[Target, int]]]:
    """The floor, the embedded server and the batching server for ``model``: setup →
    (load target, server pid)."""
    from tfserve_nb import ModelConfig, export_model, serve
    from tfserve_nb.config import render_config_file

    spec = MODELS[model]
    export_model(spec.build(), workdir / "models" / model, 1)
    configs = [ModelConfig(model, str(workdir / "models" / model))]
    (workdir / "models.config").write_text(render_config_file(configs))
    (workdir / "batching.txt").write_text(BATCHING_PARAMETERS)
    batching = ["--enable_batching", f"--batching_parameters_file={workdir / 'batching.txt'}"]
    stops: list[Callable[[], None]] = []
    try:
        floor = start_module(
            "bench.floor_server",
            [f"--model_config_file={workdir / 'models.config'}", "--ephemeral_ports"],
            workdir,
            "floor",
        )
        stops.append(floor.stop)
        embedded = serve(configs, "embedded")
        stops.append(embedded.stop)
        batched = serve(configs, "embedded", extra_args=batching)
        stops.append(batched.stop)

        def port(server: Any) -> int:
            return int(server.grpc_address.rsplit(":", 1)[1])

        def pid(server: Any) -> int:
            from tfserve_nb.backends.embedded import EmbeddedProcess

            assert isinstance(server.process, EmbeddedProcess)
            return server.process.pid

        yield {
            "transport floor, gRPC": (grpc_target(spec, floor.ports["grpc_port"]), floor.popen.pid),
            "embedded, gRPC": (grpc_target(spec, port(embedded)), pid(embedded)),
            "embedded, gRPC, batching": (grpc_target(spec, port(batched)), pid(batched)),
        }
    finally:
        for stop in reversed(stops):
            stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--model", default="digits", choices=sorted(MODELS))
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--py-spy", action="store_true", help="sample the unbatched server")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tfserve-nb-profile-"))
    load = LoadGenerator()
    try:
        with grpc_servers(args.model, workdir) as setups:
            cells = [
                measure_cpu(setup, target, pid, load, args.clients, args.seconds)
                for setup, (target, pid) in setups.items()
            ]
            parts = None
            if args.py_spy:
                target, pid = setups["embedded, gRPC"]
                parts = py_spy_parts(pid, target, load, args.clients, args.seconds)
    finally:
        load.close()
        shutil.rmtree(workdir, ignore_errors=True)
    cores = os.cpu_count() or 1
    print(f"### CPU per request, {args.model}, {args.clients} clients, {cores} cores\n")
    print("| setup | req/s | server CPU ms/req | client CPU ms/req | CPU busy | ceiling req/s |")
    print("|---|---|---|---|---|---|")
    for c in cells:
        print(
            f"| {c.setup} | {c.rate:.0f} | {c.server_ms:.3f} | {c.client_ms:.3f} | "
            f"{c.busy:.0%} | {c.ceiling:.0f} |"
        )
    if parts is not None:
        print(f"\n### What holds the unbatched server's interpreter lock ({args.model}, py-spy)\n")
        print("| part | share |\n|---|---|")
        for part, share in parts.items():
            print(f"| {part} | {share:.0%} |")


if __name__ == "__main__":
    main()
