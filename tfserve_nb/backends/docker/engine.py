"""The Docker engine: reaching it, and whether an image suits its CPU architecture.

The error messages here say what is wrong with the engine (no engine, no permission on its
socket, another CPU architecture) and what to do, including serving without Docker.
"""

from __future__ import annotations

import os
import re

import docker as docker_sdk
from docker.utils import parse_repository_tag

from ...errors import BackendUnavailableError

__all__ = [
    "DEFAULT_REPOSITORY",
    "architecture_error",
    "check_architecture",
    "connect",
    "docker_host",
    "engine_error",
]

DEFAULT_REPOSITORY = "tensorflow/serving"
_OFFICIAL_REPOSITORIES = {DEFAULT_REPOSITORY, f"docker.io/{DEFAULT_REPOSITORY}"}
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def docker_host(base_url: str | None = None) -> str:
    """The engine address a client would use: ``base_url``, ``$DOCKER_HOST`` or the default."""
    return base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(base_url: str | None = None) -> docker_sdk.DockerClient:
    """A client of the engine at ``base_url`` (default: as the ``docker`` command finds it);
    raises :func:`engine_error` if none answers."""
    try:
        return docker_sdk.DockerClient(base_url=base_url) if base_url else docker_sdk.from_env()
    except docker_sdk.errors.DockerException as exc:
        raise engine_error(str(exc), docker_host(base_url)) from exc


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
