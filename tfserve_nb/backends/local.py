"""Local binary backend: a ``tensorflow_model_server`` found on PATH, run as a child process.

The start-up plumbing it shares with the other backends (checks, ports, the wait until the models
answer AVAILABLE) is in :mod:`~tfserve_nb.backends.startup`; the child process in
:mod:`~tfserve_nb.backends.child_process`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence

from ..config import ModelConfig, validate
from ..errors import BackendUnavailableError
from .base import Backend
from .child_process import ChildProcess, ChildServerProcess
from .progress import ProgressCallback
from .startup import (
    check_managed_flags,
    check_model_dirs,
    needs_config_file,
    pick_ports,
    wait_until_serving,
    write_config_file,
)
from .workdir import make_work_dir


@functools.lru_cache(maxsize=16)
def _is_tfserve_nb_server(binary: str, mtime_ns: int) -> bool:
    """Whether ``binary`` is this package's model server (``tfserve-nb model-server``, or a
    wrapper that runs it), which takes the ``--parent_pid`` extra; upstream's binary refuses
    unknown flags. Asks ``binary --version`` (once per binary and modification time)."""
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return (done.stdout + done.stderr).startswith("tfserve-nb ")


def parent_tie_args(binary: str) -> list[str]:
    """``["--parent_pid=<this pid>"]`` if ``binary`` is this package's model server (so it exits
    when this process is gone, on every system, even if this process forked), else ``[]``."""
    try:
        mtime_ns = os.stat(binary).st_mtime_ns
    except OSError:
        return []
    return [f"--parent_pid={os.getpid()}"] if _is_tfserve_nb_server(binary, mtime_ns) else []


class LocalServerProcess(ChildServerProcess):
    """A ``tensorflow_model_server`` child process; its output goes to a log file in its work
    directory, which ``stop`` removes (the output stays readable through ``logs``)."""

    backend_name = "local"

    def __init__(
        self,
        child: ChildProcess,
        command: Sequence[str],
        models: Sequence[ModelConfig],
        grpc_port: int,
        rest_port: int,
    ) -> None:
        super().__init__(child)
        self.command = list(command)
        """The server's command line."""
        self.models = list(models)
        """The models as the server was started with them (base for config reloads)."""
        self._grpc_port = grpc_port
        self._rest_port = rest_port

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self._grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._rest_port}"

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "binary": self.command[0], "pid": str(self.pid)}


class LocalBinaryBackend(Backend):
    """Runs a ``tensorflow_model_server`` binary as a child process on 127.0.0.1.

    ``binary`` is a name looked up on PATH or a path. ``grpc_port``/``rest_port`` fix the ports;
    unset, free ones are chosen. The child gets SIGKILL when this process dies (Linux) and is
    stopped at interpreter exit everywhere; a binary that is this package's model server also
    gets ``--parent_pid`` (it then exits when this process is gone, on any system).
    """

    name = "local"

    def __init__(
        self,
        binary: str = "tensorflow_model_server",
        *,
        grpc_port: int | None = None,
        rest_port: int | None = None,
    ) -> None:
        self.binary = binary
        self.grpc_port = grpc_port
        self.rest_port = rest_port

    def binary_path(self) -> str | None:
        """The binary's resolved path, or ``None`` when it is not found."""
        return shutil.which(self.binary)

    def check_available(self) -> None:
        self._resolved_binary()

    def _resolved_binary(self) -> str:
        path = self.binary_path()
        if path is None:
            raise BackendUnavailableError(
                f"No {self.binary} binary found on PATH. Install TensorFlow Serving's "
                "tensorflow_model_server, or pass binary='/path/to/tensorflow_model_server' — or "
                "serve without it: backend='embedded' (same protocol) or backend='docker'."
            )
        return path

    def start(
        self,
        models: Sequence[ModelConfig],
        *,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 120.0,
        progress: ProgressCallback | None = None,
    ) -> LocalServerProcess:
        binary = self._resolved_binary()
        models = validate(models)
        check_managed_flags(extra_args)
        check_model_dirs(models)
        grpc_port, rest_port = pick_ports(self.grpc_port, self.rest_port)
        workdir = make_work_dir("local-")
        if needs_config_file(models):
            model_args = [f"--model_config_file={write_config_file(models, workdir)}"]
        else:
            model_args = [
                f"--model_name={models[0].name}",
                f"--model_base_path={models[0].base_path}",
            ]
        command = [binary, f"--port={grpc_port}", f"--rest_api_port={rest_port}", *model_args]
        command += [*parent_tie_args(binary), *extra_args]
        child = ChildProcess.start(command, workdir, kill_with_parent=True)
        process = LocalServerProcess(child, command, models, grpc_port, rest_port)
        try:
            wait_until_serving(
                process.grpc_address,
                process.rest_url,
                [m.name for m in models],
                timeout=startup_timeout,
                alive=process.alive,
                logs=process.logs,
                what=f"{binary} (pid {child.pid})",
                progress=progress,
            )
        except BaseException:
            process.stop()
            raise
        return process
