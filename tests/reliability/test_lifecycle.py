"""Process lifecycle faults: stopping in every state, dying with the notebook, and what killed
processes leave behind (server work folders, half-written exports), plus export permissions.

Real processes on 127.0.0.1, every wait bounded; each test kills what it started (by pid) in
``finally``. Measured times to exit are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.helpers.conformance import reload_request, write_config
from tests.helpers.waiting import wait_until
from tfserve_nb.backends.local import parent_tie_args
from tfserve_nb.backends.workdir import WORK_DIR_PREFIX, make_work_dir
from tfserve_nb.config import ModelConfig
from tfserve_nb.model_server.shutdown import PARENT_POLL_SECONDS, SHUTDOWN_DEADLINE_SECONDS
from tfserve_nb.processes import (
    namespace_tag,
    owned_temp_dir,
    owner_tag,
    process_alive,
    process_start_token,
    remove_abandoned,
    stop_process,
)

REPO = Path(__file__).resolve().parents[2]
STARTUP = 120.0
"""Bound on a server's start-up (TensorFlow's import on two shared cores)."""
EXIT_BOUND = SHUTDOWN_DEADLINE_SECONDS + 4.0
"""Bound on a server's exit after SIGTERM/SIGINT: the server's own deadline, plus slack for
a loaded machine."""
PARENT_EXIT_BOUND = 15.0
"""Bound on a server's exit after its parent died (the tie, then the graceful stop)."""
ENDLESS_WARMUP = "--num_request_iterations_for_warmup=1000000000"
"""Makes a version with a warmup record load for days: a load in progress, on demand."""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")


# --- helpers -----------------------------------------------------------------------------------


def kill_pid(pid: int) -> None:
    """SIGKILL a process this test started, directly or not (it may be gone already)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Server:
    """``python -m tfserve_nb.model_server`` with ``flags``; not waited for (a start-up may not
    end). ``stop`` kills it if it still runs."""

    def __init__(self, tmp_path: Path, *flags: str) -> None:
        self.port_file = tmp_path / "ports.json"
        self.log_path = tmp_path / "server.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tfserve_nb.model_server",
                    "--ephemeral_ports",
                    f"--port_file={self.port_file}",
                    *flags,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str) -> None:
        def logged() -> bool:
            assert self.popen.poll() is None, f"server exited early:\n{self.logs()}"
            return text in self.logs()

        wait_until(logged, f"{text!r} in the server log", STARTUP)

    def grpc_port(self) -> int:
        wait_until(self.port_file.exists, "the server's port file", STARTUP)
        return int(json.loads(self.port_file.read_text())["grpc_port"])

    def time_to_exit(self, signum: int = signal.SIGTERM) -> float:
        """Send ``signum``; the seconds until the process exited (fails past EXIT_BOUND)."""
        start = time.monotonic()
        self.popen.send_signal(signum)
        try:
            self.popen.wait(EXIT_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_BOUND:g} s after {signum!r}:\n{self.logs()}")
        return time.monotonic() - start

    def stop(self) -> None:
        stop_process(self.popen, 0)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*flags: str) -> Server:
        folder = tmp_path / f"server{len(started)}"
        folder.mkdir()
        started.append(Server(folder, *flags))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def add_warmup(version_dir: Path) -> Path:
    """Give the version at ``version_dir`` (a copy of half_plus_two) one warmup record."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "hp2"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0]], tf.float32))
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        record = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
        writer.write(record.SerializeToString())
    return version_dir


def report(what: str, seconds: float) -> None:
    print(f"\n[lifecycle] {what}: {seconds:.2f} s", flush=True)


# --- 1. SIGTERM/SIGINT stop the server in every state ------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_while_starting_and_waiting_for_a_first_version(servers, tmp_path, signum):
    empty = tmp_path / "empty"
    empty.mkdir()
    server = servers(f"--model_base_path={empty}", "--model_name=m")
    server.wait_for_log("No versions of servable m found")
    seconds = server.time_to_exit(signum)
    report(f"{signum.name} while starting, no version yet", seconds)
    assert server.popen.returncode == -signum  # dies of it, as tensorflow_model_server does
    assert f"{signum.name} during start-up: exiting" in server.logs()
    assert not server.port_file.exists()


