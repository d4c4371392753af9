"""The docker backend against a real Docker engine and the stand-in tensorflow/serving image.

The issue's bar: serve a model in a container, predict over gRPC and REST, export a new version
into the mounted path and see the container switch to it, set labels through a config reload,
stop and find no container left — also after the notebook process is killed and a new serve
sweeps its container; and each error case gives its message.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docker
import numpy as np
import pytest

from tfserve_nb.backends.auto import choose_backend
from tfserve_nb.backends.docker.backend import DockerBackend
from tfserve_nb.backends.docker.container import (
    LABEL_CONFIG_DIR,
    LABEL_OWNER_PID,
    container_error,
    prepare_container,
)
from tfserve_nb.config import ModelConfig
from tfserve_nb.errors import BackendUnavailableError, ServerStartError
from tfserve_nb.handle import serve

pytestmark = pytest.mark.docker

MakeBackend = Callable[..., DockerBackend]
Containers = Callable[[], list[str]]


def test_serve_predict_switch_version_label_and_stop(
    make_docker_backend: MakeBackend,
    half_plus_two_models,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    tfserve_containers: Containers,
) -> None:
    base = half_plus_two_models.make_base_path(tmp_path)
    started = time.monotonic()
    server = serve(base, backend=make_docker_backend())
    print(f"container serving in {time.monotonic() - started:.1f} s")
    try:
        assert server.backend == "docker"
        (name,) = tfserve_containers()
        container = docker_client.containers.get(name)
        assert container.labels[LABEL_OWNER_PID] == str(os.getpid())
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert mounts["/models/half_plus_two"]["Source"] == str(base)
        assert mounts["/models/half_plus_two"]["RW"] is False

        np.testing.assert_allclose(server.predict([[1.0]]), [[2.5]])
        answer = server.client.rest(
            "POST", "/v1/models/half_plus_two:predict", {"instances": [[1.0]]}
        )
        assert answer == {"predictions": [[2.5]]}

        half_plus_two_models.add_version(base, 2)
        assert server.wait_until_available(2, timeout=60) == 2
        result = server.predict_detailed([[1.0]])
        assert result.version == 2
        np.testing.assert_allclose(result.value(), [[3.5]])
        assert "half_plus_two" in server.logs()
    finally:
        server.stop()
    assert not tfserve_containers()
    assert not Path(container.labels[LABEL_CONFIG_DIR]).exists()


def test_policy_and_labels_through_config_reloads(
    make_docker_backend: MakeBackend, half_plus_two_models, tmp_path: Path
) -> None:
    base = half_plus_two_models.make_base_path(tmp_path, versions=(1, 2))
    with serve(base, backend=make_docker_backend()) as server:
        server.set_version_policy("all", timeout=30)
        assert server.wait_until_available(1, timeout=30) == 1
        server.set_labels({"stable": 1, "canary": 2})
        np.testing.assert_allclose(server.predict([[1.0]], label="stable"), [[2.5]])
        np.testing.assert_allclose(server.predict([[1.0]], label="canary"), [[3.5]])
    with serve(base, backend=make_docker_backend(), labels={"stable": 2}) as server:
        np.testing.assert_allclose(server.predict([[1.0]], label="stable"), [[3.5]])


def test_several_models_go_through_a_generated_config_file(
    make_docker_backend: MakeBackend, half_plus_two_models, multi_io_models, tmp_path: Path
) -> None:
    models = [
        ModelConfig("half_plus_two", str(half_plus_two_models.make_base_path(tmp_path))),
        ModelConfig("multi_io", str(multi_io_models.make_base_path(tmp_path))),
    ]
    with serve(models, backend=make_docker_backend()) as server:
        command = server.process.container.attrs["Args"]
        assert "--model_config_file=/tfserve-nb/models.config" in command
        np.testing.assert_allclose(server.predict([[4.0]]), [[4.0]])
        answer = server.predict({"a": [[1.0, 2.0]], "b": [[3.0, 4.0, 5.0]]}, model_name="multi_io")
        np.testing.assert_allclose(answer["sum"], [[15.0]])


REPO = Path(__file__).resolve().parents[2]
KILLED_NOTEBOOK = """
import json, sys, time
from tfserve_nb.backends.docker import DockerBackend
from tfserve_nb.handle import serve
server = serve(sys.argv[1], backend=DockerBackend(**json.loads(sys.argv[2])))
print(server.process.spec.name, flush=True)
time.sleep(600)
"""


def test_a_killed_notebook_leaves_a_container_that_the_next_serve_sweeps(
    make_docker_backend: MakeBackend,
    half_plus_two_models,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    tfserve_containers: Containers,
    standin_options: dict[str, object],
) -> None:
    base = half_plus_two_models.make_base_path(tmp_path)
    notebook = subprocess.Popen(
        [sys.executable, "-c", KILLED_NOTEBOOK, str(base), json.dumps(standin_options)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        stale = notebook.stdout.readline().strip()
        assert stale, "the notebook process did not start its server"
    finally:
        notebook.send_signal(signal.SIGKILL)
        notebook.wait()
    assert tfserve_containers() == [stale]
    assert docker_client.containers.get(stale).status == "running"

    with serve(base, backend=make_docker_backend()) as server:
        assert tfserve_containers() == [server.process.spec.name]
    assert not tfserve_containers()


def test_published_ports_bind_loopback_only(
    make_docker_backend: MakeBackend, half_plus_two_models, tmp_path: Path
) -> None:
    """The engine here has no bridge network, so the container is created, not started."""
    base = half_plus_two_models.make_base_path(tmp_path)
    backend = make_docker_backend(network_mode=None, rest_port=free_port())
    process = backend.create([ModelConfig("half_plus_two", str(base))])
    try:
        bindings = process.container.attrs["HostConfig"]["PortBindings"]
        assert bindings == {
            "8500/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
            "8501/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(backend.rest_port)}],
        }
        assert process.container.attrs["HostConfig"]["NetworkMode"] in ("default", "bridge")
    finally:
        process.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- error cases ----------------------------------------------------------------------------------


def test_no_engine_says_how_to_get_one(tmp_path: Path, half_plus_two_models) -> None:
    dead = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dead))  # a socket nobody listens on: a stopped engine
    base = half_plus_two_models.make_base_path(tmp_path)
    with pytest.raises(BackendUnavailableError) as caught:
        serve(base, backend=DockerBackend(base_url=f"unix://{dead}"))
    message = str(caught.value)
    assert f"No Docker engine answers at unix://{dead} (Connection refused)" in message
    assert "Install Docker and start it" in message
    assert "backend='embedded'" in message


def test_an_engine_that_stopped_says_how_to_get_one(docker_host: str) -> None:
    """A second private engine, started and then really stopped (its own data and exec roots,
    beside the session's engine), is what the backend meets when Docker has gone away."""
    import shutil
    import tempfile

    engine_dir = tempfile.mkdtemp(prefix="tfnb-eng-", dir="/tmp")  # short: socket path limits
    env = {**os.environ, "TFSERVE_NB_DOCKER_DIR": engine_dir}
    engine = [str(REPO / "scripts" / "docker-engine")]
    try:
        started = subprocess.run([*engine, "start"], env=env, capture_output=True, text=True)
        assert started.returncode == 0, started.stderr
        host = started.stdout.strip().splitlines()[-1].removeprefix("DOCKER_HOST=")
        assert host != docker_host
        DockerBackend(base_url=host).check_available()  # answers while running
        subprocess.run([*engine, "stop"], env=env, check=True, capture_output=True)
        with pytest.raises(BackendUnavailableError) as caught:
            DockerBackend(base_url=host).check_available()
        message = str(caught.value)
        assert f"No Docker engine answers at {host}" in message
        assert "Install Docker and start it" in message and "backend='embedded'" in message
    finally:
        subprocess.run([*engine, "stop"], env=env, capture_output=True)
        shutil.rmtree(engine_dir, ignore_errors=True)


def test_missing_image_is_not_pulled_and_says_how_to_get_it(
    make_docker_backend: MakeBackend, half_plus_two_models, tmp_path: Path
) -> None:
    base = half_plus_two_models.make_base_path(tmp_path)
    backend = make_docker_backend(image="tfserve-nb/absent:1")
    assert not backend.image_present()
    with pytest.raises(BackendUnavailableError, match="docker pull tfserve-nb/absent:1") as caught:
        serve(base, backend=backend)
    assert "is not present locally" in str(caught.value) and "docker load" in str(caught.value)


def test_base_path_that_does_not_exist(make_docker_backend: MakeBackend, tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match="does not exist"):
        serve(ModelConfig("gone", str(tmp_path / "gone")), backend=make_docker_backend())


def test_base_path_the_engine_cannot_see_is_explained(
    docker_client: docker.DockerClient, standin_image: str, tmp_path: Path
) -> None:
    """What Docker answers for a path missing on its side (a remote engine, Docker Desktop)."""
    spec = prepare_container(
        [ModelConfig("m", str(tmp_path / "not-on-the-engine"))],
        [],
        image=standin_image,
        config_dir=tmp_path,
    )
    with pytest.raises(docker.errors.APIError) as refused:
        docker_client.containers.create(**spec.create_kwargs())
    error = container_error(str(refused.value.explanation), spec.mounts)
    assert f"Docker cannot see {tmp_path / 'not-on-the-engine'}" in str(error)
    assert "File sharing" in str(error)


def test_no_numeric_version_is_caught_before_starting(
    make_docker_backend: MakeBackend,
    half_plus_two_models,
    tmp_path: Path,
    tfserve_containers: Containers,
) -> None:
    base = tmp_path / "half_plus_two"
    (base / "v1").mkdir(parents=True)
    with pytest.raises(
        ServerStartError, match="No versions of servable half_plus_two found"
    ) as caught:
        serve(base, backend=make_docker_backend())
    assert "name your leaf directory as a number" in str(caught.value)
    assert not tfserve_containers()


def test_port_taken(make_docker_backend: MakeBackend, half_plus_two_models, tmp_path: Path) -> None:
    base = half_plus_two_models.make_base_path(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"Port {port} \\(gRPC\\) .* already in use"):
            serve(base, backend=make_docker_backend(grpc_port=port))


def test_a_server_that_fails_to_start_shows_its_last_output(
    make_docker_backend: MakeBackend, tmp_path: Path
) -> None:
    base = tmp_path / "broken"
    (base / "1").mkdir(parents=True)  # a version directory without a SavedModel
    with pytest.raises(ServerStartError, match="exited during start-up") as caught:
        serve(base, backend=make_docker_backend(), extra_args=["--max_num_load_retries=0"])
    assert "Likely cause: a version directory holds no SavedModel" in str(caught.value)
    assert "/models/broken/1" in caught.value.logs


def test_auto_picks_docker_when_the_engine_and_image_are_there(standin_image: str) -> None:
    backend, reason = choose_backend(image=standin_image, network_mode="host")
    assert isinstance(backend, DockerBackend)
    assert reason.startswith("Using Docker") and standin_image in reason
    backend, reason = choose_backend(image="tfserve-nb/absent:1", binary="no-such-binary-here")
    assert backend.name == "embedded"
    assert "the Docker image tfserve-nb/absent:1 is not present" in reason


def test_the_dashboard_drives_a_container_as_it_drives_the_embedded_server(
    make_docker_backend: MakeBackend, half_plus_two_models, tmp_path: Path
) -> None:
    """Only the protocol is used, so pin, labels, follow-latest and the predictions work the
    same against the tensorflow/serving container (its config reloads carry container paths)."""
    from tests.helpers.waiting import wait_until
    from tfserve_nb.widgets import Dashboard

    base = half_plus_two_models.make_base_path(tmp_path, versions=(1, 2))
    with serve(base, backend=make_docker_backend(), version_policy=1) as server:
        board = Dashboard(server, examples=[[1.0], [4.0]], poll_interval=0.1)
        try:
            assert "docker" in board.status.summary.value
            wait_until(lambda: board.monitor.served == (1,), what="v1 served")
            assert board.monitor.known_versions == (1, 2)  # read from the host's base path
            assert board.pin([1, 2]).message == "Now serving versions 1 and 2."
            assert board.move_label("canary", 2).ok
            np.testing.assert_allclose(server.predict([[1.0]], label="canary"), [[3.5]])
            board.refresh()
            assert board.predictions.shown_versions == (1, 2)
            outcome = board.move_label("canary", None)
            assert outcome.ok, outcome
            assert board.follow_latest().message == "Now serving version 2."
            assert [s.version for s in server.status() if s.state == "AVAILABLE"] == [2]
        finally:
            board.close()
