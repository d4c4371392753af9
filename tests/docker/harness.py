"""What a test session needs to run containers: the private Docker engine of
``scripts/docker-engine``, the stand-in image's :class:`DockerBackend` options, and the
environment notebook 05 reads them from.

It serves the session set-ups that run containers (``notebooks/conftest.py`` for notebook 05's
kernel; ``tests/docker/conftest.py`` takes the same steps). A session calls
:func:`docker_problem` first (a reason to fail in CI or skip elsewhere), then
:func:`start_engine`, and at its end :func:`stop_engine` only if :func:`start_engine` said it
started the engine.

By hand, e.g. before refreshing notebook 05 with ``python -m tests.helpers.notebooks``, start the
engine, build the stand-in and export what the notebook reads::

    eval "$(.venv/bin/python -m tests.docker.harness)"   # later: scripts/docker-engine stop
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import docker

from tests.docker.standin import ensure_standin_image, standin_volumes

__all__ = [
    "ENGINE",
    "NOTEBOOK_OPTIONS",
    "SET_UP",
    "docker_problem",
    "notebook_environment",
    "standin_options",
    "start_engine",
    "stop_engine",
]

ENGINE = Path(__file__).resolve().parents[2] / "scripts" / "docker-engine"
SET_UP = "apt-get install -y docker.io debootstrap"
ENGINE_TIMEOUT = 120.0
"""Seconds ``scripts/docker-engine`` may take (it waits 60 s for dockerd, 30 s to stop it)."""
NOTEBOOK_OPTIONS = "TFSERVE_NB_NOTEBOOK_DOCKER_OPTIONS"
"""The variable notebook 05 reads its ``DockerBackend`` options from (a JSON object; unset on a
user's machine: the real image with the backend's defaults)."""


def docker_problem() -> str | None:
    """Why no private engine can run here (``dockerd`` or ``debootstrap`` missing, not root), or
    ``None`` when it can."""
    search_path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [
        tool for tool in ("dockerd", "debootstrap") if not shutil.which(tool, path=search_path)
    ]
    if missing:
        return (
            f"{' and '.join(missing)} not installed: the Docker tests need Debian's docker.io "
            f"and debootstrap ({SET_UP})"
        )
    if os.geteuid() != 0:
        return "the Docker tests start dockerd, which needs root"
    return None


def _engine(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENGINE), command], capture_output=True, text=True, timeout=ENGINE_TIMEOUT
    )


def start_engine() -> tuple[str, bool]:
    """Start the private engine unless one answers already; return its ``DOCKER_HOST``
    (``unix://...``) and whether this call started it. Raises :class:`RuntimeError` with the
    script's complaint when the engine does not come up."""
    was_running = _engine("status").returncode == 0
    started = _engine("start")
    if started.returncode != 0:
        raise RuntimeError(f"scripts/docker-engine start failed:\n{started.stderr}")
    host = started.stdout.strip().splitlines()[-1].removeprefix("DOCKER_HOST=")
    return host, not was_running


def stop_engine() -> None:
    """Stop the private engine (its containers go with it)."""
    _engine("stop")


def standin_options(image: str) -> dict[str, object]:
    """:class:`~tfserve_nb.backends.docker.backend.DockerBackend` options (JSON-able) for the
    stand-in ``image``: host networking (the private engine has no bridge network), the host
    paths its server needs (:func:`~tests.docker.standin.standin_volumes`), never pulling."""
    return {"image": image, "network_mode": "host", "volumes": standin_volumes(), "pull": False}


def notebook_environment(host: str) -> dict[str, str]:
    """The variables notebook 05's kernel needs to serve the stand-in on the engine at ``host``:
    ``DOCKER_HOST`` and :data:`NOTEBOOK_OPTIONS` (:func:`standin_options` as JSON). Builds the
    stand-in image first unless it is up to date (minutes the first time)."""
    client = docker.DockerClient(base_url=host)
    try:
        image = ensure_standin_image(client)
    finally:
        client.close()
    return {"DOCKER_HOST": host, NOTEBOOK_OPTIONS: json.dumps(standin_options(image))}


if __name__ == "__main__":
    for name, value in notebook_environment(start_engine()[0]).items():
        print(f"export {name}={shlex.quote(value)}")
