"""Exceptions raised by tfserve-nb's public API, and the one place transport errors map into them.

::

    TfServeNbError                      everything below; catch this to catch them all
    ├── ExportError                     export_model refused its input or could not write a version
    ├── ConfigError                     a model config (policy, labels, config file) is invalid
    │                                   (also a ValueError)
    ├── InvalidArgumentError            a call's arguments were refused before anything was sent:
    │                                   a version and a label, no model name, inputs that do not
    │                                   match the signature (also a ValueError)
    ├── BackendError                    a serving backend is unusable here
    │   └── BackendUnavailableError     e.g. no Docker engine, no tensorflow_model_server binary
    ├── ServerStartError                a server process exited or never became ready
    ├── ServerTimeoutError              waited past a deadline (also a TimeoutError)
    │   └── DeadlineExceededError       a request's deadline passed (also a ServingError)
    ├── TrafficStoppedError             a wait for the dashboard's traffic ended: it stopped
    ├── StorageError                    object storage could not be used: its library (pip extra)
    │   │                               missing, the endpoint unreachable, the bucket missing,
    │   │                               credentials missing or refused
    │   └── VersionExistsError          a push refused a version already in the remote
    │                                   repository (complete or partial) or being pushed
    └── ServingError                    a request ended with a non-OK canonical status
        └── DeadlineExceededError       ``code == "DEADLINE_EXCEEDED"``

Every message names what was wrong and, where there is one, what to do about it.

What the object-storage libraries raise becomes a :class:`StorageError` in
:func:`tfserve_nb.storage.filesystem.storage_errors`, the storage twin of :func:`transport_errors`
below.

:func:`transport_errors` is where what gRPC, ``urllib`` and the OS raise becomes this tree, the
way httpx's ``map_exceptions`` does it for its transports; the client wraps every call in it, the
backends' start-up probe (:func:`tfserve_nb.backends.startup.wait_until_serving`) its REST
requests (its gRPC probe only waits for a channel to be ready), and no other client-side code
catches transport exceptions. A :class:`ServingError` carries the canonical code whichever
transport the request took:

- gRPC ``RpcError``: its status code's name and details;
- an HTTP error answer (``{"error": message}`` with a status): the code the status stands for in
  TF Serving's REST front-end, whose JSON carries only the message. That front-end maps codes to
  statuses with ``ToHTTPStatusCode`` (``tensorflow_serving/model_servers/http_server.cc``,
  ported as :data:`tfserve_nb.core.status.HTTP_STATUS`); :data:`CODE_OF_HTTP_STATUS` is exactly
  its inverse. Where upstream sends several codes as one status (400: INVALID_ARGUMENT,
  FAILED_PRECONDITION, OUT_OF_RANGE; 409: ALREADY_EXISTS, ABORTED; 500: UNKNOWN, INTERNAL,
  DATA_LOSS) the lowest-numbered code stands for it; a status upstream never sends is UNKNOWN.
  ``http_status`` keeps the status itself;
- no answer at all — the connection refused, reset or closed, the client's own channel closed —
  is what gRPC reports for it: UNAVAILABLE (CANCELLED for a closed client), and a request whose
  deadline passed is a :class:`DeadlineExceededError` on both transports.

This module imports no transport library: a gRPC error can only reach the mapper once the client
imported ``grpc``, so it looks the module up in ``sys.modules``.
"""

from __future__ import annotations

import http.client
import json
import sys
import urllib.error
from typing import Any, Literal

from .core.status import HTTP_STATUS, Code

CODE_OF_HTTP_STATUS: dict[int, str] = {}
"""HTTP status -> canonical code name: the inverse of upstream's ``ToHTTPStatusCode`` (module
docstring), the lowest-numbered code where several share a status."""
for _code in sorted(Code):
    CODE_OF_HTTP_STATUS.setdefault(HTTP_STATUS[_code], _code.name)
del _code

CLOSED_CHANNEL_MESSAGE = "Cannot invoke RPC on closed channel!"
"""The ``ValueError`` text grpcio raises for a call on a closed channel."""


class TfServeNbError(Exception):
    """Base class of every error tfserve-nb raises on purpose."""


class ExportError(TfServeNbError):
    """``export_model`` refused its input or could not write the version."""


class ConfigError(TfServeNbError, ValueError):
    """A model config, version policy, label map or config file is invalid."""


class InvalidArgumentError(TfServeNbError, ValueError):
    """tfserve-nb refused a call's arguments before sending anything (the client-side twin of
    the server's INVALID_ARGUMENT)."""


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
    """A wait (for a version to become AVAILABLE, for a port, for an answer) ran past its
    deadline."""


