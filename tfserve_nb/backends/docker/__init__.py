"""Docker backend: the official ``tensorflow/serving`` image, run the way its documentation says.

One module per part, read in this order:

- :mod:`.engine` — reaching the Docker engine; whether an image suits its CPU architecture.
- :mod:`.image` — which image (matching the installed TensorFlow), pulling it with progress.
- :mod:`.container` — the container's specification (mounts, generated config, flags, ports),
  its owner labels, and what the engine's refusals mean.
- :mod:`.server_process` — a running container as a ``ServerProcess``.
- :mod:`.backend` — :class:`DockerBackend`: check, pull, sweep stale containers, create, start
  and wait (with the start-up helpers every backend shares, :mod:`..startup`).
"""

from __future__ import annotations

from .backend import DockerBackend
from .container import (
    CONFIG_DIR,
    GRPC_CONTAINER_PORT,
    LABEL_CONFIG_DIR,
    LABEL_CREATED,
    LABEL_MODELS,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    MODELS_DIR,
    REST_CONTAINER_PORT,
    ContainerSpec,
    container_error,
    container_models,
    owner_alive,
    owner_labels,
    prepare_container,
    published_port,
)
from .engine import (
    DEFAULT_REPOSITORY,
    architecture_error,
    check_architecture,
    connect,
    docker_host,
    engine_error,
)
from .image import PullProgress, default_image, image_error, pull_image
from .server_process import DockerServerProcess

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_REPOSITORY",
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
    "DockerBackend",
    "DockerServerProcess",
    "PullProgress",
    "architecture_error",
    "check_architecture",
    "connect",
    "container_error",
    "container_models",
    "default_image",
    "docker_host",
    "engine_error",
    "image_error",
    "owner_alive",
    "owner_labels",
    "prepare_container",
    "published_port",
    "pull_image",
]
