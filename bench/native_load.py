"""Native load generators: ``h2load`` for gRPC, ``wrk`` for REST, closed-loop like the clients of
:mod:`bench.loadgen` but costing the machine a fraction of their CPU.

Both tools are Debian packages (``nghttp2-client``, ``wrk``) that ``scripts/install-system-deps``
installs. Each function loads a :class:`~bench.loadgen.Target` for ``warmup`` seconds (a run of
the tool of its own, not tallied), then for ``duration`` seconds, and returns a
:class:`NativeRun`: the measured run's :class:`~bench.stats.Summary` and the CPU the tool spent
on it. A tool that is missing, fails, or outlives its run by :data:`GRACE_S` raises
``RuntimeError``. Files (request bodies, the tools' output, h2load's request log) go in
``workdir``.

A server exposes the OK count :func:`h2load_grpc` checks against
(:func:`bench.server_metrics.ok_counter`) when it is started with ``--monitoring_config_file``
holding :data:`bench.server_metrics.PROMETHEUS_CONFIG` (``bench.floor_server`` takes the model
server's flags, so it does too).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import grpc

from bench.loadgen import CLIENT_PROCESSES, PREDICT_METHOD, Target
from bench.stats import Summary, summarize
from tfserve_nb.backends.child_process import last_lines

GRACE_S = 30.0
"""How long a tool may run past the length of its run before it is killed (and the call fails)."""

TAIL_LINES = 20
"""How much of a failed tool's output an error shows."""

SAMPLE_INTERVAL_S = 0.25
SAMPLE_TIMEOUT_S = 10.0
"""The gRPC status sampler of :func:`h2load_grpc`: one call per interval, each this long at most."""

WRK_SCRIPT = Path(__file__).with_name("wrk_post.lua")
"""wrk's script: POSTs a body file and prints one ``native_load: {json}`` line at the end."""


@dataclass(frozen=True)
class NativeRun:
    """A measured run: its summary, and ``client_cpu_s``, the CPU seconds (user + system) the
    tool's process used for it (``wait4`` of that one child: the warm-up run, and the gRPC status
    sampler of :func:`h2load_grpc`, which runs in the calling process, are not in it)."""

    summary: Summary
    client_cpu_s: float


