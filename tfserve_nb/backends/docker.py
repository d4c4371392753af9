"""Docker backend: the official ``tensorflow/serving`` image, run the way its documentation says.

One model with the default version policy is bind-mounted read-only at ``/models/<name>`` and
named by ``MODEL_NAME``. Several models, labels or another version policy become a generated
``models.config`` (with container paths) in a temp directory mounted read-only at
``/tfserve-nb``, passed as ``--model_config_file`` after the image name: the image's entrypoint
runs ``tensorflow_model_server --port=8500 --rest_api_port=8501 --model_name=${MODEL_NAME}
--model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"``, so arguments are appended (and a
repeated flag's last value wins). Extra flags naming a local file (``--*_file=PATH``) get the file
copied into that directory and the flag rewritten.

Ports: by default 8500/8501 are published on 127.0.0.1 only, on host ports Docker picks (or the
ones given). With ``network_mode="host"`` the container shares the host's network and is told
free ports with ``--port``/``--rest_api_port``; then, as upstream does, it listens on all
interfaces.

Containers carry labels naming their owner (host name, pid, process start time). Before
creating a container the backend removes the containers whose owner process is gone — a notebook
kernel that was killed leaves its container behind. ``stop`` removes the container and its temp
directory; so does interpreter exit.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import docker as docker_sdk
from docker.models.containers import Container
from docker.types import Mount
from docker.utils import parse_repository_tag

from ..config import ModelConfig, validate
from ..errors import BackendUnavailableError, ConfigError, ServerStartError
from ..processes import process_alive, process_start_token
from .base import Backend, ServerProcess
from .local import (
    CONFIG_FILE_NAME,
    check_managed_flags,
    check_model_dirs,
    check_port_free,
    free_ports,
    needs_config_file,
    tail_lines,
    wait_until_serving,
    write_config_file,
)
from .progress import in_notebook

logger = logging.getLogger(__name__)

DEFAULT_REPOSITORY = "tensorflow/serving"
GRPC_CONTAINER_PORT = 8500
REST_CONTAINER_PORT = 8501
MODELS_DIR = "/models"
"""The image's ``MODEL_BASE_PATH``: model ``<name>`` is mounted at ``/models/<name>``."""
CONFIG_DIR = "/tfserve-nb"
"""Where the generated config file and copied flag files are mounted in the container."""

LABEL_OWNER_HOST = "tfserve-nb.owner-host"
LABEL_OWNER_PID = "tfserve-nb.owner-pid"
LABEL_OWNER_START = "tfserve-nb.owner-start"
"""The owner's start time in clock ticks since boot (Linux ``/proc``; empty elsewhere)."""
LABEL_CREATED = "tfserve-nb.created"
LABEL_CONFIG_DIR = "tfserve-nb.config-dir"
LABEL_MODELS = "tfserve-nb.models"

_FILE_FLAG = re.compile(r"(--?\w+_file)=(.+)")
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_OFFICIAL_REPOSITORIES = {DEFAULT_REPOSITORY, f"docker.io/{DEFAULT_REPOSITORY}"}


def default_image() -> str:
    """``tensorflow/serving:<X.Y.Z>`` matching the installed TensorFlow (``latest`` without one)."""
    for distribution in ("tensorflow", "tensorflow-cpu"):
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
        match = re.match(r"\d+\.\d+\.\d+", version)
        if match:
            return f"{DEFAULT_REPOSITORY}:{match.group()}"
    return f"{DEFAULT_REPOSITORY}:latest"


def docker_host(base_url: str | None = None) -> str:
    """The engine address a client would use: ``base_url``, ``$DOCKER_HOST`` or the default."""
    return base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


# --- owners and stale containers -------------------------------------------------------------


def owner_alive(pid: int, start_token: str) -> bool:
    """Whether the process that labelled a container is still running (see
    :func:`~tfserve_nb.processes.process_alive`: pid and start time, a zombie counts as gone)."""
    return process_alive(pid, start_token)


