"""The docker backend's pure parts: container specification, error classification, pull progress
and owner liveness. No Docker engine needed (tests/docker/ runs the real one)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from docker.types import Mount

from tfserve_nb.backends.docker.backend import DockerBackend
from tfserve_nb.backends.docker.container import (
    LABEL_CREATED,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    ContainerSpec,
    container_error,
    container_models,
    owner_alive,
    owner_labels,
    prepare_container,
    published_port,
)
from tfserve_nb.backends.docker.engine import check_architecture, engine_error
from tfserve_nb.backends.docker.image import PullProgress, default_image, image_error, pull_image
from tfserve_nb.backends.docker.server_process import DockerServerProcess
from tfserve_nb.config import ModelConfig, parse_config_file
from tfserve_nb.core.version_policy import All, Latest
from tfserve_nb.errors import BackendUnavailableError, ConfigError, ServerStartError
from tfserve_nb.processes import process_start_token


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    directory.mkdir()
    return directory


def spec_for(config_dir: Path, *models: ModelConfig, **kwargs) -> ContainerSpec:
    kwargs.setdefault("image", "tensorflow/serving:2.21.0")
    return prepare_container(models, kwargs.pop("extra_args", ()), config_dir=config_dir, **kwargs)


def test_default_image_matches_installed_tensorflow() -> None:
    version = metadata.version("tensorflow")
    assert default_image() == f"tensorflow/serving:{version.split('rc')[0]}"
    assert DockerBackend().image == default_image()


def test_one_model_is_mounted_at_models_name_and_named_by_model_name(config_dir: Path) -> None:
    spec = spec_for(config_dir, ModelConfig("digits", "/data/models/digits"))
    assert spec.environment == {"MODEL_NAME": "digits", "MODEL_BASE_PATH": "/models"}
    assert spec.mounts == (("/data/models/digits", "/models/digits"),)
    assert spec.command == ()
    assert spec.ports == {"8500/tcp": ("127.0.0.1", None), "8501/tcp": ("127.0.0.1", None)}
    assert not any(config_dir.iterdir())


def test_labels_policies_and_several_models_use_a_config_file_with_container_paths(
    config_dir: Path,
) -> None:
    models = (
        ModelConfig("digits", "/data/digits", version_policy=All(), labels={"stable": 1}),
        ModelConfig("other", "/elsewhere/other"),
    )
    spec = spec_for(config_dir, *models)
    assert spec.command == ("--model_config_file=/tfserve-nb/models.config",)
    assert "MODEL_NAME" not in spec.environment
    assert spec.mounts == (
        ("/data/digits", "/models/digits"),
        ("/elsewhere/other", "/models/other"),
        (str(config_dir), "/tfserve-nb"),
    )
    served = parse_config_file((config_dir / "models.config").read_text())
    assert [(m.name, m.base_path) for m in served] == [
        ("digits", "/models/digits"),
        ("other", "/models/other"),
    ]
    assert served[0].labels == {"stable": 1} and served[0].version_policy == All()


@pytest.mark.parametrize(
    ("model", "needs_file"),
    [
        (ModelConfig("m", "/m"), False),
        (ModelConfig("m", "/m", version_policy=Latest(0)), False),
        (ModelConfig("m", "/m", version_policy=Latest(2)), True),
        (ModelConfig("m", "/m", labels={"canary": 2}), True),
    ],
)
def test_only_the_default_single_model_goes_without_a_config_file(
    config_dir: Path, model: ModelConfig, needs_file: bool
) -> None:
    spec = spec_for(config_dir, model)
    assert any(arg.startswith("--model_config_file=") for arg in spec.command) is needs_file


def test_host_network_passes_ports_after_the_model_and_before_extra_flags(config_dir: Path) -> None:
    spec = spec_for(
        config_dir,
        ModelConfig("m", "/m"),
        network_mode="host",
        grpc_port=9000,
        rest_port=9001,
        extra_args=["--enable_model_warmup=false"],
    )
    assert spec.command == ("--port=9000", "--rest_api_port=9001", "--enable_model_warmup=false")
    assert spec.ports == {}
    kwargs = spec.create_kwargs()
    assert kwargs["network_mode"] == "host" and "ports" not in kwargs


def test_host_network_needs_both_ports(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="both ports"):
        spec_for(config_dir, ModelConfig("m", "/m"), network_mode="host", grpc_port=9000)


def test_local_files_named_by_flags_are_copied_into_the_mounted_directory(
    config_dir: Path, tmp_path: Path
) -> None:
    batching = tmp_path / "batching.txt"
    batching.write_text("max_batch_size { value: 8 }")
    spec = spec_for(
        config_dir,
        ModelConfig("m", "/m"),
        extra_args=[
            "--enable_batching",
            f"--batching_parameters_file={batching}",
            "--monitoring_config_file=/not/here.txt",
        ],
    )
    assert spec.command == (
        "--enable_batching",
        "--batching_parameters_file=/tfserve-nb/1-batching.txt",
        "--monitoring_config_file=/not/here.txt",
    )
    assert (config_dir / "1-batching.txt").read_text() == batching.read_text()
    assert (str(config_dir), "/tfserve-nb") in spec.mounts


def test_create_kwargs_bind_read_only_publish_on_loopback_and_label(config_dir: Path) -> None:
    spec = spec_for(
        config_dir,
        ModelConfig("my model/1", "/m"),
        volumes={"/opt/python": "/opt/python"},
        labels={"tfserve-nb.owner-pid": "42"},
        grpc_port=8500,
    )
    kwargs = spec.create_kwargs()
    assert kwargs["mounts"] == [
        Mount("/models/my model/1", "/m", type="bind", read_only=True),
        Mount("/opt/python", "/opt/python", type="bind", read_only=True),
    ]
    assert kwargs["ports"] == {"8500/tcp": ("127.0.0.1", 8500), "8501/tcp": ("127.0.0.1", None)}
    assert kwargs["init"] is True and kwargs["detach"] is True
    assert kwargs["name"].startswith("tfserve-nb-my-model-1-")
    assert kwargs["labels"] == {
        "tfserve-nb.owner-pid": "42",
        "tfserve-nb.config-dir": str(config_dir),
        "tfserve-nb.models": "my model/1",
    }


def test_owner_labels_name_this_process() -> None:
    labels = owner_labels()
    assert labels[LABEL_OWNER_PID] == str(os.getpid())
    assert labels[LABEL_OWNER_START] == process_start_token(os.getpid())
    assert labels[LABEL_OWNER_HOST] and labels[LABEL_CREATED]


def test_published_port_reads_the_loopback_binding() -> None:
    attrs = {
        "NetworkSettings": {"Ports": {"8500/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]}}
    }
    assert published_port(attrs, 8500) == 49153
    with pytest.raises(ServerStartError, match="8501"):
        published_port(attrs, 8501)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="start tokens need /proc")
def test_owner_alive_tells_running_zombie_reaped_and_reused_pids_apart() -> None:
    assert owner_alive(os.getpid(), process_start_token(os.getpid()))
    assert not owner_alive(os.getpid(), "1")  # same pid, another start time: pid reused
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_start_token(child.pid)
    assert token
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped: a zombie
    assert not owner_alive(child.pid, token)
    child.wait()
    assert not owner_alive(child.pid, token)


@pytest.mark.parametrize(
    ("client_error", "expected"),
    [
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "FileNotFoundError(2, 'No such file or directory'))",
            "No Docker engine answers at unix:///var/run/docker.sock (No such file or directory)",
        ),
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "ConnectionRefusedError(111, 'Connection refused'))",
            "(Connection refused)",
        ),
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "PermissionError(13, 'Permission denied'))",
            "Permission denied on the Docker socket unix:///var/run/docker.sock. Add your user to "
            "the docker group",
        ),
    ],
)
def test_engine_errors_say_what_is_wrong_and_what_to_do(client_error: str, expected: str) -> None:
    error = engine_error(client_error, "unix:///var/run/docker.sock")
    assert isinstance(error, BackendUnavailableError)
    assert expected in str(error)
    assert "backend='embedded'" in str(error)


def test_image_error_tells_how_to_get_the_image() -> None:
    message = str(image_error("tensorflow/serving:2.21.0", "no route to registry"))
    for part in (
        "tensorflow/serving:2.21.0 is not present locally",
        "no route to registry",
        "docker pull tensorflow/serving:2.21.0",
        "docker load",
        "backend='embedded'",
    ):
        assert part in message


@pytest.mark.parametrize(
    ("engine", "image", "image_arch", "allow", "fails"),
    [
        ("x86_64", "tensorflow/serving:2.21.0", None, False, False),
        ("x86_64", "tensorflow/serving:2.21.0", "amd64", False, False),
        ("aarch64", "tensorflow/serving:2.21.0", None, False, True),
        ("aarch64", "docker.io/tensorflow/serving", None, False, True),
        ("aarch64", "tensorflow/serving:2.21.0", "amd64", False, True),
        ("aarch64", "tensorflow/serving:2.21.0", "amd64", True, False),
        ("aarch64", "me/serving-arm:1", "arm64", False, False),
        ("aarch64", "me/serving-arm:1", None, False, False),
    ],
)
def test_arm64_engines_refuse_amd64_images(
    engine: str, image: str, image_arch: str | None, allow: bool, fails: bool
) -> None:
    if not fails:
        check_architecture(engine, image, image_arch, allow_emulation=allow)
        return
    with pytest.raises(BackendUnavailableError, match="amd64") as caught:
        check_architecture(engine, image, image_arch, allow_emulation=allow)
    assert "runs on arm64" in str(caught.value) and "backend='embedded'" in str(caught.value)


@pytest.mark.parametrize(
    ("engine_text", "expected"),
    [
        (
            "Mounts denied: \nThe path /Volumes/data/models is not shared from the host and is "
            "not known to Docker.\nYou can configure shared paths from Docker -> Preferences...",
            "Docker cannot see /Volumes/data/models",
        ),
        (
            'invalid mount config for type "bind": bind source path does not exist: /srv/m',
            "Docker cannot see /srv/m",
        ),
        (
            "driver failed programming external connectivity on endpoint x: Bind for "
            "127.0.0.1:8500 failed: port is already allocated",
            "A host port for the container is already in use",
        ),
        ("network bridge not found", "use network_mode='host'"),
        ("something else", "Docker could not run the container: something else"),
    ],
)
def test_engine_refusals_are_explained(engine_text: str, expected: str) -> None:
    error = container_error(engine_text, [("/srv/m", "/models/m")])
    assert isinstance(error, ServerStartError)
    assert expected in str(error)


def test_docker_desktop_mount_refusal_says_how_to_share_the_folder() -> None:
    error = container_error("Mounts denied: the path /x is not shared from the host", [])
    assert "File sharing" in str(error)


PULL_EVENTS = [
    {"status": "Pulling from tensorflow/serving", "id": "2.21.0"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "b"},
    {"status": "Already exists", "progressDetail": {}, "id": "c"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 25_000_000, "total": 100_000_000},
        "id": "a",
    },
    {
        "status": "Downloading",
        "progressDetail": {"current": 50_000_000, "total": 300_000_000},
        "id": "b",
    },
]


def test_pull_progress_adds_up_layer_bytes() -> None:
    progress = PullProgress("tensorflow/serving:2.21.0")
    assert str(progress) == "Pulling tensorflow/serving:2.21.0: starting"
    for event in PULL_EVENTS:
        progress.update(event)
    assert progress.fraction == pytest.approx(75 / 400)
    progress.update({"status": "Download complete", "progressDetail": {}, "id": "a"})
    assert progress.fraction == pytest.approx(150 / 400)
    progress.update({"status": "Pull complete", "progressDetail": {}, "id": "b"})
    assert progress.fraction == 1.0
    assert str(progress) == "Pulling tensorflow/serving:2.21.0: 100% of 400.0 MB"


class FakeApi:
    def __init__(self, events: list[dict]) -> None:
        self.events = events

    def pull(self, image: str, stream: bool, decode: bool):
        assert stream and decode
        yield from self.events


class FakeClient:
    def __init__(self, events: list[dict]) -> None:
        self.api = FakeApi(events)

    def info(self) -> dict:
        return {"Architecture": "aarch64"}


def test_pull_shows_progress_on_stderr_outside_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    pull_image(FakeClient(PULL_EVENTS), "tensorflow/serving:2.21.0")
    assert stderr.getvalue().endswith("Pulling tensorflow/serving:2.21.0: 19% of 400.0 MB\n")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("Get https://registry/v2/: dial tcp: lookup registry: no such host", "not present"),
        ("no matching manifest for linux/arm64/v8 in the manifest list entries", "runs on arm64"),
    ],
)
def test_a_failed_pull_says_why(monkeypatch: pytest.MonkeyPatch, error: str, expected: str) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with pytest.raises(BackendUnavailableError, match=expected):
        pull_image(FakeClient([{"error": error}]), "tensorflow/serving:2.21.0")


class FakeContainer:
    """Just enough of a docker ``Container`` for :class:`DockerServerProcess.stop`."""

    def __init__(self) -> None:
        self.removed = False

    def stop(self, timeout: int) -> None:
        assert timeout == 5

    def logs(self, stdout: bool, stderr: bool, tail: str | int) -> bytes:
        return b"line 1\nline 2"

    def remove(self, force: bool) -> None:
        self.removed = True


def test_reload_configs_get_the_paths_the_container_sees(config_dir: Path) -> None:
    models = [ModelConfig("m", "/data/m")]
    spec = spec_for(config_dir, *models, volumes={"/data/more/": "/more"})
    container = FakeContainer()
    process = DockerServerProcess(container, spec, container_models(models), config_dir, 1, 2)
    try:
        labelled = ModelConfig("m", "/data/m", labels={"stable": 1})
        assert process.server_model(labelled) == ModelConfig("m", "/models/m", labels={"stable": 1})
        assert process.server_model(ModelConfig("m", "/models/m")).base_path == "/models/m"
        assert process.server_model(ModelConfig("n", "/data/more/n")).base_path == "/more/n"
        with pytest.raises(ConfigError, match="/data/mm is not mounted in container"):
            process.server_model(ModelConfig("mm", "/data/mm"))
    finally:
        process.stop()
    assert container.removed and not config_dir.exists()
    assert process.logs(tail=1) == "line 2"
    process.stop()  # idempotent
