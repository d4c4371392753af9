"""The TF Serving image: which one, and pulling it with progress.

:func:`pull_image` reports the bytes downloaded over all layers to a
:data:`~tfserve_nb.backends.progress.ProgressCallback` (the notebook shows a bar), at most four
times a second and once at the end.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import docker as docker_sdk

from ...errors import BackendUnavailableError
from ..progress import ProgressCallback, ProgressEvent, print_progress
from .engine import DEFAULT_REPOSITORY, architecture_error

__all__ = ["PULL_WORK", "PullProgress", "default_image", "image_error", "pull_image"]

PULL_WORK = "Pulling"
"""The :attr:`~tfserve_nb.backends.progress.ProgressEvent.work` of an image pull's events."""

_REPORT_EVERY = 0.25
"""Seconds between two progress reports of a pull (the last one is always reported)."""


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


def image_error(image: str, reason: str) -> BackendUnavailableError:
    """The error for an image that is not present locally and could not be pulled."""
    return BackendUnavailableError(
        f"The Docker image {image} is not present locally and could not be pulled ({reason}). "
        f"Get it with `docker pull {image}`; without registry access, save it on a machine that "
        f"has it (`docker save {image} -o serving.tar`) and load it here "
        "(`docker load -i serving.tar`). Or pass image='...' to use another one, or serve "
        "without Docker: backend='embedded'."
    )


class PullProgress:
    """Bytes downloaded so far over all layers of one ``docker pull``, fed the engine's events.
    Not thread-safe: one pull owns it."""

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

    def event(self, *, final: bool = False, ok: bool = True) -> ProgressEvent:
        """The progress so far as an event (a fraction of 0 while no size is known)."""
        return ProgressEvent(PULL_WORK, str(self), self.fraction or 0.0, final=final, ok=ok)

    def __str__(self) -> str:
        fraction = self.fraction
        if fraction is None:
            return f"Pulling {self.image}: {self.status}"
        total = sum(total for _, total in self._layers.values()) / 1e6
        return f"Pulling {self.image}: {fraction:.0%} of {total:.1f} MB"


def pull_image(
    client: docker_sdk.DockerClient, image: str, progress: ProgressCallback | None = None
) -> None:
    """Pull ``image``, reporting to ``progress`` (default: standard error); raise
    :func:`image_error` when the pull fails (:func:`~.engine.architecture_error` when the image
    has no build for the engine's CPU)."""
    report = progress or print_progress
    pulled = PullProgress(image)
    reported_at = 0.0
    try:
        for event in client.api.pull(image, stream=True, decode=True):
            if "error" in event:
                raise docker_sdk.errors.APIError(str(event["error"]))
            pulled.update(event)
            if time.monotonic() - reported_at >= _REPORT_EVERY:
                reported_at = time.monotonic()
                report(pulled.event())
    except docker_sdk.errors.DockerException as exc:
        report(pulled.event(final=True, ok=False))
        reason = getattr(exc, "explanation", None) or str(exc)
        if "no matching manifest" in reason:
            raise architecture_error(client.info().get("Architecture", "?"), image, None) from exc
        raise image_error(image, reason) from exc
    report(pulled.event(final=True))
