"""The one small interface every backend implements.

A backend starts a TF-Serving-compatible server for a list of
:class:`~tfserve_nb.config.ModelConfig` and returns a :class:`ServerProcess`. Everything after
start-up (predict, status, reloads) goes through the protocol via
:class:`~tfserve_nb.client.ServingClient`; a backend only starts, reports addresses, gives logs and
stops.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ..config import ModelConfig
from .progress import ProgressCallback


class ServerProcess(abc.ABC):
    """A running server. Thread-safe; ``stop`` is idempotent."""

    backend_name: str
    """``"embedded"``, ``"docker"`` or ``"local"``."""

    @property
    @abc.abstractmethod
    def grpc_address(self) -> str:
        """``host:port`` of the gRPC front-end."""

    @property
    @abc.abstractmethod
    def rest_url(self) -> str:
        """``http://host:port`` of the REST front-end."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether the server is still running."""

    @abc.abstractmethod
    def logs(self, tail: int | None = None) -> str:
        """The server's output so far; the last ``tail`` lines if given (0: ``""``), as
        :func:`~tfserve_nb.backends.child_process.last_lines` counts them."""

    @abc.abstractmethod
    def stop(self, grace: float = 5.0) -> None:
        """Stop the server and release everything it holds (process, container, temp files)."""

    def server_model(self, config: ModelConfig) -> ModelConfig:
        """``config`` as the server sees it (e.g. base paths inside a container), for reloads."""
        return config

    def describe(self) -> dict[str, str]:
        """Facts shown to the user (backend, addresses, and backend-specific ones)."""
        return {"backend": self.backend_name, "grpc": self.grpc_address, "rest": self.rest_url}


class Backend(abc.ABC):
    """Starts servers of one kind."""

    name: str

    @abc.abstractmethod
    def check_available(self) -> None:
        """Return if this backend can run here; else raise
        :class:`~tfserve_nb.errors.BackendUnavailableError` saying why and what to do."""

    @abc.abstractmethod
    def start(
        self,
        models: Sequence[ModelConfig],
        *,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 120.0,
        progress: ProgressCallback | None = None,
    ) -> ServerProcess:
        """Start a server serving ``models``; return once its ports accept connections.

        ``extra_args`` are further ``tensorflow_model_server`` flags. Long work (a slow model
        load, an image pull) is reported to ``progress``, called in this thread (default:
        :func:`~tfserve_nb.backends.progress.print_progress` on standard error). Raises
        :class:`~tfserve_nb.errors.BackendUnavailableError` when this backend cannot run here and
        :class:`~tfserve_nb.errors.ServerStartError` (with the server's last output) when the
        server exits or does not open its ports in time.
        """
