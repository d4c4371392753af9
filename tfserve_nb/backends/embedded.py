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

import atexit
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from ..config import ModelConfig, render_config_file
from ..errors import BackendUnavailableError, ServerStartError
from .base import Backend, ServerProcess
from .progress import StartupProgress
from .workdir import make_work_dir

LOG_TAIL_LINES = 40


def tail(text: str, lines: int | None) -> str:
    """The last ``lines`` lines of ``text`` (all of it for ``None``)."""
    return text if lines is None else "\n".join(text.splitlines()[-lines:])


class EmbeddedProcess(ServerProcess):
    backend_name = "embedded"

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        workdir: str,
        host: str,
        grpc_port: int,
        rest_port: int,
    ) -> None:
        self._popen = popen
        self._workdir = workdir
        self._host = host
        self._grpc_port = grpc_port
        self._rest_port = rest_port
        self._lock = threading.Lock()
        self._final_logs: str | None = None
        self._owner_pid = os.getpid()
        atexit.register(self.stop)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def grpc_address(self) -> str:
        return f"{self._host}:{self._grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self._rest_port}"

    def alive(self) -> bool:
        return self._popen.poll() is None

    def logs(self, tail_lines: int | None = None) -> str:
        with self._lock:
            if self._final_logs is not None:
                return tail(self._final_logs, tail_lines)
            return tail(_read(os.path.join(self._workdir, "server.log")), tail_lines)

    def stop(self, grace: float = 5.0) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked child (its exit runs atexit): the server is the parent's
        with self._lock:
            if self._final_logs is not None:
                return
            if self._popen.poll() is None:
                self._popen.send_signal(signal.SIGTERM)
                try:
                    self._popen.wait(grace)
                except subprocess.TimeoutExpired:
                    self._popen.kill()
                    self._popen.wait()
            if self._popen.stdin is not None:
                self._popen.stdin.close()
            self._final_logs = _read(os.path.join(self._workdir, "server.log"))
            shutil.rmtree(self._workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "pid": str(self.pid)}


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


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
    ) -> EmbeddedProcess:
        self.check_available()
        workdir = str(make_work_dir())
        config_path = os.path.join(workdir, "models.config")
        with open(config_path, "w") as f:
            f.write(render_config_file(models))
        port_file = os.path.join(workdir, "ports.json")
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
        with open(os.path.join(workdir, "server.log"), "wb") as log_file:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + startup_timeout
        log_path = os.path.join(workdir, "server.log")
        progress = StartupProgress("the embedded model server")
        while not os.path.exists(port_file):
            progress.update(lambda: _read(log_path))
            if popen.poll() is not None or time.monotonic() > deadline:
                progress.finish(ok=False)
                logs = _read(log_path)
                exited = popen.poll() is not None
                if not exited:
                    popen.kill()
                    popen.wait()
                shutil.rmtree(workdir, ignore_errors=True)
                reason = (
                    f"exited with code {popen.returncode}"
                    if exited
                    else f"did not open its ports within {startup_timeout:g} s"
                )
                raise ServerStartError(
                    f"The embedded model server {reason}", tail(logs, LOG_TAIL_LINES)
                )
            time.sleep(0.02)
        progress.finish(ok=True)
        with open(port_file) as f:
            ports = json.load(f)
        return EmbeddedProcess(
            popen, workdir, self.bind_address, ports["grpc_port"], ports["rest_port"]
        )