def test_stops_while_starting_and_loading_a_version(servers, half_plus_two_base):
    add_warmup(half_plus_two_base / "1")
    server = servers(f"--model_base_path={half_plus_two_base}", "--model_name=hp2", ENDLESS_WARMUP)
    server.wait_for_log("Starting to read warmup data")
    seconds = server.time_to_exit()
    report("SIGTERM while starting, loading a version", seconds)
    assert server.popen.returncode == -signal.SIGTERM


def test_stops_while_serving(servers, half_plus_two_base):
    server = servers(f"--model_base_path={half_plus_two_base}", "--model_name=hp2")
    server.grpc_port()
    seconds = server.time_to_exit()
    report("SIGTERM while serving", seconds)
    assert server.popen.returncode == 0, server.logs()
    assert "Shutting down the model server" in server.logs()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_while_a_reload_waits_for_a_first_version(
    servers, tmp_path, half_plus_two_base, signum
):
    """The attack run's hang: ``HandleReloadConfigRequest`` adding a model whose base path is
    still empty waits (on a gRPC thread the exit joins) until it has a version. The stop ends
    that wait: the caller gets UNAVAILABLE and the server exits within its deadline."""
    from tensorflow_serving.apis import model_service_pb2_grpc

    hp2 = ModelConfig("hp2", str(half_plus_two_base))
    config = write_config(tmp_path / "models.config", [hp2])
    server = servers(f"--model_config_file={config}")
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port()}")
    empty = tmp_path / "empty"
    empty.mkdir()
    answers: list[Any] = []

    def reload() -> None:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        try:
            answers.append(
                stub.HandleReloadConfigRequest(
                    reload_request([hp2, ModelConfig("empty", str(empty))]), timeout=60
                )
            )
        except grpc.RpcError as exc:
            answers.append(exc)

    caller = threading.Thread(target=reload)
    caller.start()
    try:
        server.wait_for_log("No versions of servable empty found")
        assert caller.is_alive()  # the reload waits
        seconds = server.time_to_exit(signum)
    finally:
        caller.join(70)
        channel.close()
    report(f"{signum.name} while a reload waits for a first version", seconds)
    assert server.popen.returncode == 0, server.logs()
    (answer,) = answers
    assert isinstance(answer, grpc.RpcError) and answer.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in answer.details()


def test_stops_while_loading_a_new_version(servers, half_plus_two_models, half_plus_two_base):
    """A version load TensorFlow cannot interrupt (here: a warmup that would run for days)
    holds the graceful stop up; the deadline ends the process anyway."""
    server = servers(f"--model_base_path={half_plus_two_base}", "--model_name=hp2", ENDLESS_WARMUP)
    server.grpc_port()
    staging = Path(tempfile.mkdtemp(prefix=".tmp-copy-", dir=half_plus_two_base))
    shutil.copytree(half_plus_two_models.exports[1], staging, dirs_exist_ok=True)
    os.rename(add_warmup(staging), half_plus_two_base / "2")
    server.wait_for_log(f"Starting to read warmup data for model at {half_plus_two_base / '2'}")
    seconds = server.time_to_exit()
    report("SIGTERM while loading a new version", seconds)
    assert server.popen.returncode in (0, 1), server.logs()


# --- 2. the server dies with the notebook, also when the notebook forked ----------------------

NOTEBOOK = textwrap.dedent(
    """
    import json, multiprocessing, sys, threading, time
    from tfserve_nb.backends.embedded import EmbeddedBackend
    from tfserve_nb.config import ModelConfig

    def start():
        global process
        process = EmbeddedBackend().start([ModelConfig("hp2", sys.argv[1])])

    if sys.argv[2] == "thread":  # the kernel signals the server when this thread ends
        starter = threading.Thread(target=start)
        starter.start()
        starter.join()
    else:
        start()
    children = []
    if sys.argv[2] == "fork":  # a data-loader worker: inherits the server's stdin pipe
        worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,))
        worker.start()
        children.append(worker.pid)
    workdir = str(process.workdir)
    print(json.dumps({"server": process.pid, "workdir": workdir, "children": children}))
    sys.stdout.flush()
    time.sleep(120)
    """
)
"""A notebook kernel, as far as the server can tell: starts a server through the embedded
backend (from a thread that ends, or forking a long-lived worker after), reports pids, and
waits to be killed."""


