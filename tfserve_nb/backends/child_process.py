"""A server run as a child process: its output in a log file, tied to this process, stopped
gracefully.

:class:`ChildProcess` is what the embedded and the local backend run: the child writes standard
output and error to ``server.log`` in its work folder (one folder per child, see
:mod:`~tfserve_nb.backends.workdir`), which :meth:`ChildProcess.stop` removes — the output stays
readable through :meth:`ChildProcess.logs`. :class:`ChildServerProcess` is the
:class:`~tfserve_nb.backends.base.ServerProcess` both build on. :func:`last_lines` is the one
meaning of "the last n lines" that every backend's ``logs(tail=)`` uses.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..processes import parent_death_signal_preexec, stop_process
from .base import ServerProcess

__all__ = ["LOG_FILE_NAME", "ChildProcess", "ChildServerProcess", "last_lines"]

LOG_FILE_NAME = "server.log"


def last_lines(text: str, lines: int | None) -> str:
    """The last ``lines`` lines of ``text``: all of it for ``None``, ``""`` for 0 or fewer."""
    if lines is None:
        return text
    return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""


class ChildProcess:
    """A child process whose output goes to ``<workdir>/server.log``; it owns ``workdir``.

    Thread-safe. :meth:`stop` is idempotent and also runs at interpreter exit — only in the
    process that started the child (a forked child's exit leaves it alone).
    """

    def __init__(self, popen: subprocess.Popen[bytes], workdir: Path) -> None:
        self.popen = popen
        self.workdir = workdir
        self._log_path = workdir / LOG_FILE_NAME
        self._final_logs: str | None = None
        self._lock = threading.Lock()
        self._owner_pid = os.getpid()
        atexit.register(self.stop)

    @classmethod
    def start(
        cls,
        command: Sequence[str],
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        kill_with_parent: bool = False,
        stdin_pipe: bool = False,
        new_session: bool = False,
    ) -> ChildProcess:
        """Start ``command`` with its output in ``workdir/server.log``.

        ``kill_with_parent``: Linux sends the child SIGKILL when this process dies
        (``PR_SET_PDEATHSIG``; start it from a long-lived thread). ``stdin_pipe``: the child's
        standard input is a pipe from this process, closed by :meth:`stop` and by this process's
        death (for a child that exits at its end, ``--exit_on_stdin_eof``); else it reads
        ``/dev/null``. ``new_session``: the child gets a session of its own (a terminal's
        Ctrl-C does not reach it). Raises ``OSError`` when the command cannot be run (and then
        removes ``workdir``).
        """
        try:
            with open(workdir / LOG_FILE_NAME, "wb") as log:
                popen = subprocess.Popen(
                    list(command),
                    stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=None if env is None else dict(env),
                    start_new_session=new_session,
                    preexec_fn=(
                        parent_death_signal_preexec(signal.SIGKILL) if kill_with_parent else None
                    ),
                )
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return cls(popen, workdir)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status, ``None`` while it runs."""
        return self.popen.poll()

    def alive(self) -> bool:
        """Whether the child still runs."""
        return self.popen.poll() is None

    def logs(self, tail: int | None = None) -> str:
        """The child's output so far, the last ``tail`` lines if given (see :func:`last_lines`);
        after :meth:`stop`, what it wrote in all."""
        with self._lock:
            text = self._final_logs if self._final_logs is not None else self._read_log()
        return last_lines(text, tail)

    def stop(self, grace: float = 5.0) -> None:
        """Stop the child: SIGTERM, up to ``grace`` seconds to exit, then SIGKILL (at once for a
        ``grace`` of 0 or less). Then close its standard input, keep its output and remove the
        work folder. Idempotent; a no-op in a forked copy of the process that started it."""
        if os.getpid() != self._owner_pid:
            return  # a forked child (its exit runs atexit): the server is the parent's
        with self._lock:
            if self._final_logs is not None:
                return
            stop_process(self.popen, grace)
            if self.popen.stdin is not None:
                self.popen.stdin.close()
            self._final_logs = self._read_log()
            shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def _read_log(self) -> str:
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


class ChildServerProcess(ServerProcess):
    """A server that is a :class:`ChildProcess`: its pid, liveness, logs and stop are the
    child's. Thread-safe; ``stop`` is idempotent (as :meth:`ChildProcess.stop`)."""

    def __init__(self, child: ChildProcess) -> None:
        self._child = child

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self._child.pid

    def alive(self) -> bool:
        return self._child.alive()

    def logs(self, tail: int | None = None) -> str:
        return self._child.logs(tail)

    def stop(self, grace: float = 5.0) -> None:
        self._child.stop(grace)