def owner_labels() -> dict[str, str]:
    """Labels naming this process as a container's owner, and the creation time."""
    return {
        LABEL_OWNER_HOST: socket.gethostname(),
        LABEL_OWNER_PID: str(os.getpid()),
        LABEL_OWNER_START: process_start_token(os.getpid()),
        LABEL_CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --- the container specification (no Docker calls) ---------------------------------------------


def container_models(models: Sequence[ModelConfig]) -> list[ModelConfig]:
    """``models`` as the server in the container sees them: base paths ``/models/<name>``."""
    return [dataclasses.replace(m, base_path=f"{MODELS_DIR}/{m.name}") for m in models]


@dataclass(frozen=True)
class ContainerSpec:
    """Everything ``containers.create`` needs, built by :func:`prepare_container`."""

    image: str
    name: str
    command: tuple[str, ...]
    environment: Mapping[str, str]
    mounts: tuple[tuple[str, str], ...]
    """``(host path, container path)`` pairs, all mounted read-only."""
    labels: Mapping[str, str]
    network_mode: str | None
    ports: Mapping[str, tuple[str, int | None]]
    """``"8500/tcp" → ("127.0.0.1", host port or None for one Docker picks)``; empty for host
    networking."""

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``DockerClient.containers.create``."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "name": self.name,
            "command": list(self.command),
            "environment": dict(self.environment),
            "mounts": [
                Mount(target=target, source=source, type="bind", read_only=True)
                for source, target in self.mounts
            ],
            "labels": dict(self.labels),
            "init": True,  # the image's bash entrypoint ignores SIGTERM as pid 1
            "detach": True,
        }
        if self.network_mode is not None:
            kwargs["network_mode"] = self.network_mode
        if self.ports:
            kwargs["ports"] = dict(self.ports)
        return kwargs