def h2load_grpc(
    target: Target,
    clients: int,
    warmup: float,
    duration: float,
    workdir: Path,
    ok_count: Callable[[], float] | None = None,
) -> NativeRun:
    """``clients`` closed-loop gRPC ``Predict`` calls of ``target.payload`` at a time, from
    ``h2load`` over h2c (one thread, duration mode).

    The calls are laid out as :mod:`bench.loadgen`'s are: :data:`~bench.loadgen.CLIENT_PROCESSES`
    HTTP/2 connections (fewer if there are fewer clients), the clients spread over them as
    concurrent streams: ``-c min(clients, CLIENT_PROCESSES) -m ceil(clients / c)``, so ``c x m``
    streams, one more than ``clients`` when ``clients`` is odd and above 1. The warm-up is an
    h2load run of its own, not ``--warm-up-time``: the server would count that one's calls in
    the measured run's OK count, and the check below would tolerate as many failures.

    What is verified, and what is not:

    - every call h2load ends in the measured period (its ``--log-file``) with an HTTP status
      other than 2xx, or not at all (stream reset, timeout, connection error), is an error, and
      if h2load starts no call at all, that is one; p50 and p99 are over the HTTP 2xx answers
      (nghttp2 fails a stream whose trailers break HTTP/2's field rules, e.g. a ``grpc-message``
      ending in a space, as the server's message for a missing input does);
    - h2load cannot see the ``grpc-status`` trailer (a call failing INVALID_ARGUMENT is HTTP
      200), so with ``ok_count`` (e.g. :func:`bench.server_metrics.ok_counter`) the server's
      count of OK calls is read before and after the measured run: if it grew by less than
      h2load's 2xx answers (plus the sampler's OK calls, below), the difference is errors and
      no longer counted as successful. The check is one-sided: calls in flight when either
      h2load run stopped may still be counted OK by the server, so up to ``2 c m`` failures
      can hide behind them; a payload that always fails is always caught;
    - while h2load runs, one unary call of the same payload through Python's grpc every
      :data:`SAMPLE_INTERVAL_S` (at most ``duration / SAMPLE_INTERVAL_S + 1``): each ending with
      a status other than OK is an error, with its code and details;
    - the answers' bodies are not read (:func:`bench.setups.check_answers` checks each
      server's answers once).

    ``first_error`` joins what each check found first, with ``"; "``.
    """
    h2load = _require("h2load", "nghttp2-client")
    connections = min(clients, CLIENT_PROCESSES)
    streams = math.ceil(clients / connections)
    body = workdir / "h2load-request.bin"
    body.write_bytes(b"\0" + struct.pack(">I", len(target.payload)) + target.payload)
    url = f"http://{target.host}:{target.port}{PREDICT_METHOD}"

    def command(seconds: float, *extra: str) -> list[str]:
        millis = max(1, round(seconds * 1e3))
        return [
            h2load, "-t1", f"-c{connections}", f"-m{streams}", f"-D{millis}ms", f"-d{body}",
            "-Hcontent-type: application/grpc", "-Hte: trailers", *extra, url,
        ]  # fmt: skip

    if warmup > 0:
        _run_tool(command(warmup), warmup, workdir / "h2load-warmup.out")
    log = workdir / "h2load-requests.tsv"
    log.unlink(missing_ok=True)  # h2load appends to it
    before = ok_count() if ok_count is not None else 0.0
    with _Sampler(target, math.floor(duration / SAMPLE_INTERVAL_S) + 1) as sampler:
        run = _run_tool(command(duration, f"--log-file={log}"), duration, workdir / "h2load.out")
    started = re.search(r"^requests: \d+ total, (\d+) started", run.output, re.MULTILINE)
    if started is None:
        tail = last_lines(run.output, TAIL_LINES)
        raise RuntimeError(f"h2load printed no request counts:\n{tail}")

    latencies: list[float] = []
    errors = 0
    found: list[str] = []
    rows = (line.split("\t") for line in log.read_text().splitlines())
    for _start, status, micros, *_ in rows:
        if 200 <= int(status) <= 299:
            latencies.append(int(micros) / 1e6)
            continue
        errors += 1
        if errors == 1:
            found.append(
                f"HTTP {status} (h2load)"
                if status != "-1"
                else "a stream h2load saw fail (reset, timeout or connection error)"
            )
    if started.group(1) == "0":
        errors += 1
        found.append(f"h2load started no call on {url}")
    hidden = 0
    if ok_count is not None:
        served = ok_count() - before - sampler.ok
        hidden = max(0, len(latencies) - round(served))
        if hidden:
            found.append(
                f"h2load saw {len(latencies)} HTTP 2xx answers, the server counted {served:g} OK: "
                f"{hidden} ended in a gRPC error status (a trailer h2load cannot read)"
            )
    if sampler.errors:
        found.append(f"sampled call: {sampler.first_error}")
    summary = summarize(latencies, duration, errors + hidden + sampler.errors, "; ".join(found))
    return NativeRun(replace(summary, count=summary.count - hidden), run.cpu_s)


def wrk_rest(
    target: Target, clients: int, warmup: float, duration: float, workdir: Path
) -> NativeRun:
    """``clients`` closed-loop HTTP/1.1 keep-alive connections POSTing ``target.payload``
    (``Content-Type: application/json``) to ``target.path``, from ``wrk`` (one thread,
    :data:`WRK_SCRIPT`).

    wrk takes whole seconds for its duration, so each run is given one more and ended by SIGINT
    at ``warmup`` (then ``duration``) seconds; the summary's ``seconds`` is the time wrk itself
    measured. Verified: every answer's HTTP status (any but 2xx is an error; the first one's
    status and body start are the ``first_error``), and wrk's connect, read, write and timeout
    (60 s) errors count too. p50 and p99 are wrk's, over every answer, 2xx or not. Bodies are
    not read otherwise.
    """
    wrk = _require("wrk", "wrk")
    body = workdir / "wrk-body.json"
    body.write_bytes(target.payload)
    url = f"http://{target.host}:{target.port}{target.path}"

    def run(seconds: float, label: str) -> _Exit:
        whole = math.ceil(seconds) + 1
        argv = [
            wrk, "-t1", f"-c{clients}", f"-d{whole}s", "--timeout", "60s", "--latency",
            "-s", str(WRK_SCRIPT), url, "--", str(body),
        ]  # fmt: skip
        return _run_tool(argv, whole, workdir / f"{label}.out", interrupt_after=seconds)

    if warmup > 0:
        run(warmup, "wrk-warmup")
    measured = run(duration, "wrk")
    line = re.search(r"^native_load: (\{.*\})$", measured.output, re.MULTILINE)
    if line is None:
        tail = last_lines(measured.output, TAIL_LINES)
        raise RuntimeError(f"wrk printed no native_load line:\n{tail}")
    seen = json.loads(line.group(1))
    socket_errors = {k: seen[k] for k in ("connect", "read", "write", "timeout") if seen[k]}
    first_error = seen["first_error"] or (
        f"wrk socket errors: {socket_errors}" if socket_errors else ""
    )
    answered = seen["responses"] > 0
    summary = Summary(
        seen["responses"] - seen["non_2xx"],
        seen["duration_us"] / 1e6,
        seen["p50_us"] / 1e3 if answered else math.nan,
        seen["p99_us"] / 1e3 if answered else math.nan,
        seen["non_2xx"] + sum(socket_errors.values()),
        first_error,
    )
    return NativeRun(summary, measured.cpu_s)


