"""A running TF Serving container, as a :class:`~tfserve_nb.backends.base.ServerProcess`.

``stop`` removes the container and its temp directory (the output stays readable through
``logs``); so does interpreter exit.
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import docker as docker_sdk
from docker.models.containers import Container

from ...config import ModelConfig
from ...errors import ConfigError
from ..base import ServerProcess
from ..child_process import last_lines
from ..progress import ProgressCallback
from ..startup import wait_until_serving
from .container import (
    GRPC_CONTAINER_PORT,
    REST_CONTAINER_PORT,
    ContainerSpec,
    container_error,
    published_port,
)

__all__ = ["DockerServerProcess"]


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

    def start_and_wait(self, timeout: float, progress: ProgressCallback | None = None) -> None:
        """Start the container and wait until it serves every model (see
        :func:`~tfserve_nb.backends.startup.wait_until_serving`, which reports to
        ``progress``); raise :class:`~tfserve_nb.errors.ServerStartError` with its last log
        lines otherwise. The caller stops it on failure."""
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
            progress=progress,
        )

    def alive(self) -> bool:
        try:
            self.container.reload()
        except docker_sdk.errors.NotFound:
            return False
        return self.container.status == "running"

    def logs(self, tail: int | None = None) -> str:
        if self._final_logs is not None:
            return last_lines(self._final_logs, tail)
        try:
            raw = self.container.logs(
                stdout=True, stderr=True, tail="all" if tail is None else max(tail, 0)
            )
        except docker_sdk.errors.NotFound:
            return ""
        return last_lines(raw.decode("utf-8", errors="replace"), tail)

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
