"""Status codes and the error that carries one, as in ``tensorflow::Status``.

Codes are numbered as in ``google.rpc.Code`` / ``grpc.StatusCode`` so the front-ends can map them
one to one: gRPC aborts with the code, REST answers with :data:`HTTP_STATUS` and
``{"error": message}``.
"""

from __future__ import annotations

import enum

MAX_ERROR_MESSAGE_LENGTH = 1024
"""TF Serving cuts longer error texts and appends ``...TRUNCATED``."""


class Code(enum.IntEnum):
    """Canonical error codes (``absl::StatusCode``)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}
"""HTTP status for each code, as TF Serving's REST front-end maps them."""


def truncate_message(message: str) -> str:
    """Cut ``message`` to TF Serving's limit, appending ``...TRUNCATED`` when cut."""
    if len(message) <= MAX_ERROR_MESSAGE_LENGTH:
        return message
    return message[:MAX_ERROR_MESSAGE_LENGTH] + "...TRUNCATED"


class ServingStatusError(Exception):
    """A non-OK status raised inside the server; front-ends turn it into a protocol error.

    ``message`` is the exact text a client sees (before truncation).
    """

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ServingStatusError({self.code.name}, {self.message!r})"


def not_found(message: str) -> ServingStatusError:
    return ServingStatusError(Code.NOT_FOUND, message)


def invalid_argument(message: str) -> ServingStatusError:
    return ServingStatusError(Code.INVALID_ARGUMENT, message)


def failed_precondition(message: str) -> ServingStatusError:
    return ServingStatusError(Code.FAILED_PRECONDITION, message)


def unimplemented(message: str) -> ServingStatusError:
    return ServingStatusError(Code.UNIMPLEMENTED, message)
