"""When the model server process stops, and that it does stop, in every state.

Anything may ask for the stop (:meth:`Shutdown.request`): SIGTERM or SIGINT, standard input
closing (``--exit_on_stdin_eof``), the parent process gone (``--parent_pid``).

- **While the server starts** (the initial models load; a base path may still be empty) the
  start-up holds the main thread, and no port is open yet: the process exits at once — killed
  by the signal it got, as ``tensorflow_model_server`` is, or with status 1 for a lost parent.
- **Once it serves** (:meth:`Shutdown.started`), the main thread stops the server gracefully
  (requests in flight get their grace; reloads waiting for a version give up), and a
  watchdog ends the process if that has not happened within :data:`SHUTDOWN_DEADLINE_SECONDS`:
  a version load TensorFlow cannot interrupt, a request stuck in a kernel, a thread the exit
  would join. A second SIGTERM/SIGINT exits at once.

Parent ties (:meth:`Shutdown.watch_parent`): on Linux the parent's death signals us at once
(``PR_SET_PDEATHSIG`` delivering SIGHUP, checked against the parent pid, since the kernel also
sends it when merely the *thread* that started us ends: a SIGHUP while the parent lives is
ignored); everywhere a thread polls the parent's
pid (with its start time, so a reused pid does not pass for it) every
:data:`PARENT_POLL_SECONDS`. Unlike end-of-file on an inherited standard input, this holds when
the parent forked children that keep the pipe open (``multiprocessing`` workers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

from ..processes import process_alive, process_start_token, set_parent_death_signal

log = logging.getLogger("tfserve_nb.model_server")

SHUTDOWN_DEADLINE_SECONDS = 4.0
"""How long a graceful stop may take before the process exits anyway: gRPC's grace for requests
in flight (2 s) and time to close the rest, under the 5 s a backend waits before SIGKILL."""

PARENT_POLL_SECONDS = 0.5
"""How often the parent watch looks whether the parent process still runs."""

EXIT_STATUS_ABANDONED = 1
"""The exit status when the server gave up: its parent or standard input gone during start-up,
or a graceful stop that did not finish in time."""


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


class Shutdown:
    """The stop of one server process; create one at start, in the main thread."""

    def __init__(self, deadline: float = SHUTDOWN_DEADLINE_SECONDS) -> None:
        self.deadline = deadline
        self._requested = threading.Event()
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._reason = ""
        self._watched_parents: set[int] = set()

    # ---- what asks for the stop ----------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """Handle SIGTERM and SIGINT (call from the main thread, before the models load)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def watch_stdin(self) -> None:
        """Stop when standard input reaches its end (``--exit_on_stdin_eof``)."""
        threading.Thread(target=self._read_stdin, name="stdin-eof", daemon=True).start()

    def watch_parent(self, pid: int) -> None:
        """Stop when process ``pid`` is gone (``--parent_pid``); at once if it already is.
        Watching a pid this object already watches does nothing."""
        if pid in self._watched_parents:
            return
        self._watched_parents.add(pid)
        token = process_start_token(pid)
        is_parent = os.getppid() == pid

        def gone() -> bool:
            return (is_parent and os.getppid() != pid) or not process_alive(pid, token)

        def on_hangup(_signum: int, _frame: object) -> None:
            if gone():
                self.request(f"parent process {pid} is gone", EXIT_STATUS_ABANDONED)

        if is_parent and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGHUP, on_hangup)
            if not set_parent_death_signal(signal.SIGHUP):
                signal.signal(signal.SIGHUP, previous)
        # The parent may have died before the tie was made (or before we started at all).
        if gone():
            self.request(f"parent process {pid} is gone", EXIT_STATUS_ABANDONED)
        threading.Thread(
            target=self._poll_parent, args=(pid, gone), name="parent-watch", daemon=True
        ).start()

    def request(self, reason: str, exit_status: int) -> None:
        """Ask for the stop, because of ``reason``. During start-up the process exits at once
        with ``exit_status``; afterwards :meth:`wait` returns. Any thread."""
        first = not self._requested.is_set()
        self._reason = self._reason or reason
        self._requested.set()
        if not self._started.is_set():
            log.info("%s during start-up: exiting", reason)
            _flush_logs()
            os._exit(exit_status)
        if first:
            log.info("%s: stopping", reason)

    def _on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if not self._started.is_set():
            log.info("%s during start-up: exiting", name)
            _flush_logs()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)  # die of it, as tensorflow_model_server would
            os._exit(128 + signum)  # (not reached)
        if self._requested.is_set():
            log.warning("%s again while stopping: exiting now", name)
            _flush_logs()
            os._exit(EXIT_STATUS_ABANDONED)
        self.request(name, 128 + signum)

    def _read_stdin(self) -> None:
        # Unbuffered reads of the descriptor: a thread blocked in a read of the buffered
        # sys.stdin holds its lock, and the interpreter's exit then aborts ("could not acquire
        # lock for <_io.BufferedReader name='<stdin>'> at interpreter shutdown").
        try:
            while os.read(sys.stdin.fileno(), 4096):
                pass
        except (OSError, ValueError):
            pass
        self.request("stdin closed", EXIT_STATUS_ABANDONED)

    def _poll_parent(self, pid: int, gone: Callable[[], bool]) -> None:
        while not self._requested.wait(PARENT_POLL_SECONDS):
            if gone():
                self.request(f"parent process {pid} is gone", EXIT_STATUS_ABANDONED)
                return

    # ---- the main thread's side ----------------------------------------------------------

    def started(self) -> None:
        """The server serves: from now on a stop is graceful. If one was asked for while the
        handover happened, :meth:`wait` returns at once."""
        self._started.set()

    def wait(self) -> str:
        """Block until a stop is asked for; return why. (Waits in slices, so the main thread
        runs signal handlers promptly wherever the signal was delivered.)"""
        while not self._requested.wait(0.5):
            pass
        return self._reason

    def stop_within_deadline(self, stop: Callable[[], None]) -> None:
        """Run ``stop`` (the graceful stop), ending the process if it and the interpreter's
        exit after it have not finished within :attr:`deadline` seconds."""
        watchdog = threading.Timer(self.deadline, self._overdue)
        watchdog.daemon = True
        watchdog.start()
        stop()
        self._stopped.set()

    def _overdue(self) -> None:
        stopped = self._stopped.is_set()
        log.warning(
            "The model server did not %s within %g s: exiting now",
            "exit" if stopped else "stop",
            self.deadline,
        )
        _flush_logs()
        os._exit(0 if stopped else EXIT_STATUS_ABANDONED)
