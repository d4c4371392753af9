"""Local binary backend: a ``tensorflow_model_server`` found on PATH, run as a child process.

This module also holds the start-up plumbing that every backend running an external
``tensorflow_model_server`` (this one and :mod:`~tfserve_nb.backends.docker`) shares: checking the
model directories before starting, the flags a backend sets itself, the generated
``--model_config_file``, free ports, and waiting until a started server answers with its models
AVAILABLE — with the server's last output and the likely cause when it does not.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from ..config import ModelConfig, render_config_file, validate
from ..core.version_policy import Latest
from ..errors import BackendUnavailableError, ConfigError, ServerStartError
from .base import Backend, ServerProcess
from .progress import StartupProgress
from .workdir import make_work_dir

MANAGED_FLAGS = frozenset(
    {"port", "rest_api_port", "model_name", "model_base_path", "model_config_file"}
)
"""``tensorflow_model_server`` flags a backend sets itself from its models and ports."""

CONFIG_FILE_NAME = "models.config"
LOG_TAIL_LINES = 40
"""How many of the server's last output lines a start-up error shows."""

_VERSION_DIR = re.compile(r"[0-9]+", re.ASCII)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# (pattern in the server's output, what it most likely means): first match wins.
_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"No versions of servable (\S+) found under base path (\S+)"),
        "model {0} has no numeric version directory under {1}: a version must live in "
        "<base_path>/<number>/ (export_model writes it there).",
    ),
    (
        re.compile(r"address already in use|Address in use|Failed to (?:add|bind) port", re.I),
        "a port the server wants is already in use: stop the other server or choose other ports.",
    ),
    (
        re.compile(r"exec format error", re.I),
        "the image or binary is built for another CPU architecture (tensorflow/serving is "
        "published for amd64 only): use backend='embedded'.",
    ),
    (
        re.compile(r"Illegal instruction", re.I),
        "the CPU lacks instructions the server binary needs (AVX), as under emulation on "
        "Apple Silicon: use backend='embedded'.",
    ),
    (
        re.compile(r"Could not find SavedModel|SavedModel file does not exist", re.I),
        "a version directory holds no SavedModel (saved_model.pb): export it with export_model.",
    ),
    (
        re.compile(r"Permission denied", re.I),
        "the server cannot read the model directory: make it readable (chmod -R a+rX <base_path>).",
    ),
)


def tail_lines(text: str, lines: int | None) -> str:
    """The last ``lines`` lines of ``text`` (all of it for ``None``)."""
    if lines is None:
        return text
    return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""


def likely_cause(logs: str) -> str | None:
    """A sentence naming the most likely cause of a failed start, read from the server's output."""
    for pattern, explanation in _CAUSES:
        match = pattern.search(logs)
        if match:
            return "Likely cause: " + explanation.format(*match.groups())
    return None


def check_managed_flags(extra_args: Sequence[str]) -> None:
    """Raise :class:`ConfigError` if ``extra_args`` sets a flag the backend manages itself."""
    for arg in extra_args:
        flag = arg.lstrip("-").split("=", 1)[0]
        if arg.startswith("-") and flag in MANAGED_FLAGS:
            raise ConfigError(
                f"Extra server flag {arg!r} is set by the backend itself: pass the models to "
                "serve() and the ports as the backend's grpc_port/rest_port options instead"
            )


def check_model_dirs(models: Sequence[ModelConfig]) -> None:
    """Check before starting that each local base path holds a numeric version directory.

    ``tensorflow_model_server`` itself would start, open no port and wait forever logging
    ``No versions of servable X found``; this says so at once. URIs (``gs://...``) are not checked.
    Raises :class:`ServerStartError`.
    """
    for model in models:
        if "://" in model.base_path:
            continue
        base = Path(model.base_path)
        if not base.is_dir():
            raise ServerStartError(
                f"Model base path {base} of model {model.name!r} does not exist or is not a "
                f"directory. Export a version there first (export_model(model, {str(base)!r})) "
                "or correct the path."
            )
        entries = sorted(entry.name for entry in base.iterdir())
        if not any(_VERSION_DIR.fullmatch(name) and (base / name).is_dir() for name in entries):
            found = ", ".join(entries[:10]) or "nothing"
            raise ServerStartError(
                f"No versions of servable {model.name} found under base path {base}. Did you "
                f"forget to name your leaf directory as a number (eg. '/1/')? Found: {found}. "
                "export_model(model, base_path) writes <base_path>/<version>/ for you."
            )


def needs_config_file(models: Sequence[ModelConfig]) -> bool:
    """Whether ``models`` need ``--model_config_file`` rather than ``--model_name`` and
    ``--model_base_path``: several models, labels, or a policy other than the default latest-1."""
    if len(models) != 1:
        return True
    (model,) = models
    policy = model.version_policy
    return bool(model.labels) or not (isinstance(policy, Latest) and policy.num_versions <= 1)


def write_config_file(models: Sequence[ModelConfig], directory: Path) -> Path:
    """Write ``models`` as a ``--model_config_file`` into ``directory``; return the file's path."""
    path = directory / CONFIG_FILE_NAME
    path.write_text(render_config_file(models), encoding="utf-8")
    return path


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that are free on ``host`` right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]