class TrafficStoppedError(TfServeNbError):
    """The dashboard's request stream stopped (``stop_traffic()``, or the server stopped) while a
    caller waited for its answers."""


class StorageError(TfServeNbError):
    """Object storage could not be used: the scheme's file-system library is not installed (the
    message names the pip extra), the endpoint cannot be reached, the bucket does not exist,
    credentials are missing or refused, or the store refused a request (its code and text)."""


class VersionExistsError(StorageError):
    """A push refused version ``version`` at ``uri``: it is already in the remote repository
    (``state`` ``"complete"``, or ``"partial"``: objects without ``saved_model.pb``) or another
    push is publishing it (``"being pushed"``). Nothing of it was touched."""

    def __init__(self, message: str, *, uri: str, version: int, state: str) -> None:
        super().__init__(message)
        self.uri = uri
        self.version = version
        self.state = state


class ServingError(TfServeNbError):
    """A request ended with a non-OK status.

    ``code`` is the canonical code name (``"NOT_FOUND"``, ``"INVALID_ARGUMENT"``, ...) on every
    transport and ``message`` the server's text, exactly as TF Serving sends it (or, with no
    answer, what went wrong). ``http_status`` is the HTTP status of a REST answer, ``None`` for
    gRPC and when nothing answered.
    """

    def __init__(self, code: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


class DeadlineExceededError(ServingError, ServerTimeoutError):
    """A request got no answer within its deadline: gRPC's DEADLINE_EXCEEDED, a REST read that
    timed out or an HTTP 504. ``code`` is ``"DEADLINE_EXCEEDED"``."""


def serving_error(code: str, message: str, *, http_status: int | None = None) -> ServingError:
    """The :class:`ServingError` for ``code``: a :class:`DeadlineExceededError` for
    DEADLINE_EXCEEDED."""
    kind = DeadlineExceededError if code == Code.DEADLINE_EXCEEDED.name else ServingError
    return kind(code, message, http_status=http_status)


class transport_errors:
    """Run a gRPC call or an HTTP exchange with ``where`` (its address or URL) and raise what
    the transport raised as this module's exceptions (the module docstring has the rules).
    Exceptions of this tree and anything not from a transport pass unchanged.

    A class rather than ``contextlib.contextmanager``: it wraps every request, and entering
    it allocates no generator."""

    __slots__ = ("_where",)

    def __init__(self, where: str) -> None:
        self._where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> Literal[False]:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, TfServeNbError):
            return False
        mapped = _mapped(exc, self._where)
        if mapped is None:
            return False
        if isinstance(exc, urllib.error.HTTPError) or _is_rpc_error(exc):
            raise mapped from None  # the server's answer says it all
        raise mapped from exc


def _is_rpc_error(exc: Exception) -> bool:
    grpc = sys.modules.get("grpc")
    return grpc is not None and isinstance(exc, grpc.RpcError)


def _mapped(exc: Exception, where: str) -> ServingError | None:
    if _is_rpc_error(exc):
        return serving_error(exc.code().name, exc.details() or "")  # type: ignore[attr-defined]
    if isinstance(exc, urllib.error.HTTPError):
        return _http_error(exc)
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return DeadlineExceededError(
            Code.DEADLINE_EXCEEDED.name, f"no answer from {where} in time ({reason})"
        )
    if isinstance(exc, OSError | http.client.HTTPException):  # URLError is an OSError
        return ServingError(Code.UNAVAILABLE.name, f"cannot reach {where}: {reason}")
    if isinstance(exc, json.JSONDecodeError):
        return ServingError(Code.INTERNAL.name, f"the answer of {where} is not JSON: {exc}")
    if isinstance(exc, ValueError) and str(exc) == CLOSED_CHANNEL_MESSAGE:
        return ServingError(
            Code.CANCELLED.name,
            f"the client of {where} is closed (ServingClient.close() or ModelServer.stop() ran)",
        )
    return None


def _http_error(exc: urllib.error.HTTPError) -> ServingError:
    """An HTTP error answer: the code its status stands for and the body's ``error`` text."""
    payload = exc.read()
    try:
        message = json.loads(payload)["error"]
    except (ValueError, KeyError, TypeError):
        message = payload.decode(errors="replace")
    code = CODE_OF_HTTP_STATUS.get(exc.code, Code.UNKNOWN.name)
    return serving_error(code, str(message), http_status=exc.code)
