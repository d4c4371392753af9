"""Exceptions raised by tfserve-nb's public API.

::

    TfServeNbError                      everything below; catch this to catch them all
    ├── ExportError                     export_model refused its input or could not write a version
    ├── ConfigError                     a model config (policy, labels, config file) is invalid
    ├── BackendError                    a serving backend is unusable here
    │   └── BackendUnavailableError     e.g. no Docker engine, no tensorflow_model_server binary
    ├── ServerStartError                a server process exited or never became ready
    ├── ServerTimeoutError              waited past a deadline (also a TimeoutError)
    └── ServingError                    a server answered a request with a non-OK status

Every message names what was wrong and, where there is one, what to do about it.
"""

from __future__ import annotations


class TfServeNbError(Exception):
    """Base class of every error tfserve-nb raises on purpose."""


class ExportError(TfServeNbError):
    """``export_model`` refused its input or could not write the version."""


class ConfigError(TfServeNbError, ValueError):
    """A model config, version policy, label map or config file is invalid."""


class BackendError(TfServeNbError):
    """A serving backend could not be used."""


class BackendUnavailableError(BackendError):
    """The backend's prerequisite (Docker engine, image, binary) is not there."""


class ServerStartError(TfServeNbError):
    """A model server exited during start-up or never opened its ports.

    ``logs`` holds the server's last output lines, which usually name the cause.
    """

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message if not logs else f"{message}\n--- last server output ---\n{logs}")
        self.logs = logs


class ServerTimeoutError(TfServeNbError, TimeoutError):
    """A wait (for a version to become AVAILABLE, for a port) ran past its deadline."""


class ServingError(TfServeNbError):
    """A server answered with a non-OK status.

    ``code`` is the canonical code name (``"NOT_FOUND"``, ``"INVALID_ARGUMENT"``, ...) and
    ``message`` the server's text, exactly as TF Serving would send it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
