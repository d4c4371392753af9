"""The container: its specification (no Docker calls), its owner labels and the engine's
complaints about it.

One model with the default version policy is bind-mounted read-only at ``/models/<name>`` and
named by ``MODEL_NAME``. Several models, labels or another version policy become a generated
``models.config`` (with container paths) in a temp directory mounted read-only at
``/tfserve-nb``, passed as ``--model_config_file`` after the image name: the image's entrypoint
runs ``tensorflow_model_server --port=8500 --rest_api_port=8501 --model_name=${MODEL_NAME}
--model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"``, so arguments are appended (and a
repeated flag's last value wins). Extra flags naming a local file (``--*_file=PATH``) get the file
copied into that directory and the flag rewritten.

Containers carry labels naming their owner (host name, pid, process start time), so that
containers a killed notebook kernel left behind can be found and removed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docker.types import Mount

from ...config import ModelConfig
from ...errors import ConfigError, ServerStartError
from ...processes import process_alive, process_start_token
from ..startup import CONFIG_FILE_NAME, needs_config_file, write_config_file

__all__ = [
    "CONFIG_DIR",
    "GRPC_CONTAINER_PORT",
    "LABEL_CONFIG_DIR",
    "LABEL_CREATED",
    "LABEL_MODELS",
    "LABEL_OWNER_HOST",
    "LABEL_OWNER_PID",
    "LABEL_OWNER_START",
    "MODELS_DIR",
    "REST_CONTAINER_PORT",
    "ContainerSpec",
    "container_error",
    "container_models",
    "owner_alive",
    "owner_labels",
    "prepare_container",
    "published_port",
]

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
