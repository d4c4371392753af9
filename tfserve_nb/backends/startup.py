"""Starting a server, shared by every backend: checks before the start, ports, and the wait.

Before starting: :func:`check_managed_flags` (flags a backend sets itself), :func:`check_model_dirs`
(each base path holds a version), :func:`needs_config_file` / :func:`write_config_file` (the
generated ``--model_config_file``), :func:`pick_ports`. After: :func:`wait_for_start` waits with a
deadline while reporting progress to a callback and, when the server exits or the deadline
passes, raises :class:`~tfserve_nb.errors.ServerStartError` with the likely cause
(:func:`likely_cause`) and the server's last output; :func:`wait_until_serving` is that wait for a
``tensorflow_model_server``, until its models answer AVAILABLE.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import grpc

from ..config import ModelConfig, render_config_file
from ..core.servable_id import list_versions
from ..core.version_policy import Latest
from ..errors import ConfigError, ServerStartError, ServingError, transport_errors
from ..protocol.rest_paths import model_path
from ..waiting import wait_until
from .child_process import last_lines
from .progress import ProgressCallback, StartupProgress, print_progress

__all__ = [
    "CONFIG_FILE_NAME",
    "LOG_TAIL_LINES",
    "MANAGED_FLAGS",
    "check_fixed_ports",
    "check_managed_flags",
    "check_model_dirs",
    "check_port_free",
    "free_ports",
    "likely_cause",
    "needs_config_file",
    "pick_ports",
    "start_error",
    "wait_for_start",
    "wait_until_serving",
    "write_config_file",
]

T = TypeVar("T")

MANAGED_FLAGS = frozenset(
    {"port", "rest_api_port", "model_name", "model_base_path", "model_config_file"}
)
"""``tensorflow_model_server`` flags a backend sets itself from its models and ports."""

CONFIG_FILE_NAME = "models.config"
LOG_TAIL_LINES = 40
"""How many of the server's last output lines a start-up error shows."""

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


def likely_cause(logs: str) -> str | None:
    """A sentence naming the most likely cause of a failed start, read from the server's output."""
    for pattern, explanation in _CAUSES:
        match = pattern.search(logs)
        if match:
            return "Likely cause: " + explanation.format(*match.groups())
    return None


def start_error(message: str, logs: str) -> ServerStartError:
    """``message`` and the :func:`likely_cause` read from ``logs`` (the server's whole output),
    with its last :data:`LOG_TAIL_LINES` lines."""
    cause = likely_cause(logs)
    return ServerStartError(
        message if cause is None else f"{message} {cause}", logs=last_lines(logs, LOG_TAIL_LINES)
    )


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
    """Check before starting that each local base path holds a version directory (as
    :func:`~tfserve_nb.core.servable_id.list_versions` finds them).

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
        if not list_versions(str(base)):
            entries = sorted(entry.name for entry in base.iterdir())
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


def pick_ports(grpc_port: int | None, rest_port: int | None) -> tuple[int, int]:
    """The gRPC and REST ports to start on: the given ones (checked free, else
    :class:`ServerStartError`), and free ones for those left ``None``."""
    check_fixed_ports(grpc_port, rest_port)
    chosen = iter(free_ports(2))
    return grpc_port or next(chosen), rest_port or next(chosen)


def check_fixed_ports(grpc_port: int | None, rest_port: int | None) -> None:
    """Raise :class:`ServerStartError` if a given (not ``None``) port is taken."""
    for port, what in ((grpc_port, "gRPC"), (rest_port, "REST")):
        if port is not None:
            check_port_free(port, what)


def wait_for_start(
    ready: Callable[[], T | None],
    *,
    timeout: float,
    exited: Callable[[], str | None],
    logs: Callable[[], str],
    what: str,
    timeout_message: str,
    progress: ProgressCallback | None = None,
    interval: float = 0.2,
) -> T:
    """Poll ``ready()`` until it returns a value (not ``None``/``False``); return it.

    Reports progress to ``progress`` (default :func:`~.progress.print_progress`) as
    :class:`~.progress.StartupProgress` of ``what``, read from ``logs()``. ``exited()`` returns
    a sentence once the server has exited, else ``None``. Raises
    :func:`start_error` (:class:`ServerStartError`: the sentence or ``timeout_message``, the
    likely cause, the last output) when the server exits or ``timeout`` passes; the caller
    stops the server then.
    """
    shown = StartupProgress(what, progress or print_progress)

    def check() -> T | None:
        shown.update(logs)
        gone = exited()
        if gone is not None:
            raise start_error(gone, logs())
        return ready()

    def timed_out() -> ServerStartError:
        return start_error(timeout_message, logs())

    try:
        result = wait_until(check, timeout, timed_out=timed_out, interval=interval)
    except BaseException:
        shown.finish(ok=False)
        raise
    shown.finish(ok=True)
    return result


def wait_until_serving(
    grpc_address: str,
    rest_url: str,
    model_names: Sequence[str],
    *,
    timeout: float,
    alive: Callable[[], bool],
    logs: Callable[[], str],
    what: str,
    progress: ProgressCallback | None = None,
) -> None:
    """Wait until ``rest_url`` reports a version AVAILABLE for every model in ``model_names`` and
    ``grpc_address`` accepts an HTTP/2 connection (see :func:`wait_for_start`).

    A bare TCP connect is not enough: Docker's port proxy accepts connections before the server
    listens. Raises :class:`ServerStartError` with the server's last output and the likely cause
    when ``alive()`` turns false or the deadline passes; ``what`` names the server in the
    message.
    """
    wait_for_start(
        lambda: _rest_ready(rest_url, model_names) and _grpc_ready(grpc_address),
        timeout=timeout,
        exited=lambda: None if alive() else f"{what} exited during start-up.",
        logs=logs,
        what=what,
        timeout_message=(
            f"{what} did not serve {', '.join(model_names)} on {rest_url} within {timeout:g} s."
        ),
        progress=progress,
    )


def _rest_ready(rest_url: str, model_names: Sequence[str]) -> bool:
    for name in model_names:
        url = rest_url + model_path(name)
        try:
            with transport_errors(url), urllib.request.urlopen(url, timeout=2.0) as response:
                status = json.load(response)
        except ServingError:  # refused, reset, HTTP error, not JSON yet
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
