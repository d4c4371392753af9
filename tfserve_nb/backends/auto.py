"""Choosing a backend for ``serve(..., backend="auto")``.

:func:`choose_backend` takes, in this order: Docker when an engine answers and the image is
present locally (choosing never pulls), else a ``tensorflow_model_server`` on PATH, else the
embedded server. It returns the backend and a sentence saying which one and why, for the notebook
to show.

Options are keyword arguments of the backends' constructors; each goes to every candidate that
takes it (``image=`` to Docker, ``binary=`` to the local binary, ``grpc_port=`` to both), and one
no candidate takes is a ``TypeError``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from ..errors import BackendUnavailableError
from .base import Backend
from .docker import DockerBackend
from .local import LocalBinaryBackend


def _candidates() -> dict[str, type[Backend]]:
    from .embedded import EmbeddedBackend

    return {"docker": DockerBackend, "local": LocalBinaryBackend, "embedded": EmbeddedBackend}


def _options_for(cls: type[Backend], options: dict[str, Any]) -> dict[str, Any]:
    parameters = inspect.signature(cls.__init__).parameters
    return {name: value for name, value in options.items() if name in parameters}


def _reason(exc: Exception) -> str:
    """The first sentence of an error message, to continue a sentence with."""
    text = str(exc)
    match = re.match(r"(.+?)[.!?](?:\s|$)", text, re.S)
    first = match.group(1) if match else text
    return first[:1].lower() + first[1:]


def choose_backend(**options: Any) -> tuple[Backend, str]:
    """The first usable backend of docker, local, embedded, and a sentence saying why.

    Docker counts as usable when its engine answers, the image is present locally and suits the
    engine's CPU; the local binary when it is found. Raises :class:`BackendUnavailableError`
    naming every reason when not even the embedded server can run.
    """
    candidates = _candidates()
    for name in options:
        if not any(name in _options_for(cls, options) for cls in candidates.values()):
            raise TypeError(f"choose_backend() got option {name!r}, which no backend takes")
    docker = DockerBackend(**_options_for(DockerBackend, options))
    try:
        docker.check_available()
    except BackendUnavailableError as exc:
        docker_reason = _reason(exc)
    else:
        if docker.image_present():
            return docker, (
                f"Using Docker: the engine at {docker.docker_host} answers and the image "
                f"{docker.image} is present."
            )
        docker_reason = (
            f"the Docker image {docker.image} is not present (docker pull {docker.image}, or "
            "backend='docker' to pull it)"
        )
    local = LocalBinaryBackend(**_options_for(LocalBinaryBackend, options))
    binary = local.binary_path()
    if binary is not None:
        return local, f"Using the local binary {binary}: {docker_reason}."
    local_reason = f"no {local.binary} is on PATH"
    embedded = candidates["embedded"](**_options_for(candidates["embedded"], options))
    try:
        embedded.check_available()
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(
            f"No backend can serve here: {docker_reason}; {local_reason}; and {exc}"
        ) from exc
    return embedded, f"Using the embedded server (same protocol): {docker_reason}; {local_reason}."