def prepare_container(
    models: Sequence[ModelConfig],
    extra_args: Sequence[str],
    *,
    image: str,
    config_dir: Path,
    network_mode: str | None = None,
    grpc_port: int | None = None,
    rest_port: int | None = None,
    volumes: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> ContainerSpec:
    """The container serving ``models`` (host base paths) with ``extra_args`` appended.

    Writes the generated ``models.config`` and copies of local files named by ``--*_file=`` flags
    into ``config_dir`` when there are any; ``config_dir`` is then mounted at ``/tfserve-nb``.
    With ``network_mode="host"`` both ports must be given; otherwise ``None`` ports are picked by
    Docker on 127.0.0.1. ``volumes`` maps further host paths to container paths (read-only).
    """
    served = container_models(models)
    mounts = [(m.base_path, s.base_path) for m, s in zip(models, served, strict=True)]
    environment = {"MODEL_BASE_PATH": MODELS_DIR}
    command: list[str] = []
    if needs_config_file(models):
        config = write_config_file(served, config_dir)
        command.append(f"--model_config_file={CONFIG_DIR}/{config.name}")
    else:
        environment["MODEL_NAME"] = models[0].name
    host_network = network_mode == "host"
    if host_network:
        if grpc_port is None or rest_port is None:
            raise ConfigError("network_mode='host' needs both ports chosen")
        command += [f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
    command += _map_file_flags(extra_args, config_dir)
    if any(config_dir.iterdir()):
        mounts.append((str(config_dir), CONFIG_DIR))
    mounts += (volumes or {}).items()
    ports = {
        f"{GRPC_CONTAINER_PORT}/tcp": ("127.0.0.1", grpc_port),
        f"{REST_CONTAINER_PORT}/tcp": ("127.0.0.1", rest_port),
    }
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", models[0].name)[:40]
    return ContainerSpec(
        image=image,
        name=f"tfserve-nb-{slug}-{os.urandom(3).hex()}",
        command=tuple(command),
        environment=environment,
        mounts=tuple(mounts),
        labels={
            **(labels or {}),
            LABEL_CONFIG_DIR: str(config_dir),
            LABEL_MODELS: ",".join(m.name for m in models),
        },
        network_mode=network_mode,
        ports={} if host_network else ports,
    )


def _map_file_flags(extra_args: Sequence[str], config_dir: Path) -> list[str]:
    """``extra_args`` with each ``--*_file=<local file>`` copied into ``config_dir`` and the flag
    pointed at the copy's container path; other arguments unchanged."""
    mapped = []
    for index, arg in enumerate(extra_args):
        match = _FILE_FLAG.fullmatch(arg)
        if match and Path(match.group(2)).is_file():
            name = f"{index}-{Path(match.group(2)).name}"
            if name == CONFIG_FILE_NAME:
                name = f"{index}-flag-{CONFIG_FILE_NAME}"
            shutil.copyfile(match.group(2), config_dir / name)
            arg = f"{match.group(1)}={CONFIG_DIR}/{name}"
        mapped.append(arg)
    return mapped


def published_port(attrs: Mapping[str, Any], container_port: int) -> int:
    """The 127.0.0.1 host port Docker published ``container_port`` on (from a started container's
    attributes)."""
    bindings = (attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{container_port}/tcp")
    for binding in bindings or ():
        if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
            return int(binding["HostPort"])
    raise ServerStartError(
        f"Docker published no 127.0.0.1 port for container port {container_port}"
    )


# --- errors ---------------------------------------------------------------------------------------


def engine_error(reason: str, host: str) -> BackendUnavailableError:
    """The error for a Docker engine that cannot be reached at ``host`` (``reason``: the client's
    complaint): permission on the socket, or no engine."""
    os_error = re.search(r"\w+Error\(\d+, '([^']+)'\)|\[Errno \d+\] ([^\"']+)", reason)
    reason = next(filter(None, os_error.groups())) if os_error else reason  # the socket's complaint
    if "Permission denied" in reason or "PermissionError" in reason:
        return BackendUnavailableError(
            f"Permission denied on the Docker socket {host}. Add your user to the docker group "
            "(`sudo usermod -aG docker $USER`, then log out and in again and restart the notebook "
            "server) — or serve without Docker: backend='embedded'."
        )
    return BackendUnavailableError(
        f"No Docker engine answers at {host} ({reason}). Install Docker and start it (Docker "
        "Desktop, or `sudo systemctl start docker`), or point DOCKER_HOST at a running engine — "
        "or serve without Docker: backend='embedded' (same protocol)."
    )


def image_error(image: str, reason: str) -> BackendUnavailableError:
    """The error for an image that is not present locally and could not be pulled."""
    return BackendUnavailableError(
        f"The Docker image {image} is not present locally and could not be pulled ({reason}). "
        f"Get it with `docker pull {image}`; without registry access, save it on a machine that "
        f"has it (`docker save {image} -o serving.tar`) and load it here "
        "(`docker load -i serving.tar`). Or pass image='...' to use another one, or serve "
        "without Docker: backend='embedded'."
    )


def architecture_error(
    engine_arch: str, image: str, image_arch: str | None
) -> BackendUnavailableError:
    """The error for an image that does not match the engine's CPU architecture."""
    engine_arch = _ARCHES.get(engine_arch, engine_arch)
    what = f"built for {image_arch}" if image_arch else "published for amd64 only"
    return BackendUnavailableError(
        f"The Docker engine runs on {engine_arch} but {image} is {what}: tensorflow/serving "
        "images are amd64-only, and under emulation the server crashes or crawls. Use "
        "backend='embedded' (same protocol, runs natively), or pass image= a TF Serving build for "
        f"{engine_arch} (allow_emulation=True to try the amd64 image anyway)."
    )


def check_architecture(
    engine_arch: str, image: str, image_arch: str | None, *, allow_emulation: bool = False
) -> None:
    """Raise :func:`architecture_error` when ``image`` (``image_arch``; ``None``: not present
    locally) cannot run natively on an engine of ``engine_arch``."""
    engine = _ARCHES.get(engine_arch, engine_arch)
    if allow_emulation or engine == "amd64":
        return
    if image_arch is None:
        if parse_repository_tag(image)[0] in _OFFICIAL_REPOSITORIES:
            raise architecture_error(engine_arch, image, None)
    elif _ARCHES.get(image_arch, image_arch) != engine:
        raise architecture_error(engine_arch, image, image_arch)


def container_error(text: str, mounts: Sequence[tuple[str, str]]) -> ServerStartError:
    """The error for the engine refusing to create or start a container (``text``: its answer)."""
    if re.search(r"Mounts denied|is not shared from|bind source path does not exist", text):
        match = re.search(r"(?:path|does not exist:) (/\S+)", text)
        path = match.group(1) if match else ", ".join(source for source, _ in mounts)
        return ServerStartError(
            f"Docker cannot see {path} ({text.strip()}). With Docker Desktop, share that folder "
            "(Settings → Resources → File sharing) or keep the models under your home directory; "
            "with a remote engine (DOCKER_HOST), the path must exist on the engine's machine."
        )
    if re.search(r"port is already allocated|address already in use", text):
        return ServerStartError(
            f"A host port for the container is already in use ({text.strip()}). Choose other "
            "grpc_port/rest_port, or leave them unset to have free ones chosen."
        )
    if re.search(r"network \S+ not found|No such network", text):
        return ServerStartError(
            f"The Docker engine has no such network ({text.strip()}): use network_mode='host', or "
            "give the engine its default bridge network."
        )
    return ServerStartError(f"Docker could not run the container: {text.strip()}")


# --- pulling with progress ------------------------------------------------------------------------


class PullProgress:
    """Bytes downloaded so far over all layers of one ``docker pull``, fed the engine's events."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.status = "starting"
        self._layers: dict[str, list[int]] = {}

    def update(self, event: Mapping[str, Any]) -> None:
        """Take one decoded pull event (``{"id", "status", "progressDetail"}``)."""
        self.status = str(event.get("status", self.status))
        layer = event.get("id")
        detail = event.get("progressDetail") or {}
        if not layer:
            return
        if self.status == "Downloading" and detail.get("total"):
            self._layers[layer] = [int(detail.get("current", 0)), int(detail["total"])]
        elif self.status in ("Download complete", "Pull complete") and layer in self._layers:
            self._layers[layer][0] = self._layers[layer][1]

    @property
    def fraction(self) -> float | None:
        """Downloaded share of the layer bytes known so far; ``None`` before any size is known."""
        total = sum(total for _, total in self._layers.values())
        return sum(done for done, _ in self._layers.values()) / total if total else None

    def __str__(self) -> str:
        fraction = self.fraction
        if fraction is None:
            return f"Pulling {self.image}: {self.status}"
        total = sum(total for _, total in self._layers.values()) / 1e6
        return f"Pulling {self.image}: {fraction:.0%} of {total:.1f} MB"


class _PullDisplay:
    """Shows a :class:`PullProgress`: a progress bar in a notebook, a line on stderr otherwise."""

    def __init__(self, progress: PullProgress) -> None:
        self.progress = progress
        self._shown_at = 0.0
        self._bar: Any = None
        self._label: Any = None
        if in_notebook():
            import ipywidgets
            from IPython.display import display

            self._bar = ipywidgets.FloatProgress(min=0.0, max=1.0, description="Pulling")
            self._label = ipywidgets.Label(str(progress))
            display(ipywidgets.HBox([self._bar, self._label]))

    def show(self, *, final: bool = False) -> None:
        """Redraw, at most four times a second unless ``final``."""
        if not final and time.monotonic() - self._shown_at < 0.25:
            return
        self._shown_at = time.monotonic()
        if self._bar is not None:
            self._bar.value = self.progress.fraction or 0.0
            self._label.value = str(self.progress)
        else:
            end = "\n" if final or not sys.stderr.isatty() else ""
            sys.stderr.write(f"\r{self.progress}{end}")
            sys.stderr.flush()

    def finish(self, ok: bool) -> None:
        """Show the final state (a green or red bar in a notebook)."""
        if self._bar is not None:
            self._bar.bar_style = "success" if ok else "danger"
        self.show(final=True)


def pull_image(client: docker_sdk.DockerClient, image: str) -> None:
    """Pull ``image``, showing progress; raise :func:`image_error` when the pull fails."""
    display = _PullDisplay(PullProgress(image))
    try:
        for event in client.api.pull(image, stream=True, decode=True):
            if "error" in event:
                raise docker_sdk.errors.APIError(str(event["error"]))
            display.progress.update(event)
            display.show()
    except docker_sdk.errors.DockerException as exc:
        display.finish(ok=False)
        reason = getattr(exc, "explanation", None) or str(exc)
        if "no matching manifest" in reason:
            raise architecture_error(client.info().get("Architecture", "?"), image, None) from exc
        raise image_error(image, reason) from exc
    display.finish(ok=True)


# --- the server process and the backend -----------------------------------------------------------


class DockerServerProcess(ServerProcess):
    """A container running a TF Serving image.

    Created by :meth:`DockerBackend.create`, started by :meth:`start_and_wait`
    (:meth:`DockerBackend.start` does both). ``models`` are the served models as the server sees
    them (base paths inside the container): use them, not host paths, in config reloads. Models
    added by a reload must live under a path the container can see.
    """

    backend_name = "docker"

    def __init__(
        self,
        container: Container,
        spec: ContainerSpec,
        models: Sequence[ModelConfig],
        config_dir: Path,
        grpc_port: int | None,
        rest_port: int | None,
    ) -> None:
        self.container = container
        self.spec = spec
        self.models = list(models)
        self._config_dir = config_dir
        self._grpc_port = grpc_port
        self._rest_port = rest_port
        self._final_logs: str | None = None
        self._lock = threading.Lock()
        atexit.register(self.stop)

    @property
    def grpc_address(self) -> str:
        if self._grpc_port is None:
            raise RuntimeError(f"container {self.spec.name} has not been started")
        return f"127.0.0.1:{self._grpc_port}"

    @property
    def rest_url(self) -> str:
        if self._rest_port is None:
            raise RuntimeError(f"container {self.spec.name} has not been started")
        return f"http://127.0.0.1:{self._rest_port}"

    def server_model(self, config: ModelConfig) -> ModelConfig:
        """``config`` with its base path as the server in the container sees it, for config
        reloads: a host path under a mount (a model's base path or one of the ``volumes``) maps to
        its container path; a container path of a served model stays. Raises
        :class:`ConfigError` for a path the container cannot see."""
        path = config.base_path
        if path in {m.base_path for m in self.models}:
            return config
        for source, target in self.spec.mounts:
            if path == source or path.startswith(source.rstrip("/") + "/"):
                return dataclasses.replace(
                    config, base_path=target + path[len(source.rstrip("/")) :]
                )
        raise ConfigError(
            f"Model {config.name}: {path} is not mounted in container {self.spec.name}, which sees "
            f"only {', '.join(source for source, _ in self.spec.mounts)}. Serve again with this "
            "model included, or mount a parent folder with the backend's volumes= option."
        )

    def start_and_wait(self, timeout: float) -> None:
        """Start the container and wait until it serves every model (see
        :func:`~tfserve_nb.backends.local.wait_until_serving`); raise :class:`ServerStartError`
        with its last log lines otherwise. The caller stops it on failure."""
        try:
            self.container.start()
        except docker_sdk.errors.APIError as exc:
            raise container_error(str(exc.explanation or exc), self.spec.mounts) from exc
        if self._grpc_port is None or self._rest_port is None:
            self.container.reload()
            self._grpc_port = published_port(self.container.attrs, GRPC_CONTAINER_PORT)
            self._rest_port = published_port(self.container.attrs, REST_CONTAINER_PORT)
        wait_until_serving(
            self.grpc_address,
            self.rest_url,
            [m.name for m in self.models],
            timeout=timeout,
            alive=self.alive,
            logs=self.logs,
            what=f"Container {self.spec.name} ({self.spec.image})",
        )

    def alive(self) -> bool:
        try:
            self.container.reload()
        except docker_sdk.errors.NotFound:
            return False
        return self.container.status == "running"

    def logs(self, tail: int | None = None) -> str:
        if self._final_logs is not None:
            return tail_lines(self._final_logs, tail)
        try:
            raw = self.container.logs(
                stdout=True, stderr=True, tail="all" if tail is None else tail
            )
        except docker_sdk.errors.NotFound:
            return ""
        return raw.decode("utf-8", errors="replace")

    def stop(self, grace: float = 5.0) -> None:
        with self._lock:
            if self._final_logs is not None:
                return
            try:
                self.container.stop(timeout=math.ceil(grace))
                self._final_logs = self.logs()
                self.container.remove(force=True)
            except docker_sdk.errors.NotFound:
                self._final_logs = self._final_logs or ""
            shutil.rmtree(self._config_dir, ignore_errors=True)
            atexit.unregister(self.stop)

    def describe(self) -> dict[str, str]:
        facts = {
            "backend": self.backend_name,
            "image": self.spec.image,
            "container": self.spec.name,
        }
        if self._grpc_port is not None and self._rest_port is not None:
            facts.update(grpc=self.grpc_address, rest=self.rest_url)
        facts["network"] = self.spec.network_mode or "ports published on 127.0.0.1"
        return facts


class DockerBackend(Backend):
    """Serves models with a TF Serving image through a Docker engine (the docker SDK).

    Options: ``image`` (default :func:`default_image`); ``network_mode`` (``None``: publish ports
    on 127.0.0.1; ``"host"``: share the host's network); ``grpc_port``/``rest_port`` (host ports;
    unset: free ones); ``volumes`` (further host path → container path, read-only); ``pull``
    (pull a missing image, with progress); ``allow_emulation`` (run an image of another CPU
    architecture); ``base_url`` (engine address; default ``$DOCKER_HOST`` or the local socket).
    """

    name = "docker"

    def __init__(
        self,
        image: str | None = None,
        *,
        network_mode: str | None = None,
        grpc_port: int | None = None,
        rest_port: int | None = None,
        volumes: Mapping[str, str] | None = None,
        pull: bool = True,
        allow_emulation: bool = False,
        base_url: str | None = None,
    ) -> None:
        self.image = image or default_image()
        self.network_mode = network_mode
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.volumes = dict(volumes or {})
        self.pull = pull
        self.allow_emulation = allow_emulation
        self.base_url = base_url
        self._client: docker_sdk.DockerClient | None = None

    @property
    def docker_host(self) -> str:
        """The engine address this backend talks to."""
        return docker_host(self.base_url)

    @property
    def client(self) -> docker_sdk.DockerClient:
        """A client of the engine; raises :class:`BackendUnavailableError` if none answers."""
        if self._client is None:
            try:
                self._client = (
                    docker_sdk.DockerClient(base_url=self.base_url)
                    if self.base_url
                    else docker_sdk.from_env()
                )
            except docker_sdk.errors.DockerException as exc:
                raise engine_error(str(exc), self.docker_host) from exc
        return self._client

    def check_available(self) -> None:
        """The engine answers and the image (if present locally, else the official one) suits its
        CPU architecture. A missing image does not count: :meth:`start` pulls it."""
        engine_arch = self.client.info().get("Architecture", "")
        local = self._local_image()
        image_arch = local.attrs.get("Architecture") if local is not None else None
        check_architecture(
            engine_arch, self.image, image_arch, allow_emulation=self.allow_emulation
        )

    def image_present(self) -> bool:
        """Whether the image is present in the engine (no pull)."""
        return self._local_image() is not None

    def _local_image(self) -> Any:
        try:
            return self.client.images.get(self.image)
        except docker_sdk.errors.ImageNotFound:
            return None

    def ensure_image(self) -> None:
        """Pull the image if it is missing and ``pull`` is on; raise :func:`image_error` if it
        stays missing."""
        if self.image_present():
            return
        if not self.pull:
            raise image_error(self.image, "pulling is turned off: pull=False")
        pull_image(self.client, self.image)

    def sweep(self) -> list[str]:
        """Remove this host's tfserve-nb containers whose owner process is gone (and their temp
        directories); return their names."""
        stale = self.client.containers.list(
            all=True, filters={"label": f"{LABEL_OWNER_HOST}={socket.gethostname()}"}
        )
        removed = []
        for container in stale:
            labels = container.labels
            if owner_alive(
                int(labels.get(LABEL_OWNER_PID, "0")), labels.get(LABEL_OWNER_START, "")
            ):
                continue
            try:
                container.remove(force=True)
            except docker_sdk.errors.NotFound:
                continue
            config_dir = Path(labels.get(LABEL_CONFIG_DIR, ""))
            if config_dir.name.startswith("tfserve-nb-docker-"):
                shutil.rmtree(config_dir, ignore_errors=True)
            logger.info(
                "removed stale container %s of dead process %s",
                container.name,
                labels.get(LABEL_OWNER_PID),
            )
            removed.append(container.name)
        return removed

    def create(
        self, models: Sequence[ModelConfig], *, extra_args: Sequence[str] = ()
    ) -> DockerServerProcess:
        """Check everything, sweep stale containers and create (not start) the container.

        Raises :class:`BackendUnavailableError` (engine, image, architecture),
        :class:`ServerStartError` (paths, ports, the engine refusing the container) or
        :class:`ConfigError` (flags the backend sets itself).
        """
        models = validate(models)
        check_managed_flags(extra_args)
        check_model_dirs(models)
        self.check_available()
        self.ensure_image()
        self.sweep()
        grpc_port, rest_port = self._ports()
        config_dir = Path(tempfile.mkdtemp(prefix="tfserve-nb-docker-"))
        try:
            spec = prepare_container(
                models,
                extra_args,
                image=self.image,
                config_dir=config_dir,
                network_mode=self.network_mode,
                grpc_port=grpc_port,
                rest_port=rest_port,
                volumes=self.volumes,
                labels=owner_labels(),
            )
            try:
                container = self.client.containers.create(**spec.create_kwargs())
            except docker_sdk.errors.APIError as exc:
                raise container_error(str(exc.explanation or exc), spec.mounts) from exc
        except BaseException:
            shutil.rmtree(config_dir, ignore_errors=True)
            raise
        return DockerServerProcess(
            container, spec, container_models(models), config_dir, grpc_port, rest_port
        )

    def start(
        self,
        models: Sequence[ModelConfig],
        *,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 120.0,
    ) -> DockerServerProcess:
        process = self.create(models, extra_args=extra_args)
        try:
            process.start_and_wait(startup_timeout)
        except BaseException:
            process.stop(grace=0)
            raise
        return process

    def _ports(self) -> tuple[int | None, int | None]:
        """Host ports to use: the fixed ones (checked free), and with host networking free ones
        for the rest; ``None`` lets Docker pick when publishing."""
        for port, what in ((self.grpc_port, "gRPC"), (self.rest_port, "REST")):
            if port is not None:
                check_port_free(port, what)
        if self.network_mode != "host":
            return self.grpc_port, self.rest_port
        chosen = iter(free_ports(2))
        return self.grpc_port or next(chosen), self.rest_port or next(chosen)
