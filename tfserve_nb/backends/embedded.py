"""The embedded backend: this package's model server in a child process.

The child runs ``python -m tfserve_nb.model_server`` with a generated config file, on free
loopback ports it reports through ``--port_file``. It is tied to its parent: it exits when this
process is gone (``--parent_pid``: at once on Linux, within half a second elsewhere) and when
its standard input, a pipe from us, closes — so a kernel restart, a crash or ``kill -9`` of the
notebook never leaves an orphan server behind, even when the notebook forked children
(``multiprocessing`` workers) that keep the pipe open. Its work folder goes with ``stop``; one
that a killed notebook left behind goes with the next ``start``.

A start hands its flags to the standby child that :meth:`EmbeddedBackend.prepare_standby` started
(``tfserve_nb.export_model`` does), when one fits: the same server, without waiting for
TensorFlow's import (see :mod:`.standby`); else it starts a cold child.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import ModelConfig
from ..errors import BackendUnavailableError
from . import standby
from .base import Backend
from .child_process import ChildProcess, ChildServerProcess
from .progress import ProgressCallback
from .startup import wait_for_start, write_config_file
from .workdir import make_work_dir

PORT_FILE_NAME = "ports.json"
"""The ``--port_file`` in a server's work folder."""


def _server_env() -> dict[str, str]:
    """The server child's environment: this process's, with unbuffered output and TensorFlow's
    C++ INFO messages off unless ``TF_CPP_MIN_LOG_LEVEL`` says otherwise."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return env


class EmbeddedProcess(ChildServerProcess):
    """This package's model server in a child process (see the module's docstring)."""

    backend_name = "embedded"

    def __init__(self, child: ChildProcess, host: str, grpc_port: int, rest_port: int) -> None:
        super().__init__(child)
        self._host = host
        self._grpc_port = grpc_port
        self._rest_port = rest_port

    @property
    def workdir(self) -> Path:
        """The server's work folder (config file, port file, log); ``stop`` removes it."""
        return self._child.workdir

    @property
    def grpc_address(self) -> str:
        return f"{self._host}:{self._grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self._rest_port}"

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "pid": str(self.pid)}


class EmbeddedBackend(Backend):
    """Runs the embedded model server with ``python`` (default: this interpreter)."""

    name = "embedded"

    def __init__(self, *, python: str = sys.executable, bind_address: str = "127.0.0.1") -> None:
        self.python = python
        self.bind_address = bind_address

    def prepare_standby(self) -> None:
        """Start a standby child that imports the server ahead of this backend's next
        :meth:`start` (see :mod:`.standby`; off with ``TFSERVE_NB_STANDBY=0``), if this backend
        can run at all. Returns at once; the child imports in the background."""
        try:
            self.check_available()
        except BackendUnavailableError:
            return
        standby.prepare(self.python, _server_env())

    def check_available(self) -> None:
        for module in ("tensorflow", "grpc", "tensorflow_serving"):
            if importlib.util.find_spec(module) is None:
                raise BackendUnavailableError(
                    f"The embedded backend needs the Python package {module!r}, which is not "
                    "installed here: pip install tfserve-nb (it brings tensorflow, grpcio and "
                    "tensorflow-serving-api)"
                )

    def start(
        self,
        models: Sequence[ModelConfig],
        *,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 120.0,
        progress: ProgressCallback | None = None,
    ) -> EmbeddedProcess:
        self.check_available()

        def flags_for(workdir: Path) -> list[str]:
            return [
                f"--model_config_file={write_config_file(models, workdir)}",
                "--ephemeral_ports",
                f"--port_file={workdir / PORT_FILE_NAME}",
                "--exit_on_stdin_eof",
                f"--parent_pid={os.getpid()}",
                f"--bind_address={self.bind_address}",
                *extra_args,
            ]

        env = _server_env()
        child = standby.run_server(self.python, env, flags_for) or self._start_cold(env, flags_for)
        standby.note_server(child)
        port_file = child.workdir / PORT_FILE_NAME
        try:
            wait_for_start(
                port_file.exists,
                timeout=startup_timeout,
                exited=lambda: (
                    None
                    if child.returncode is None
                    else f"The embedded model server exited with code {child.returncode}."
                ),
                logs=child.logs,
                what="the embedded model server",
                timeout_message=(
                    f"The embedded model server did not open its ports within "
                    f"{startup_timeout:g} s."
                ),
                progress=progress,
                interval=0.02,
            )
            ports = json.loads(port_file.read_text())
        except BaseException:
            child.stop(grace=0)
            raise
        return EmbeddedProcess(child, self.bind_address, ports["grpc_port"], ports["rest_port"])

    def _start_cold(
        self, env: dict[str, str], flags_for: Callable[[Path], Sequence[str]]
    ) -> ChildProcess:
        """``python -m tfserve_nb.model_server`` with ``flags_for(its new work folder)``."""
        workdir = make_work_dir()
        command = [self.python, "-m", "tfserve_nb.model_server", *flags_for(workdir)]
        return ChildProcess.start(command, workdir, env=env, stdin_pipe=True, new_session=True)
