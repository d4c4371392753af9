"""A standby child for the embedded backend: Python with TensorFlow and the model server's modules
already imported, waiting for the server's flags.

Most of a cold ``serve()`` is the child importing TensorFlow (seconds). The notebook exports a
model first, so ``tfserve_nb.export_model`` starts a standby child (:func:`prepare`) that imports
everything while the export runs; the next embedded start hands it its flags (:func:`run_server`)
instead of starting a cold ``python -m tfserve_nb.model_server``. The child then runs the server
exactly as that command would (:func:`tfserve_nb.model_server.main.run` with the same flags),
with its log in the same kind of work folder.

Contracts:

- **At most one** standby exists per process. It serves one start; the next ``export_model``
  prepares another, but **not while an embedded server this process started runs**
  (:func:`note_server`): exporting a new version to a model being served needs no second
  server, and a standby would cost a TensorFlow import and its memory for nothing.
- **It never outlives its owner**: it is started with ``--parent_pid`` of the owner and reads
  its flags from a pipe on its standard input, so the owner's death (even by ``kill -9``, even
  with forked children holding the pipe) or the pipe closing ends it at once, through the
  server's own ties (:class:`~tfserve_nb.model_server.shutdown.Shutdown`); :func:`close` and
  the owner's interpreter exit stop it. Left unused for :data:`IDLE_SECONDS` it exits by itself.
- **Only when it fits**: a start uses it only if it was prepared by this process, for the same
  interpreter, environment and working directory, is alive and not about to give up waiting;
  otherwise it is stopped and the start is cold. One that dies before or while its flags are
  handed over is the same as none.
- **Opt-out**: ``TFSERVE_NB_STANDBY=0`` starts none and uses none.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..waiting import wait_until
from .child_process import ChildProcess
from .workdir import make_work_dir

__all__ = [
    "IDLE_SECONDS",
    "READY_LINE",
    "STANDBY_ENV",
    "close",
    "enabled",
    "main",
    "note_server",
    "prepare",
    "run_server",
    "wait_ready",
    "waiting_pid",
]

STANDBY_ENV = "TFSERVE_NB_STANDBY"
"""Set to ``0`` to start no standby child and use none (every embedded start is cold)."""

IDLE_SECONDS = 600.0
"""A standby child not handed flags this long after it started exits (status 1)."""

_HANDOVER_MARGIN_SECONDS = 30.0
"""A standby this close to :data:`IDLE_SECONDS` is not used (it might exit while taking over)."""

_MODULE = "tfserve_nb.backends.standby"

READY_LINE = "standby: the server's modules are imported, waiting for its flags"
"""What the child prints once it waits for its flags."""


def enabled() -> bool:
    """Whether standby children are used: unless :data:`STANDBY_ENV` is ``0``."""
    return os.environ.get(STANDBY_ENV, "1") != "0"


@dataclass
class _Standby:
    """The standby child and what it was started for."""

    child: ChildProcess
    python: str
    env: dict[str, str]
    cwd: str
    owner_pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.monotonic)

    def usable_for(self, python: str, env: Mapping[str, str]) -> bool:
        return (
            self.child.alive()
            and (self.python, self.env, self.cwd) == (python, dict(env), os.getcwd())
            and time.monotonic() - self.started < IDLE_SECONDS - _HANDOVER_MARGIN_SECONDS
        )


_lock = threading.Lock()
_standby: _Standby | None = None
_servers: list[tuple[int, ChildProcess]] = []
"""Embedded servers started by a process (its pid) so far, running or not (see
:func:`note_server`)."""


def note_server(child: ChildProcess) -> None:
    """Record an embedded server this process started: while it runs, :func:`prepare` starts
    no standby."""
    with _lock:
        _servers[:] = [(pid, c) for pid, c in _servers if c.returncode is None]
        _servers.append((os.getpid(), child))


def _serving() -> bool:
    """Whether an embedded server this process started still runs."""
    return any(pid == os.getpid() and c.returncode is None for pid, c in _servers)


def _current() -> _Standby | None:
    """The registry's standby, if this process started it (a forked copy of the registry names
    its parent's child: not ours to use or stop)."""
    standby = _standby
    return standby if standby is not None and standby.owner_pid == os.getpid() else None


def _take() -> _Standby | None:
    """Remove the standby from the registry; return it if it is ours (:func:`_current`). Call
    with ``_lock`` held."""
    global _standby
    standby, _standby = _current(), None
    return standby


