"""``python -m bench.profile [--model digits] [--clients 64] [--seconds 6] [--batching TEXT]
[--shared_batching TEXT] [--py-spy]``: where the CPU goes at high concurrency, to explain the
throughput the benchmark measures.

Two cores serve both the closed-loop clients and the server, so a setup's requests/s is bounded
by the CPU one request costs all processes together: ``cores / (server + client CPU per
request)``. For the gRPC setups of the benchmark (the transport floor, the embedded server,
the embedded server with batching, its parameters from :mod:`bench.models` or the flags) this
measures, one after the other on the same model and with both load generators
(:func:`bench.load_cells.measure`), the requests/s, the CPU seconds the server process and the
clients spent per request, the mean batch, and the machine's busy share. With ``--py-spy``
(``pip install py-spy``) it also samples the unbatched server's interpreter-lock holder and
sorts the samples into the parts of a request (:data:`PARTS`). Writes a markdown report to stdout.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench import load_cells
from bench.load_cells import GENERATORS, LoadGenerator
from bench.loadgen import Target, Window
from bench.models import MODELS, SHARED_BATCHING
from bench.run import Plan, prepare
from bench.setups import BATCHING_GRPC, EMBEDDED_GRPC, TRANSPORT_FLOOR_GRPC, servers
from tfserve_nb.servables.saved_model import PER_MODEL_BATCHING_FILE

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


GRPC_SETUPS = (TRANSPORT_FLOOR_GRPC, EMBEDDED_GRPC, BATCHING_GRPC)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--model", default="digits", choices=sorted(MODELS))
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument(
        "--batching", help="the model's BatchingParameters, as text (default: bench.models)"
    )
    parser.add_argument(
        "--shared_batching", default=SHARED_BATCHING, help="the batch threads' parameters"
    )
    parser.add_argument("--py-spy", action="store_true", help="sample the unbatched server")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tfserve-nb-profile-"))
    plan = Plan("profile", (args.model,), (args.clients,), 1.0, args.seconds, 1, 1.0, 0, 1e9)
    spec = MODELS[args.model]
    if args.batching:
        spec = dataclasses.replace(spec, batching=args.batching)
    load = LoadGenerator()
    rows = []
    try:
        prepare(plan, workdir, lambda _: None)
        (workdir / "models" / spec.name / "1" / PER_MODEL_BATCHING_FILE).write_text(spec.batching)
        with servers(plan.models, workdir, False, args.shared_batching) as setups:
            chosen = [s for s in setups if s.name in GRPC_SETUPS]
            for setup in chosen:
                for generator in GENERATORS:
                    psutil.cpu_percent()
                    measured = load_cells.measure(
                        load, setup, spec, args.clients, generator, 1.0, args.seconds, workdir
                    )
                    rows.append((setup.name, generator, measured, psutil.cpu_percent() / 100))
            parts = None
            if args.py_spy:
                (embedded,) = (s for s in chosen if s.name == EMBEDDED_GRPC)
                server_pid = embedded.pids(spec)[0]
                parts = py_spy_parts(
                    server_pid, embedded.target(spec), load, args.clients, args.seconds
                )
    finally:
        load.close()
        shutil.rmtree(workdir, ignore_errors=True)
    cores = os.cpu_count() or 1
    print(f"### CPU per request, {args.model}, {args.clients} clients, {cores} cores\n")
    shared = " ".join(args.shared_batching.split())
    print(f"Batching: `{' '.join(spec.batching.split())}`, `{shared}`\n")
    print("| setup | load | req/s | p50 ms | p99 ms | server CPU ms/req | client CPU ms/req "
          "| batch | CPU busy | ceiling req/s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, generator, m, busy in rows:
        s = m.summary
        ceiling = cores * 1000.0 / (m.server_cpu_ms + m.client_cpu_ms)
        print(
            f"| {name} | {generator} | {s.rate:.1f} | {s.p50_ms:.2f} | {s.p99_ms:.2f} | "
            f"{m.server_cpu_ms:.3f} | {m.client_cpu_ms:.3f} | {m.batch_size:.1f} | {busy:.0%} | "
            f"{ceiling:.0f} |"
        )
    if parts is not None:
        print(f"\n### What holds the unbatched server's interpreter lock ({args.model}, py-spy)\n")
        print("| part | share |\n|---|---|")
        for part, share in parts.items():
            print(f"| {part} | {share:.0%} |")


if __name__ == "__main__":
    main()
