"""The embedded backend's standby child (:mod:`tfserve_nb.backends.standby`): ``export_model``
starts it, ``serve()`` hands it its flags, it never outlives its owner, a dead or unfitting one
means a cold start, and nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tfserve_nb as tfs
from tests.helpers.waiting import wait_until
from tfserve_nb.backends import standby
from tfserve_nb.backends.child_process import ChildProcess
from tfserve_nb.backends.embedded import EmbeddedBackend, EmbeddedProcess
from tfserve_nb.processes import process_alive

READY_TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def no_standby_left(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Standbys on for the test (whatever the environment says); none waiting after it."""
    monkeypatch.delenv(standby.STANDBY_ENV, raising=False)
    yield
    pid = standby.waiting_pid()
    standby.close()
    assert pid is None or not process_alive(pid)


def prepared_pid() -> int:
    """Start a standby child, wait until it has imported the server; its pid."""
    EmbeddedBackend().prepare_standby()
    pid = standby.waiting_pid()
    assert pid is not None
    assert standby.wait_ready(READY_TIMEOUT)
    return pid


def served_pid(base_path: Path) -> int:
    """``serve()`` ``base_path`` on the embedded backend, check an answer, stop; the server's
    pid (gone once this returns)."""
    server = tfs.serve(base_path, backend="embedded")
    try:
        assert np.asarray(server.predict([[1.0]])).tolist() == [[2.5]]
        process = server.process
        assert isinstance(process, EmbeddedProcess)
        pid = process.pid
    finally:
        server.stop()
    assert not process_alive(pid)
    return pid


def test_export_model_starts_the_standby_and_serve_runs_in_it(
    tmp_path: Path, half_plus_two_models
) -> None:
    base = tmp_path / "half_plus_two"
    tfs.export_model(half_plus_two_models.models[1], base)
    pid = standby.waiting_pid()
    assert pid is not None
    EmbeddedBackend().prepare_standby()  # at most one: the waiting one stays
    assert standby.waiting_pid() == pid

    server = tfs.serve(base, backend="embedded")
    try:
        assert server.process.describe()["pid"] == str(pid)
        assert standby.waiting_pid() is None  # it is the server now
        assert np.asarray(server.predict([[1.0]])).tolist() == [[2.5]]
        assert standby.READY_LINE in server.logs()
    finally:
        server.stop()
    assert not process_alive(pid)
    assert "Shutting down the model server" in server.logs()
    assert "Fatal Python error" not in server.logs()  # its exit, the stdin watch still reading


def test_no_standby_while_a_server_of_this_process_runs(
    tmp_path: Path, half_plus_two_models
) -> None:
    base = tmp_path / "half_plus_two"
    tfs.export_model(half_plus_two_models.models[1], base, 1)
    standby.close()  # this server starts cold
    server = tfs.serve(base, backend="embedded")
    try:
        tfs.export_model(half_plus_two_models.models[1], base, 2)  # a new version to the served
        assert standby.waiting_pid() is None
    finally:
        server.stop()
    tfs.export_model(half_plus_two_models.models[1], base, 3)  # nothing served: a standby again
    assert standby.waiting_pid() is not None


def test_the_next_start_is_cold(half_plus_two_base: Path) -> None:
    pid = prepared_pid()
    assert served_pid(half_plus_two_base) == pid
    assert standby.waiting_pid() is None
    assert served_pid(half_plus_two_base) != pid


def test_a_dead_standby_means_a_cold_start(half_plus_two_base: Path) -> None:
    pid = prepared_pid()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: standby.waiting_pid() is None, "the standby to die")
    assert served_pid(half_plus_two_base) != pid


def test_a_standby_for_another_environment_is_stopped_not_used(
    half_plus_two_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = prepared_pid()
    monkeypatch.setenv("TFSERVE_NB_TEST_CHANGED", "1")  # the server would get this, not it
    assert served_pid(half_plus_two_base) != pid
    assert not process_alive(pid)


def test_turned_off_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(standby.STANDBY_ENV, "0")
    EmbeddedBackend().prepare_standby()
    assert standby.waiting_pid() is None


def test_close_stops_it() -> None:
    EmbeddedBackend().prepare_standby()
    pid = standby.waiting_pid()
    assert pid is not None
    standby.close()
    assert not process_alive(pid) and standby.waiting_pid() is None
    standby.close()  # idempotent


def test_the_child_exits_when_its_stdin_closes(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tfserve_nb.backends.standby", f"--parent_pid={os.getpid()}"]
    child = ChildProcess.start(command, tmp_path, stdin_pipe=True)
    try:
        wait_until(lambda: standby.READY_LINE in child.logs(), "the standby", READY_TIMEOUT)
        assert child.popen.stdin is not None
        child.popen.stdin.close()
        assert child.popen.wait(30) == 1
    finally:
        child.stop(grace=0)
    assert "stdin closed during start-up: exiting" in child.logs()


OWNER = """
import os, sys, time
from tfserve_nb.backends import standby
from tfserve_nb.backends.embedded import EmbeddedBackend

EmbeddedBackend().prepare_standby()
holder = os.fork()  # a forked child keeps the standby's stdin pipe open
if holder == 0:
    time.sleep(120)
    os._exit(0)
if sys.argv[1] == "ready":
    assert standby.wait_ready(120)
print(standby.waiting_pid(), holder, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("when", ["ready", "importing"])
def test_the_standby_dies_with_its_owner(when: str) -> None:
    """Killed while the standby waits for flags or still imports, even with a forked child of
    the owner holding the pipe to the standby's stdin open."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, when], stdout=subprocess.PIPE, text=True)
    holder = 0
    try:
        assert owner.stdout is not None
        pid, holder = map(int, owner.stdout.readline().split())
        assert process_alive(pid)
        owner.kill()
        owner.wait(30)
        wait_until(lambda: not process_alive(pid), "the standby to exit", 30)
    finally:
        owner.kill()
        owner.wait(30)
        if holder:
            os.kill(holder, signal.SIGKILL)