def prepare(python: str, env: Mapping[str, str]) -> None:
    """Start a standby child running ``python`` with ``env`` (in the current directory), unless
    standbys are off (:func:`enabled`), an embedded server this process started runs
    (:func:`note_server`), or one usable for the same already waits; one that is not usable is
    stopped first. A child that cannot be started is no error: starts stay cold."""
    global _standby
    if not enabled():
        return
    with _lock:
        if _serving():
            return
        current = _take()
        if current is not None and current.usable_for(python, env):
            _standby = current
            return
        if current is not None:
            current.child.stop(grace=0)
        command = [python, "-m", _MODULE, f"--parent_pid={os.getpid()}"]
        try:
            child = ChildProcess.start(
                command, make_work_dir(), env=env, stdin_pipe=True, new_session=True
            )
        except OSError:
            return
        _standby = _Standby(child, python, dict(env), os.getcwd())


def run_server(
    python: str, env: Mapping[str, str], flags_for: Callable[[Path], Sequence[str]]
) -> ChildProcess | None:
    """Run the model server in the standby child, if one is usable for ``python`` and ``env``:
    with the flags ``flags_for(workdir)`` returns (``workdir`` is the child's work folder, for
    the files the flags name). Returns the child, now the server, owned by the caller; ``None``
    when no standby fits or it died (a standby that does not fit is stopped)."""
    with _lock:
        standby = _take()
    if standby is None:
        return None
    child = standby.child
    if not (enabled() and standby.usable_for(python, env)):
        child.stop(grace=0)
        return None
    stdin = child.popen.stdin
    assert stdin is not None  # started with stdin_pipe
    try:
        flags = list(flags_for(child.workdir))
    except BaseException:
        child.stop(grace=0)
        raise
    try:
        stdin.write(json.dumps(flags).encode() + b"\n")
        stdin.flush()
    except OSError:  # it died: the pipe is broken
        child.stop(grace=0)
        return None
    return child


def wait_ready(timeout: float) -> bool:
    """Wait until the waiting standby child has imported the server and waits for its flags;
    ``False`` if there is none, it exited or ``timeout`` seconds passed first."""
    with _lock:
        standby = _current()
    if standby is None:
        return False
    child = standby.child

    def outcome() -> str | None:
        if READY_LINE in child.logs():
            return "ready"
        return None if child.alive() else "exited"

    try:
        return wait_until(outcome, timeout, timed_out=TimeoutError, interval=0.02) == "ready"
    except TimeoutError:
        return False


def waiting_pid() -> int | None:
    """The process id of the standby child waiting for flags, ``None`` if there is none."""
    with _lock:
        standby = _current()
    return None if standby is None or not standby.child.alive() else standby.child.pid


def close() -> None:
    """Stop the waiting standby child, if any (idempotent)."""
    with _lock:
        standby = _take()
    if standby is not None:
        standby.child.stop(grace=0)


# ---- the child ---------------------------------------------------------------------------------


def _read_line(fd: int) -> bytes | None:
    """Bytes read from ``fd`` up to the first newline, ``None`` at end of file before one.
    (Unbuffered reads: what follows the line stays for the server's stdin watch.)"""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            return None
        line += chunk
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tfserve_nb.backends.standby --parent_pid=PID``: import the server, read its
    flags (a JSON list, one line on standard input), then run it with them. Exits (status 1)
    when process PID is gone or standard input closes before the flags came, or after
    :data:`IDLE_SECONDS` without them; SIGTERM/SIGINT end it as they end a starting server."""
    parser = argparse.ArgumentParser(prog=f"python -m {_MODULE}")
    parser.add_argument("--parent_pid", type=int, required=True)
    args = parser.parse_args(argv)

    from ..model_server.main import configure_logging, load_server_modules, run
    from ..model_server.shutdown import EXIT_STATUS_ABANDONED, Shutdown

    # The ties a starting server has, before the imports: nothing may keep us alive.
    configure_logging()
    shutdown = Shutdown()
    shutdown.install_signal_handlers()
    shutdown.watch_parent(args.parent_pid)
    idle = threading.Timer(
        IDLE_SECONDS,
        shutdown.request,
        args=(f"standby: no flags within {IDLE_SECONDS:g} s", EXIT_STATUS_ABANDONED),
    )
    idle.daemon = True
    idle.start()
    started = time.monotonic()
    load_server_modules()
    print(f"{READY_LINE} (imported in {time.monotonic() - started:.2f} s)", flush=True)
    line = _read_line(sys.stdin.fileno())
    idle.cancel()
    if line is None:
        shutdown.request("stdin closed", EXIT_STATUS_ABANDONED)
        return EXIT_STATUS_ABANDONED  # (not reached: the request exits during start-up)
    return run(json.loads(line), shutdown)


if __name__ == "__main__":
    sys.exit(main())