def start_notebook(base: Path, mode: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    notebook = subprocess.Popen(
        [sys.executable, "-c", NOTEBOOK, str(base), mode],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    line = notebook.stdout.readline() if notebook.stdout else ""
    if not line:
        notebook.kill()
        notebook.wait()
        pytest.fail("the notebook process did not start its server")
    return notebook, json.loads(line)


def seconds_until_gone(pid: int, token: str, bound: float) -> float:
    start = time.monotonic()
    wait_until(lambda: not process_alive(pid, token), f"process {pid} to exit", bound)
    return time.monotonic() - start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("mode", ["thread", "fork"])
def test_the_server_dies_with_a_killed_notebook(half_plus_two_base, mode):
    """kill -9 of the notebook ends its server — also when a forked worker of the notebook
    still holds the server's stdin pipe open (then end-of-file never comes: the parent-pid tie
    does it). The end of the thread that started the server does not (Linux signals it, as it
    does the parent's death). The work folder the notebook could not remove goes with the next
    start."""
    notebook, started = start_notebook(half_plus_two_base, mode)
    server, children = started["server"], started["children"]
    token = process_start_token(server)
    try:
        if mode == "thread":  # observe a while: the starter thread's end must not stop it
            time.sleep(4 * PARENT_POLL_SECONDS)
        assert process_alive(server, token)
        notebook.send_signal(signal.SIGKILL)
        notebook.wait()
        seconds = seconds_until_gone(server, token, PARENT_EXIT_BOUND)
        report(f"server exit after kill -9 of its notebook ({mode})", seconds)
        assert all(process_alive(child) for child in children)  # the worker lives on
        assert Path(started["workdir"]).is_dir()  # left behind by the killed notebook
        if mode == "thread":
            shutil.rmtree(make_work_dir())  # what the next serve() does first (both backends)
            assert not Path(started["workdir"]).exists()
    finally:
        for pid in (*children, server):
            kill_pid(pid)
        if notebook.poll() is None:
            notebook.kill()
            notebook.wait()
        shutil.rmtree(started["workdir"], ignore_errors=True)


def test_the_parent_pid_watch_alone_ends_the_server(servers, half_plus_two_base):
    """``--parent_pid`` of a process that is not our parent: no parent-death signal, only the
    pid watch (the macOS path) — the server exits once that process is gone."""
    watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        server = servers(
            f"--model_base_path={half_plus_two_base}",
            "--model_name=hp2",
            f"--parent_pid={watched.pid}",
        )
        server.grpc_port()
        watched.kill()
        watched.wait()
        start = time.monotonic()
        server.popen.wait(PARENT_EXIT_BOUND)
        report("server exit after its watched (non-parent) pid died", time.monotonic() - start)
        assert server.popen.returncode == 0, server.logs()
        assert f"parent process {watched.pid} is gone: stopping" in server.logs()
    finally:
        watched.kill()
        watched.wait()


def test_a_parent_already_gone_at_start_ends_the_start_up(servers, half_plus_two_base):
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    server = servers(
        f"--model_base_path={half_plus_two_base}", "--model_name=hp2", f"--parent_pid={gone.pid}"
    )
    server.popen.wait(STARTUP)
    assert server.popen.returncode == 1
    assert f"parent process {gone.pid} is gone during start-up: exiting" in server.logs()
    assert not server.port_file.exists()


def test_backends_pass_the_parent_tie(tmp_path, monkeypatch):
    """The local-binary backend passes ``--parent_pid`` to this package's server (which takes
    it), not to upstream's binary (which refuses unknown flags)."""
    ours = tmp_path / "tensorflow_model_server"
    ours.write_text(f'#!/bin/sh\nexec {sys.executable} -m tfserve_nb.model_server "$@"\n')
    upstream = tmp_path / "upstream_model_server"
    upstream.write_text("#!/bin/sh\necho 'TensorFlow ModelServer: 2.14.1'\n")
    for script in (ours, upstream):
        script.chmod(0o755)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    assert parent_tie_args(str(ours)) == [f"--parent_pid={os.getpid()}"]
    assert parent_tie_args(str(upstream)) == []


# --- 3. work folders of killed notebooks --------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="start times from /proc")
def test_only_folders_of_gone_owners_are_removed(tmp_path, sleeper, dead_pid):
    """A folder goes only if its owner tag names this host, boot and pid namespace, it is a
    real folder, and its owner (pid *and* start time) no longer runs."""
    here = namespace_tag()
    there = "00000000" if here != "00000000" else "11111111"
    dead = tmp_path / f"tfserve-nb-p{dead_pid}s1h{here}-abc_1234"
    reused = tmp_path / f"tfserve-nb-p{sleeper.pid}s1h{here}-abc_1234"  # pid reused since
    live = tmp_path / f"tfserve-nb-{owner_tag(sleeper.pid)}-abc_1234"
    ours = owned_temp_dir("tfserve-nb-local-", tmp_path)
    elsewhere = tmp_path / f"tfserve-nb-p{dead_pid}s1h{there}-abc_1234"  # another host
    legacy = tmp_path / "tfserve-nb-abc_1234"
    other_prefix = tmp_path / f"tfserve-nbx-p{dead_pid}s1h{here}-abc_1234"
    link = tmp_path / f"tfserve-nb-p{dead_pid}s2h{here}-link"
    for folder in (dead, reused, live, elsewhere, legacy, other_prefix):
        folder.mkdir()
        (folder / "server.log").write_text("x")
    link.symlink_to(legacy)
    removed = remove_abandoned(tmp_path, WORK_DIR_PREFIX)
    assert set(removed) == {dead, reused}
    assert not dead.exists() and not reused.exists()
    for kept in (live, ours, elsewhere, legacy, other_prefix, link):
        assert os.path.lexists(kept), kept


# --- 4. exports killed half-way ----------------------------------------------------------------

EXPORTER = textwrap.dedent(
    """
    import sys
    from tests.helpers import models
    from tfserve_nb.export import export_model

    export_model(models.half_plus_two(3), sys.argv[1], 3)
    """
)


def snapshot(base: Path, names: tuple[str, ...]) -> dict[str, str]:
    return {
        str(p.relative_to(base)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for name in names
        for p in sorted((base / name).rglob("*"))
    }


def test_a_killed_export_is_cleaned_up_by_the_next(
    tmp_path, half_plus_two_models, sleeper, dead_pid
):
    from tests.helpers import models
    from tfserve_nb.export import export_model

    base = half_plus_two_models.make_base_path(tmp_path, (1, 2))
    before = snapshot(base, ("1", "2"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    exporter = subprocess.Popen([sys.executable, "-c", EXPORTER, str(base)], env=env)
    try:

        def staged() -> list[Path]:
            assert exporter.poll() is None, "the export finished before it could be killed"
            return [p for p in base.iterdir() if p.name.startswith(".tmp-export-")]

        end = time.monotonic() + STARTUP
        while not staged():
            assert time.monotonic() < end, "the export never started writing"
            time.sleep(0.005)
        exporter.kill()
        exporter.wait()
    finally:
        if exporter.poll() is None:
            exporter.kill()
            exporter.wait()
    (leftover,) = [p for p in base.iterdir() if p.name.startswith(".tmp-export-")]
    assert f"p{exporter.pid}s" in leftover.name
    # a live export's folder (another process's, and one of ours) must survive
    live = base / f".tmp-export-4-{owner_tag(sleeper.pid)}-abc_1234"
    live.mkdir()
    (live / "saved_model.pb").write_bytes(b"half-written")
    ours = owned_temp_dir(".tmp-export-5-", base)

    exported = export_model(models.half_plus_two(3), base)

    assert exported.version == 3
    assert not leftover.exists()
    assert live.is_dir() and (live / "saved_model.pb").read_bytes() == b"half-written"
    assert ours.is_dir()
    assert snapshot(base, ("1", "2")) == before  # the user's versions are untouched
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == ["1", "2", "3"]


# --- 5. exports respect the umask ---------------------------------------------------------------


@pytest.mark.parametrize(("umask", "dirs", "files"), [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_exported_versions_respect_the_umask(tmp_path, umask, dirs, files):
    """A server running as another user (``docker --user``, a service account) must be able to
    read a version: under umask 022 directories are 0755 and files 0644 (not mkdtemp's 0700)."""
    import numpy as np

    from tests.helpers import models
    from tfserve_nb.export import export_model

    previous = os.umask(umask)
    try:
        exported = export_model(
            models.half_plus_two(1),
            tmp_path / "hp2",
            warmup_examples=np.ones((1, 1), np.float32),
        )
    finally:
        os.umask(previous)
    modes = {
        (p.is_dir(), stat.S_IMODE(p.stat().st_mode))
        for p in [exported.path, *exported.path.rglob("*")]
    }
    assert modes == {(True, dirs), (False, files)}