# ---- the tools' processes -----------------------------------------------------------------------


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(
            f"{tool} is not installed: it comes with Debian's {package} package, which "
            "scripts/install-system-deps installs (run it as root)"
        )
    return path


@dataclass(frozen=True)
class _Exit:
    output: str
    cpu_s: float


def _run_tool(
    argv: list[str], seconds: float, output: Path, interrupt_after: float | None = None
) -> _Exit:
    """Run ``argv`` (stdout and stderr to ``output``) to its end: SIGINT at ``interrupt_after``
    seconds if given, killed past ``seconds + GRACE_S``. Raises ``RuntimeError`` if it was
    killed or exited with a non-zero code; returns its output and CPU seconds (its own
    ``wait4`` resource usage, not other children's)."""
    with open(output, "wb") as out:
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    pidfd = os.pidfd_open(popen.pid)
    finished = False
    try:
        deadline = time.monotonic() + seconds + GRACE_S
        if interrupt_after is not None and not _exits_within(pidfd, interrupt_after):
            _signal(pidfd, signal.SIGINT)
        finished = _exits_within(pidfd, deadline - time.monotonic())
    finally:
        if not finished:
            _signal(pidfd, signal.SIGKILL)
        _, status, usage = os.wait4(popen.pid, 0)
        os.close(pidfd)
        popen.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    text = output.read_text(errors="replace")
    if not finished:
        tail = last_lines(text, TAIL_LINES)
        raise RuntimeError(f"{argv[0]} ran {seconds + GRACE_S:g} s, killed:\n{tail}")
    if popen.returncode != 0:
        tail = last_lines(text, TAIL_LINES)
        raise RuntimeError(f"{' '.join(argv)} exited with {popen.returncode}:\n{tail}")
    return _Exit(text, usage.ru_utime + usage.ru_stime)


def _exits_within(pidfd: int, seconds: float) -> bool:
    return bool(select.select([pidfd], [], [], max(0.0, seconds))[0])


def _signal(pidfd: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited just now
        signal.pidfd_send_signal(pidfd, number)


class _Sampler:
    """Inside its ``with`` block, a thread calls ``Predict`` with the target's payload through
    Python's grpc every :data:`SAMPLE_INTERVAL_S`, at most ``max_calls`` times, and counts the
    calls answered OK (``ok``) and the others (``errors``, ``first_error``: code and details)."""

    def __init__(self, target: Target, max_calls: int) -> None:
        self.ok = self.errors = 0
        self.first_error = ""
        self._target = target
        self._max_calls = max_calls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grpc-status-sampler")

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with grpc.insecure_channel(f"{self._target.host}:{self._target.port}") as channel:
            predict = channel.unary_unary(PREDICT_METHOD)  # bytes in, bytes out
            for _ in range(self._max_calls):
                try:
                    predict(self._target.payload, timeout=SAMPLE_TIMEOUT_S)
                    self.ok += 1
                except grpc.RpcError as exc:
                    self.errors += 1
                    self.first_error = self.first_error or (
                        f"{exc.code().name}: {exc.details()}"
                        if isinstance(exc, grpc.Call)
                        else repr(exc)
                    )
                if self._stop.wait(SAMPLE_INTERVAL_S):
                    return
