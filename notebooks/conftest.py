"""Set-up for the course notebooks that nbval runs (``scripts/test`` runs ``pytest --nbval-lax
--nbval-current-env tests notebooks``).

Notebook 05 serves with ``backend="docker"``. In CI no registry is reachable, so it runs the
stand-in tensorflow/serving image on the tests' private engine. nbval starts a notebook's kernel
in its collector's set-up, which pytest runs inside the first cell's ``pytest_runtest_setup``;
the ``tryfirst`` hook below runs before that, once per session:

1. starts the private engine (``scripts/docker-engine start``) unless one answers already;
2. builds the stand-in image (``tests/docker/standin.py``; cached while its inputs are unchanged);
3. exports ``DOCKER_HOST`` and ``TFSERVE_NB_NOTEBOOK_DOCKER_OPTIONS``, the stand-in's
   ``DockerBackend`` options as JSON (image, host networking, the host paths it mounts, no pull;
   ``tests/docker/harness.py``). The kernel inherits ``os.environ``; the notebook's options cell
   reads them.

After the notebook's last cell the environment is restored; at the session's end the engine is
stopped if this hook started it. Without docker.io and debootstrap, or without root, notebook
05's cells fail when ``CI=true`` and are skipped elsewhere, with the reason; a failed engine
start or image build fails them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from typing import Literal

import docker
import pytest

from tests.docker.harness import docker_problem, notebook_environment, start_engine, stop_engine

DOCKER_NOTEBOOK = "05_the_real_container.ipynb"
BUILD_ERRORS = (docker.errors.DockerException, subprocess.SubprocessError, RuntimeError, OSError)
"""What building the stand-in raises when it fails (the engine, debootstrap, tar, the disk)."""


@dataclass
class DockerSetUp:
    """The outcome of setting Docker up for :data:`DOCKER_NOTEBOOK`, kept for the session."""

    outcome: Literal["ready", "skip", "fail"]
    reason: str = ""
    started_engine: bool = False
    previous: dict[str, str | None] = field(default_factory=dict)
    """The exported variables' values before, to restore (``None``: unset)."""


_SET_UP = pytest.StashKey[DockerSetUp]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the docker notebook's kernel starts: set Docker up (first cell only), or skip or
    fail each of its cells with the reason it cannot run."""
    if item.path.name != DOCKER_NOTEBOOK:
        return
    if _SET_UP not in item.config.stash:
        item.config.stash[_SET_UP] = _set_up_docker()
    set_up = item.config.stash[_SET_UP]
    if set_up.outcome == "skip":
        pytest.skip(set_up.reason)
    if set_up.outcome == "fail":
        pytest.fail(set_up.reason, pytrace=False)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the docker notebook's last cell: restore the variables :func:`_set_up_docker`
    exported."""
    if item.path.name != DOCKER_NOTEBOOK or (nextitem is not None and nextitem.path == item.path):
        return
    set_up = item.config.stash.get(_SET_UP, None)
    if set_up is None:
        return
    for name, value in set_up.previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    set_up.previous = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the engine if :func:`_set_up_docker` started it."""
    set_up = session.config.stash.get(_SET_UP, None)
    if set_up is not None and set_up.started_engine:
        stop_engine()


def _set_up_docker() -> DockerSetUp:
    problem = docker_problem()
    if problem:
        return DockerSetUp("fail" if os.environ.get("CI") == "true" else "skip", problem)
    try:
        host, started = start_engine()
    except (RuntimeError, subprocess.SubprocessError) as exc:
        return DockerSetUp("fail", str(exc))
    set_up = DockerSetUp("ready", started_engine=started)
    try:
        exported = notebook_environment(host)
    except BUILD_ERRORS as exc:
        set_up.outcome, set_up.reason = "fail", f"building the stand-in image failed: {exc}"
        return set_up
    set_up.previous = {name: os.environ.get(name) for name in exported}
    os.environ.update(exported)
    return set_up
