"""Batch-1 latency of this tree against an earlier revision, side by side, on one machine.

``python -m bench.revisions --baseline REV [--rounds 3] [--seconds 3] [--out FILE]`` checks REV
out into a temporary git worktree and, for the digits model of ``tests/helpers/models.py``,
measures in each tree, the trees taking turns for ``--rounds`` rounds (so load from elsewhere
falls on both alike):

- ``in-process``: the server's own call of the serving signature at batch 1, as
  :mod:`bench.inprocess` measures it in a bare process (``prepared``);
- ``gRPC, 1 client``: the embedded server (``python -m tfserve_nb.model_server`` run from that
  tree) answering one closed-loop client (:mod:`bench.loadgen`, in a worker process) with
  batch-1 ``Predict`` requests.

It prints, and writes as Markdown to ``--out`` (default ``bench/results/REVISIONS.md``), the
median over rounds of each round's p50, per tree. The worktree and every server are removed or
stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bench.loadgen import Target, Window, run_clients, warm_up
from bench.report import machine_facts
from bench.stats import summarize
from tfserve_nb.processes import stop_process
from tfserve_nb.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out in a temporary worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tfserve-nb-bench-") as parent:
        path = Path(parent) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), revision],
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                check=False,
                capture_output=True,
            )


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _in_process_p50(tree: Path, saved_model: Path, seconds: float) -> float:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.inprocess"),
            *(f"--saved_model={saved_model}", "--batches=1", f"--seconds={seconds}"),
        ],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    calls = json.loads(done.stdout.strip().splitlines()[-1])["calls"]
    (prepared,) = [c for c in calls if c["call"] == "prepared"]
    return float(prepared["summary"]["p50_ms"])


@contextlib.contextmanager
def _server(tree: Path, base_path: Path, work: Path) -> Iterator[int]:
    """The embedded server of ``tree`` serving ``digits`` from ``base_path``; its gRPC port."""
    port_file = work / f"ports-{time.monotonic_ns()}.json"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "tfserve_nb.model_server", "--model_name=digits"),
            *(f"--model_base_path={base_path}", "--ephemeral_ports", f"--port_file={port_file}"),
        ],
        cwd=tree,
        env=_env(tree),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def not_started() -> RuntimeError:
        return RuntimeError(f"the server of {tree} did not start")

    def reported() -> bool:
        if port_file.exists():
            return True
        if process.poll() is not None:
            raise not_started()
        return False

    try:
        wait_until(reported, 120, timed_out=not_started, interval=0.1)
        yield int(json.loads(port_file.read_text())["grpc_port"])
    finally:
        stop_process(process, 30)


def _grpc_p50(pool: multiprocessing.pool.Pool, port: int, payload: bytes, seconds: float) -> float:
    window = Window(time.time() + 1.0, 0.5, seconds)
    tally = pool.apply(run_clients, (Target("grpc", "127.0.0.1", port, payload), 1, window))
    if tally.errors:
        raise RuntimeError(f"gRPC requests failed: {tally.first_error}")
    return summarize(tally.latencies, seconds).p50_ms


def _predict_payload(pixels: np.ndarray) -> bytes:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(pixels))
    return request.SerializeToString()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.revisions", description=__doc__)
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "REVISIONS.md")
    args = parser.parse_args(argv)

    from tests.helpers import models

    facts = machine_facts()
    results: dict[str, dict[str, list[float]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tfserve-nb-bench-") as work_dir,
        _worktree(args.baseline) as baseline,
        multiprocessing.get_context("spawn").Pool(1) as pool,
    ):
        work = Path(work_dir)
        model, _ = models.digits_classifier()
        model.export(str(work / "digits" / "1"), verbose=False)
        payload = _predict_payload(models.digits_data().x_test[:1])
        pool.apply(warm_up, (0.1,))
        trees = {f"baseline {args.baseline}": baseline, "this tree": ROOT}
        for _ in range(args.rounds):
            for label, tree in trees.items():
                row = results.setdefault(label, {"in-process": [], "gRPC, 1 client": []})
                row["in-process"].append(_in_process_p50(tree, work / "digits" / "1", args.seconds))
                with _server(tree, work / "digits", work) as port:
                    _grpc_p50(pool, port, payload, 1.0)  # warm the server up
                    row["gRPC, 1 client"].append(_grpc_p50(pool, port, payload, args.seconds))
    lines = [
        f"# Batch-1 p50 (ms): this tree against {args.baseline}",
        "",
        f"{facts['date']} · {facts['cpu']}, {facts['cores']} cores · CPU busy before the run: "
        f"{facts['busy_percent_before']:.0f} % · median over {args.rounds} rounds of each "
        f"round's p50 ({args.seconds:g} s each), the trees taking turns; digits model, batch 1.",
        "",
        "| tree | in-process call | gRPC, 1 client |",
        "|---|---|---|",
    ]
    for label, row in results.items():
        cells = [f"{statistics.median(row[k]):.3f}" for k in ("in-process", "gRPC, 1 client")]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
