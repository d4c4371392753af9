"""The embedded backend: this package's model server in a child process.

The child runs ``python -m tfserve_nb.model_server`` with a generated config file, on free
loopback ports it reports through ``--port_file``. It is tied to its parent: it exits when this
process is gone (``--parent_pid``: at once on Linux, within half a second elsewhere) and when
its standard input, a pipe from us, closes — so a kernel restart, a crash or ``kill -9`` of the
notebook never leaves an orphan server behind, even when the notebook forked children
(``multiprocessing`` workers) that keep the pipe open. Its work folder goes with ``stop``; one
that a killed notebook left behind goes with the next ``start``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import ModelConfig
from ..errors import BackendUnavailableError
from .base import Backend
from .child_process import ChildProcess, ChildServerProcess
from .progress import ProgressCallback
from .startup import wait_for_start, write_config_file
from .workdir import make_work_dir


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
        workdir = make_work_dir()
        config_path = write_config_file(models, workdir)
        port_file = workdir / "ports.json"
        command = [
            self.python,
            "-m",
            "tfserve_nb.model_server",
            f"--model_config_file={config_path}",
            "--ephemeral_ports",
            f"--port_file={port_file}",
            "--exit_on_stdin_eof",
            f"--parent_pid={os.getpid()}",
            f"--bind_address={self.bind_address}",
            *extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        child = ChildProcess.start(command, workdir, env=env, stdin_pipe=True, new_session=True)
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
