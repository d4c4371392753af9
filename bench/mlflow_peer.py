"""A peer: the Keras model served by MLflow's scoring server, ``mlflow models serve``.

:func:`ensure_installed` installs the ``peers`` extra (MLflow) into the running interpreter's
environment if it is missing, changing no installed package's version. :func:`save` writes a
Keras model as an MLflow model with MLflow's Keras 3 flavor (``mlflow.keras``); :func:`serve`
starts ``mlflow models serve -m PATH --env-manager local -h 127.0.0.1 -p PORT`` on a free
loopback port and waits for its ``/ping``; the :class:`MlflowServer` it returns has
``ports["rest_port"]`` and ``stop()``, like :class:`bench.setups.Process`, and stops every process
the command started.

What runs: the ``mlflow`` command starts ``uvicorn mlflow.pyfunc.scoring_server.app:app`` (a
FastAPI app) with MLflow's default of one worker (``--workers``, ``MLFLOW_MODELS_WORKERS``) and
waits on it. ``POST`` :data:`REQUEST_PATH` takes TF Serving's row format (``{"instances":
[...]}``, as well as ``inputs``, ``dataframe_split`` and ``dataframe_records``), runs
``model.predict`` in a thread and answers ``{"predictions": [...]}``, as
:func:`bench.setups.answer` reads.

MLflow's telemetry is switched off (``MLFLOW_DISABLE_TELEMETRY``, ``DO_NOT_TRACK``) in this
process before MLflow is imported and in the server's processes: nothing leaves 127.0.0.1.
Linux only (the process group is watched through ``/proc``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import signal
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tfserve_nb.backends.startup import free_ports
from tfserve_nb.processes import process_alive
from tfserve_nb.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

EXTRA = "peers"

REQUEST_PATH = "/invocations"
"""Where the scoring server takes predictions."""

NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def requirements() -> list[str]:
    """The ``peers`` extra's requirements, as ``pyproject.toml`` writes them."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        extras: dict[str, list[str]] = tomllib.load(f)["project"]["optional-dependencies"]
    return extras[EXTRA]


def installed_pins() -> list[str]:
    """``name==version`` for every distribution this interpreter sees (the first of a name,
    as imports find it)."""
    pins: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            pins.setdefault(name.lower(), f"{name}=={dist.version}")
    return sorted(pins.values())


def missing() -> list[str]:
    """The ``peers`` extra's requirements this environment does not satisfy (not installed,
    or at a version outside the requirement's)."""
    from packaging.requirements import Requirement

    unmet = []
    for text in requirements():
        requirement = Requirement(text)
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            unmet.append(text)
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            unmet.append(text)
    return unmet


def ensure_installed(say: Callable[[str], None]) -> None:
    """Install the ``peers`` extra's :func:`missing` requirements with
    ``sys.executable -m pip``; nothing to do if there are none.

    Every distribution already installed is passed to pip as a constraint at its installed
    version, so pip only adds packages (MLflow's own requirements would otherwise move some:
    ``graphene`` 3.4.3 asks for ``python-dateutil<3``, which would downgrade 4.0). If no MLflow
    fits the constraints (an older MLflow installed, say), pip fails and so does this, with
    pip's output: :class:`RuntimeError`. The project itself is not reinstalled (an editable
    install stays as it is).
    """
    wanted = missing()
    if not wanted:
        return
    say(f"installing the {EXTRA!r} extra ({', '.join(wanted)}), nothing installed changing")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="constraints-") as constraints:
        constraints.write("\n".join(installed_pins()) + "\n")
        constraints.flush()
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--constraint", constraints.name, *wanted],
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"pip could not install the {EXTRA!r} extra ({', '.join(wanted)}) without changing "
            f"an installed package (exit {done.returncode}):\n{done.stdout[-4000:]}"
            f"{done.stderr[-4000:]}"
        )
    importlib.invalidate_caches()


