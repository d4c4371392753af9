"""Set-up for the course notebooks that nbval runs (``scripts/test`` runs ``pytest --nbval-lax
--nbval-current-env tests notebooks``).

The notebooks are committed stripped; the outputs their ``# NBVAL_CHECK_OUTPUT`` cells must
print are in ``notebooks/expected/`` (``tests/helpers/notebooks.py``), and
:func:`pytest_collection_modifyitems` gives them to nbval's items as their reference outputs.

Two notebooks need something started before their kernel: notebook 05 a Docker engine and
notebook 06 object storage. nbval starts a notebook's kernel in its collector's set-up, which
pytest runs inside the first cell's ``pytest_runtest_setup``; the ``tryfirst`` hook below runs
before that, once per session and notebook, the notebook's set-up of :data:`SET_UPS`. A set-up
exports the variables the notebook's options cell reads (the kernel inherits ``os.environ``),
or says why the notebook cannot run: then each of its cells is skipped or failed with that
reason. After the notebook's last cell the exported variables are restored; at the session's end
whatever the set-up started is stopped.

**Notebook 05** serves with ``backend="docker"``. In CI no registry is reachable, so it runs the
stand-in tensorflow/serving image on the tests' private engine:

1. starts the private engine (``scripts/docker-engine start``) unless one answers already;
2. builds the stand-in image (``tests/docker/standin.py``; cached while its inputs are unchanged);
3. exports ``DOCKER_HOST`` and ``TFSERVE_NB_NOTEBOOK_DOCKER_OPTIONS``, the stand-in's
   ``DockerBackend`` options as JSON (image, host networking, the host paths it mounts, no pull;
   ``tests/docker/harness.py``).

The engine is stopped at the end if this set-up started it. Without docker.io and debootstrap,
or without root, notebook 05's cells fail when ``CI=true`` and are skipped elsewhere, with the
reason; a failed engine start or image build fails them.

**Notebook 06** pushes its model repository to S3. It starts moto's S3-compatible server on
127.0.0.1 (``tests/helpers/s3_server.py``), creates a bucket, and exports the server's client
environment (``AWS_ENDPOINT_URL``, fake credentials...; AWS config files pointed at nothing, so
a developer's ``~/.aws`` never leaks in) and ``TFSERVE_NB_NOTEBOOK_BUCKET``, the bucket. The
server is stopped at the session's end; a server that does not start fails the cells.

To refresh notebook 06 by hand (``tests/helpers/notebooks.py``) with that set-up around it::

    PYTHONPATH=. .venv/bin/python notebooks/conftest.py notebooks/06_from_notebook_to_cluster.ipynb
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker
import pytest

from tests.docker.harness import docker_problem, notebook_environment, start_engine, stop_engine
from tests.helpers.notebooks import is_checked, read_expected, with_expected
from tests.helpers.s3_server import S3Server

DOCKER_NOTEBOOK = "05_the_real_container.ipynb"
STORAGE_NOTEBOOK = "06_from_notebook_to_cluster.ipynb"
BUCKET_VARIABLE = "TFSERVE_NB_NOTEBOOK_BUCKET"
"""The variable notebook 06 reads its bucket from (unset on a user's machine)."""
BUILD_ERRORS = (docker.errors.DockerException, subprocess.SubprocessError, RuntimeError, OSError)
"""What building the stand-in raises when it fails (the engine, debootstrap, tar, the disk)."""


@dataclass
class SetUp:
    """The outcome of a notebook's set-up, kept for the session."""

    outcome: Literal["ready", "skip", "fail"]
    reason: str = ""
    stop: Callable[[], None] | None = None
    """What to call at the session's end (``None``: nothing was started)."""
    previous: dict[str, str | None] = field(default_factory=dict)
    """The exported variables' values before, to restore (``None``: unset)."""

    def export(self, variables: Mapping[str, str | None]) -> None:
        """Set ``variables`` in ``os.environ`` (``None``: unset), remembering the values before."""
        for name, value in variables.items():
            self.previous.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def restore(self) -> None:
        """Put back the variables :meth:`export` changed."""
        for name, value in self.previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.previous = {}


def _set_up_docker() -> SetUp:
    problem = docker_problem()
    if problem:
        return SetUp("fail" if os.environ.get("CI") == "true" else "skip", problem)
    try:
        host, started = start_engine()
    except (RuntimeError, subprocess.SubprocessError) as exc:
        return SetUp("fail", str(exc))
    set_up = SetUp("ready", stop=stop_engine if started else None)
    try:
        exported = notebook_environment(host)
    except BUILD_ERRORS as exc:
        set_up.outcome, set_up.reason = "fail", f"building the stand-in image failed: {exc}"
        return set_up
    set_up.export(exported)
    return set_up


def _set_up_storage() -> SetUp:
    server = S3Server()
    nowhere = Path(tempfile.mkdtemp(prefix="tfserve-nb-06-aws-"))

    def stop() -> None:
        server.stop()
        shutil.rmtree(nowhere, ignore_errors=True)

    set_up = SetUp("ready", stop=stop)
    try:
        server.start()
        bucket = server.create_bucket()
    except (AssertionError, OSError) as exc:
        set_up.outcome, set_up.reason = "fail", f"moto's S3 server did not start: {exc}"
        return set_up
    set_up.export(
        {
            **server.env(),
            "AWS_PROFILE": None,
            "AWS_SESSION_TOKEN": None,
            "AWS_ENDPOINT_URL_S3": None,
            "AWS_CONFIG_FILE": str(nowhere / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(nowhere / "no-aws-credentials"),
            BUCKET_VARIABLE: bucket,
        }
    )
    return set_up


SET_UPS: dict[str, Callable[[], SetUp]] = {
    DOCKER_NOTEBOOK: _set_up_docker,
    STORAGE_NOTEBOOK: _set_up_storage,
}
"""Each notebook that needs something started, and its set-up."""

_SET_UPS = pytest.StashKey[dict[str, SetUp]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each checked cell of a notebook its expected outputs, as nbval's reference."""
    expected: dict[Path, dict[str, list[Any]]] = {}
    positions: dict[Path, int] = {}
    for item in items:
        cell = getattr(item, "cell", None)
        if item.path.suffix != ".ipynb" or cell is None:
            continue
        positions[item.path] = positions.get(item.path, 0) + 1
        if is_checked(cell):
            if item.path not in expected:
                expected[item.path] = read_expected(item.path)
            with_expected(cell, expected[item.path], positions[item.path])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before such a notebook's kernel starts: run its set-up (first cell only), or skip or fail
    each of its cells with the reason it cannot run."""
    name = item.path.name
    if name not in SET_UPS:
        return
    done = item.config.stash.setdefault(_SET_UPS, {})
    if name not in done:
        done[name] = SET_UPS[name]()
    set_up = done[name]
    if set_up.outcome == "skip":
        pytest.skip(set_up.reason)
    if set_up.outcome == "fail":
        pytest.fail(set_up.reason, pytrace=False)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After such a notebook's last cell: restore the variables its set-up exported."""
    if nextitem is not None and nextitem.path == item.path:
        return
    set_up = item.config.stash.get(_SET_UPS, {}).get(item.path.name)
    if set_up is not None:
        set_up.restore()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop what the set-ups started."""
    for set_up in session.config.stash.get(_SET_UPS, {}).values():
        if set_up.stop is not None:
            set_up.stop()


def _refresh_with_storage(paths: list[str]) -> None:
    """Refresh notebook 06 (``tests.helpers.notebooks.refresh``) inside its storage set-up."""
    from tests.helpers.notebooks import refresh

    set_up = _set_up_storage()
    try:
        if set_up.outcome != "ready":
            raise SystemExit(set_up.reason)
        for path in paths:
            refresh(Path(path))
            print(f"refreshed {path}")
    finally:
        set_up.restore()
        if set_up.stop is not None:
            set_up.stop()


if __name__ == "__main__":
    _refresh_with_storage(sys.argv[1:])
