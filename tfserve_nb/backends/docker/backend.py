"""The docker backend: serves models with a TF Serving image through a Docker engine.

Ports: by default 8500/8501 are published on 127.0.0.1 only, on host ports Docker picks (or the
ones given). With ``network_mode="host"`` the container shares the host's network and is told
free ports with ``--port``/``--rest_api_port``; then, as upstream does, it listens on all
interfaces.

Before creating a container the backend removes the containers whose owner process is gone
(:meth:`DockerBackend.sweep`) — a notebook kernel that was killed leaves its container behind.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import docker as docker_sdk

from ...config import ModelConfig, validate
from ..base import Backend
from ..progress import ProgressCallback
from ..startup import check_fixed_ports, check_managed_flags, check_model_dirs, pick_ports
from .container import (
    LABEL_CONFIG_DIR,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    container_error,
    container_models,
    owner_alive,
    owner_labels,
    prepare_container,
)
from .engine import check_architecture, connect, docker_host
from .image import default_image, image_error, pull_image
from .server_process import DockerServerProcess

__all__ = ["DockerBackend"]

logger = logging.getLogger(__name__)


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
            self._client = connect(self.base_url)
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

    def ensure_image(self, progress: ProgressCallback | None = None) -> None:
        """Pull the image if it is missing and ``pull`` is on, reporting to ``progress`` (see
        :func:`~.image.pull_image`); raise :func:`~.image.image_error` if it stays missing."""
        if self.image_present():
            return
        if not self.pull:
            raise image_error(self.image, "pulling is turned off: pull=False")
        pull_image(self.client, self.image, progress)

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
        self,
        models: Sequence[ModelConfig],
        *,
        extra_args: Sequence[str] = (),
        progress: ProgressCallback | None = None,
    ) -> DockerServerProcess:
        """Check everything, pull a missing image (reporting to ``progress``), sweep stale
        containers and create (not start) the container.

        Raises :class:`BackendUnavailableError` (engine, image, architecture),
        :class:`ServerStartError` (paths, ports, the engine refusing the container) or
        :class:`ConfigError` (flags the backend sets itself).
        """
        models = validate(models)
        check_managed_flags(extra_args)
        check_model_dirs(models)
        self.check_available()
        self.ensure_image(progress)
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
        progress: ProgressCallback | None = None,
    ) -> DockerServerProcess:
        process = self.create(models, extra_args=extra_args, progress=progress)
        try:
            process.start_and_wait(startup_timeout, progress)
        except BaseException:
            process.stop(grace=0)
            raise
        return process

    def _ports(self) -> tuple[int | None, int | None]:
        """Host ports to use: the fixed ones (checked free), and with host networking free ones
        for the rest; ``None`` lets Docker pick when publishing."""
        if self.network_mode == "host":
            return pick_ports(self.grpc_port, self.rest_port)
        check_fixed_ports(self.grpc_port, self.rest_port)
        return self.grpc_port, self.rest_port
