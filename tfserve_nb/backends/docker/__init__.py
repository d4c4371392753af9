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
from .server_process import DockerServerProcess

__all__ = ["DockerBackend", "DockerServerProcess"]