def check_port_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    """Raise :class:`ServerStartError` naming ``port`` if something already listens on it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ServerStartError(
                f"Port {port} ({what}) on {host} is already in use ({exc.strerror}): another "
                "server holds it — perhaps an earlier serve() that is still running (stop it). "
                "Choose another port, or leave the port unset to have a free one chosen."
            ) from exc


def wait_until_serving(
    grpc_address: str,
    rest_url: str,
    model_names: Sequence[str],
    *,
    timeout: float,
    alive: Callable[[], bool],
    logs: Callable[[], str],
    what: str,
) -> None:
    """Wait until ``rest_url`` reports a version AVAILABLE for every model in ``model_names`` and
    ``grpc_address`` accepts an HTTP/2 connection.

    Polls with a deadline (a bare TCP connect is not enough: Docker's port proxy accepts
    connections before the server listens). Raises :class:`ServerStartError` with the server's
    last output and the likely cause when ``alive()`` turns false or the deadline passes;
    ``what`` names the server in the message.
    """
    deadline = time.monotonic() + timeout
    progress = StartupProgress(what)
    while True:
        progress.update(logs)
        if not alive():
            progress.finish(ok=False)
            _raise_start_error(f"{what} exited during start-up.", logs())
        if _rest_ready(rest_url, model_names) and _grpc_ready(grpc_address):
            progress.finish(ok=True)
            return
        if time.monotonic() >= deadline:
            progress.finish(ok=False)
            _raise_start_error(
                f"{what} did not serve {', '.join(model_names)} on {rest_url} within "
                f"{timeout:g} s.",
                logs(),
            )
        time.sleep(0.2)


def _raise_start_error(message: str, logs: str) -> None:
    cause = likely_cause(logs)
    raise ServerStartError(
        message if cause is None else f"{message} {cause}", logs=tail_lines(logs, LOG_TAIL_LINES)
    )


def _rest_ready(rest_url: str, model_names: Sequence[str]) -> bool:
    for name in model_names:
        url = f"{rest_url}/v1/models/{urllib.parse.quote(name, safe='')}"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                status = json.load(response)
        except (OSError, ValueError):  # refused, reset, HTTP error, not JSON yet
            return False
        states = [v.get("state") for v in status.get("model_version_status", [])]
        if "AVAILABLE" not in states:
            return False
    return True


def _grpc_ready(grpc_address: str) -> bool:
    channel = grpc.insecure_channel(grpc_address)
    try:
        grpc.channel_ready_future(channel).result(timeout=1.0)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGKILL when its parent dies (Linux), else ``None``.

    PR_SET_PDEATHSIG fires when the *thread* that started the child exits, so start servers from a
    long-lived thread (a notebook's main thread is). A parent that died between the fork and the
    ``prctl`` is caught by checking the child's parent pid after it: the child exits at once.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded before the fork, called after it
    parent = os.getpid()

    def tie() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return tie


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


class LocalServerProcess(ServerProcess):
    """A ``tensorflow_model_server`` child process; its output goes to a log file in its work
    directory, which ``stop`` removes (the output stays readable through ``logs``)."""

    backend_name = "local"

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        command: Sequence[str],
        models: Sequence[ModelConfig],
        grpc_port: int,
        rest_port: int,
        workdir: Path,
    ) -> None:
        self.command = list(command)
        """The server's command line."""
        self.models = list(models)
        """The models as the server was started with them (base for config reloads)."""
        self._popen = popen
        self._grpc_port = grpc_port
        self._rest_port = rest_port
        self._workdir = workdir
        self._log_path = workdir / "server.log"
        self._final_logs: str | None = None
        self._lock = threading.Lock()
        self._owner_pid = os.getpid()
        atexit.register(self.stop)

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self._grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._rest_port}"

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self._popen.pid

    def alive(self) -> bool:
        return self._popen.poll() is None

    def logs(self, tail: int | None = None) -> str:
        if self._final_logs is not None:
            return tail_lines(self._final_logs, tail)
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        return tail_lines(text, tail)

    def stop(self, grace: float = 5.0) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked child (its exit runs atexit): the server is the parent's
        with self._lock:
            if self._final_logs is not None:
                return
            if self._popen.poll() is None:
                self._popen.terminate()
                try:
                    self._popen.wait(grace)
                except subprocess.TimeoutExpired:
                    self._popen.kill()
                    self._popen.wait()
            self._final_logs = self.logs()
            shutil.rmtree(self._workdir, ignore_errors=True)
            atexit.unregister(self.stop)

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
    ) -> LocalServerProcess:
        binary = self._resolved_binary()
        models = validate(models)
        check_managed_flags(extra_args)
        check_model_dirs(models)
        grpc_port, rest_port = self._ports()
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
        with open(workdir / "server.log", "wb") as log:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
            )
        process = LocalServerProcess(popen, command, models, grpc_port, rest_port, workdir)
        try:
            wait_until_serving(
                process.grpc_address,
                process.rest_url,
                [m.name for m in models],
                timeout=startup_timeout,
                alive=process.alive,
                logs=process.logs,
                what=f"{binary} (pid {popen.pid})",
            )
        except BaseException:
            process.stop()
            raise
        return process

    def _ports(self) -> tuple[int, int]:
        for port, what in ((self.grpc_port, "gRPC"), (self.rest_port, "REST")):
            if port is not None:
                check_port_free(port, what)
        chosen = iter(free_ports(2))
        return (self.grpc_port or next(chosen), self.rest_port or next(chosen))
