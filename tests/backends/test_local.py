"""The local binary backend, run with a ``tensorflow_model_server`` shim on a temporary PATH that
execs this project's model server, and the start-up plumbing every backend shares."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.waiting import wait_until
from tfserve_nb.backends.child_process import last_lines
from tfserve_nb.backends.local import LocalBinaryBackend
from tfserve_nb.backends.startup import (
    check_managed_flags,
    check_model_dirs,
    free_ports,
    likely_cause,
    wait_until_serving,
)
from tfserve_nb.client import ServingClient
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import All
from tfserve_nb.errors import BackendUnavailableError, ConfigError, ServerStartError
from tfserve_nb.processes import process_alive

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``tensorflow_model_server`` first on PATH: ``python -m tfserve_nb.model_server``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "tensorflow_model_server"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m tfserve_nb.model_server "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return shim


def test_serves_over_grpc_and_rest_and_stops(shim: Path, half_plus_two_base: Path) -> None:
    backend = LocalBinaryBackend()
    assert backend.binary_path() == str(shim)
    process = backend.start([ModelConfig("half_plus_two", str(half_plus_two_base))])
    try:
        assert process.describe()["binary"] == str(shim)
        client = ServingClient(process.grpc_address, process.rest_url, model_name="half_plus_two")
        assert client.predict([[1.0]]).tolist() == [[2.5]]
        assert client.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [[1.0]]}) == {
            "predictions": [[2.5]]
        }
        client.close()
        assert process.logs()
    finally:
        process.stop()
    assert not process.alive()
    assert process.logs(tail=1) == last_lines(process.logs(), 1)
    assert process.logs(tail=0) == ""
    process.stop()  # idempotent


def test_several_versions_go_through_a_config_file(
    shim: Path, half_plus_two_models, half_plus_two_base: Path
) -> None:
    half_plus_two_models.add_version(half_plus_two_base, 2)
    model = ModelConfig("half_plus_two", str(half_plus_two_base), version_policy=All())
    process = LocalBinaryBackend().start([model])
    try:
        assert any(arg.startswith("--model_config_file=") for arg in process.command)
        client = ServingClient(process.grpc_address, process.rest_url, model_name="half_plus_two")
        assert client.wait_until_available(1, timeout=60) == 1
        assert [s.version for s in client.status()] == [2, 1]
        client.close()
    finally:
        process.stop()


DYING_PARENT = """
import sys, time
from tfserve_nb.backends.local import LocalBinaryBackend
from tfserve_nb.config import ModelConfig
process = LocalBinaryBackend().start([ModelConfig("half_plus_two", sys.argv[1])])
print(process.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_server_dies_with_its_parent(shim: Path, half_plus_two_base: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", DYING_PARENT, str(half_plus_two_base)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server_pid = int(parent.stdout.readline())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    wait_until(
        lambda: not process_alive(server_pid),
        f"server {server_pid} to die with its parent",
        timeout=30,
        interval=0.1,
    )


def test_a_missing_binary_says_what_to_do() -> None:
    backend = LocalBinaryBackend(binary="no-such-tensorflow-model-server")
    assert backend.binary_path() is None
    with pytest.raises(
        BackendUnavailableError, match="No no-such-tensorflow-model-server"
    ) as caught:
        backend.check_available()
    assert "backend='embedded'" in str(caught.value)


def test_a_server_that_exits_shows_its_output(shim: Path, half_plus_two_base: Path) -> None:
    with pytest.raises(ServerStartError, match="exited during start-up") as caught:
        LocalBinaryBackend().start(
            [ModelConfig("half_plus_two", str(half_plus_two_base))],
            extra_args=["--no_such_flag=1"],
        )
    assert "no_such_flag" in caught.value.logs


def test_a_taken_port_is_refused_before_starting(shim: Path, half_plus_two_base: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"Port {port} \\(REST\\) .* already in use"):
            LocalBinaryBackend(rest_port=port).start(
                [ModelConfig("half_plus_two", str(half_plus_two_base))]
            )


def test_flags_the_backend_sets_are_refused() -> None:
    check_managed_flags(["--enable_batching", "--file_system_poll_wait_seconds=1"])
    for flag in ("--port=1", "-rest_api_port=2", "--model_config_file=/x", "--model_name"):
        with pytest.raises(ConfigError, match="set by the backend"):
            check_managed_flags([flag])


def test_model_directories_are_checked_before_starting(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match="does not exist"):
        check_model_dirs([ModelConfig("m", str(tmp_path / "m"))])
    (tmp_path / "m" / "v1").mkdir(parents=True)
    (tmp_path / "m" / "2.txt").touch()
    with pytest.raises(ServerStartError) as caught:
        check_model_dirs([ModelConfig("m", str(tmp_path / "m"))])
    assert str(caught.value).startswith(
        f"No versions of servable m found under base path {tmp_path / 'm'}. Did you forget to "
        "name your leaf directory as a number (eg. '/1/')? Found: 2.txt, v1."
    )
    (tmp_path / "m" / "0001").mkdir()
    check_model_dirs([ModelConfig("m", str(tmp_path / "m")), ModelConfig("g", "gs://b/g")])


@pytest.mark.parametrize(
    ("output", "cause"),
    [
        (
            "W No versions of servable digits found under base path /models/digits. Did you ...",
            "model digits has no numeric version directory under /models/digits.",
        ),
        ("E0000 Failed to add port 0.0.0.0:8500: Address in use", "a port the server wants"),
        ("exec /usr/bin/tf_serving_entrypoint.sh: exec format error", "another CPU architecture"),
        ("Illegal instruction (core dumped)", "lacks instructions"),
        ("all fine", None),
    ],
)
def test_likely_cause_reads_the_server_output(output: str, cause: str | None) -> None:
    found = likely_cause(output)
    assert found == cause if cause is None else cause in found


def test_waiting_gives_up_at_the_deadline_with_output_and_cause() -> None:
    grpc_port, rest_port = free_ports(2)
    output = "\n".join(
        [f"line {i}" for i in range(100)]
        + ["No versions of servable m found under base path /m. Did you forget ..."]
    )
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"did not serve m on .* within 0.5 s") as caught:
        wait_until_serving(
            f"127.0.0.1:{grpc_port}",
            f"http://127.0.0.1:{rest_port}",
            ["m"],
            timeout=0.5,
            alive=lambda: True,
            logs=lambda: output,
            what="test server",
        )
    assert time.monotonic() - started < 10
    assert "Likely cause: model m has no numeric version directory" in str(caught.value)
    assert caught.value.logs.splitlines()[0] == "line 61"  # the last 40 lines


def test_free_ports_are_distinct() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3