def _mlflow() -> ModuleType:
    """``mlflow`` (with its Keras flavor), imported with its telemetry off."""
    os.environ.update(NO_TELEMETRY)
    import mlflow.keras

    return mlflow


def save(model: Any, path: Path, example: np.ndarray) -> None:
    """Write the Keras ``model`` as an MLflow model in the new folder ``path`` with
    ``mlflow.keras.save_model`` (MLflow's flavor for Keras 3; ``mlflow.tensorflow`` is for
    tf-keras), with the signature MLflow infers from ``example`` and the model's answer to it
    (tensor-based: ``[-1, ...]`` of the example's dtype) and ``example`` as input example.
    ``path`` is made first (:class:`FileExistsError` if it exists): the Keras flavor writes
    the example before it makes the folder."""
    mlflow = _mlflow()
    signature = mlflow.models.infer_signature(example, model.predict(example, verbose=0))
    path.mkdir(parents=True)
    mlflow.keras.save_model(model, str(path), signature=signature, input_example=example)


@dataclass
class MlflowServer:
    """A running ``mlflow models serve``: the command's process, which leads a process group
    of its own holding everything it started, and the port it serves on."""

    popen: subprocess.Popen[bytes]
    ports: dict[str, int]
    log: Path

    def running(self) -> list[int]:
        """The pids of the group's processes still running (zombies are gone)."""
        return group_members(self.popen.pid)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the processes the command started (the command itself if it started
        none yet), up to ``grace`` seconds for the whole group to exit, then SIGKILL to the
        group; returns once none of it runs and the command is reaped. The server goes first
        so that its parent, the command waiting on it, reaps it and then exits: nothing is
        left a zombie for init to collect (the command then exits 1, logging its server's
        SIGTERM as a failure). :class:`RuntimeError` if a process survives SIGKILL for 10 s."""
        leader = self.popen.pid
        for pid in [pid for pid in self.running() if pid != leader] or [leader]:
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not self.running(), grace, timed_out=TimeoutError)
        except TimeoutError:
            _signal_group(self.popen.pid, signal.SIGKILL)
            wait_until(
                lambda: not self.running(),
                10.0,
                timed_out=lambda: RuntimeError(f"still running after SIGKILL: {self.running()}"),
            )
        self.popen.wait()


def group_members(pgid: int) -> list[int]:
    """The pids of process group ``pgid``'s processes that run (not zombies)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):  # gone meanwhile
                if os.getpgid(int(entry)) == pgid and process_alive(int(entry)):
                    members.append(int(entry))
    return members


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # none of it left
        os.killpg(pgid, signum)


def serve(model_path: Path, log: Path, timeout: float = 180.0) -> MlflowServer:
    """Start ``mlflow models serve`` on the MLflow model at ``model_path`` with MLflow's
    defaults but the host and a free port (output to ``log``) and wait until ``/ping``
    answers 200.

    The command runs as ``sys.executable -m mlflow`` in a new session (so a process group of
    its own), with this interpreter's ``bin`` folder first on ``PATH``: MLflow starts
    ``uvicorn`` by name, through ``bash``. :class:`RuntimeError` with the log if the command
    exits or ``timeout`` seconds pass first (the group stopped then).
    """
    (port,) = free_ports(1)  # free now; the server binds it a moment later
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        **NO_TELEMETRY,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_path)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=model_path.parent,
            start_new_session=True,
        )
    server = MlflowServer(popen, {"rest_port": port}, log)

    def not_started() -> RuntimeError:
        output = log.read_text(errors="replace")
        return RuntimeError(f"mlflow models serve did not start:\n{output}")

    def ready() -> bool:
        if popen.poll() is not None:
            raise not_started()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as r:
                return bool(r.status == 200)
        except OSError:  # not listening yet
            return False

    try:
        wait_until(ready, timeout, timed_out=not_started, interval=0.1)
    except BaseException:
        server.stop()
        raise
    return server
