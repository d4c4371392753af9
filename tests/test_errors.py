"""The exception tree and its one transport-error mapper, without a server."""

from __future__ import annotations

import email.message
import io
import json
import subprocess
import sys
import urllib.error

import pytest

from tfserve_nb.core.status import HTTP_STATUS, Code
from tfserve_nb.errors import (
    CLOSED_CHANNEL_MESSAGE,
    CODE_OF_HTTP_STATUS,
    ConfigError,
    DeadlineExceededError,
    InvalidArgumentError,
    ServerTimeoutError,
    ServingError,
    TfServeNbError,
    transport_errors,
)


def http_error(status: int, body: bytes) -> urllib.error.HTTPError:
    return urllib.error.HTTPError(
        "http://127.0.0.1:1/v1/models/m",
        status,
        "reason",
        email.message.Message(),
        io.BytesIO(body),
    )


def mapped(exc: Exception) -> BaseException:
    with pytest.raises(TfServeNbError) as caught, transport_errors("127.0.0.1:1"):
        raise exc
    return caught.value


def test_http_statuses_map_back_to_upstreams_codes():
    assert CODE_OF_HTTP_STATUS[400] == "INVALID_ARGUMENT"  # also FAILED_PRECONDITION, OUT_OF_RANGE
    assert CODE_OF_HTTP_STATUS[404] == "NOT_FOUND"
    assert CODE_OF_HTTP_STATUS[409] == "ALREADY_EXISTS"  # also ABORTED
    assert CODE_OF_HTTP_STATUS[500] == "UNKNOWN"  # also INTERNAL, DATA_LOSS
    assert CODE_OF_HTTP_STATUS[503] == "UNAVAILABLE"
    assert CODE_OF_HTTP_STATUS[504] == "DEADLINE_EXCEEDED"
    for status, name in CODE_OF_HTTP_STATUS.items():  # exactly the inverse
        assert HTTP_STATUS[Code[name]] == status
    assert set(CODE_OF_HTTP_STATUS) == set(HTTP_STATUS.values())


def test_an_http_error_answer_carries_the_canonical_code_and_its_status():
    error = mapped(http_error(404, json.dumps({"error": "Servable not found"}).encode()))
    assert type(error) is ServingError
    assert (error.code, error.message, error.http_status) == (
        "NOT_FOUND",
        "Servable not found",
        404,
    )
    error = mapped(http_error(413, b"<html>too large</html>"))  # not a status upstream sends
    assert (error.code, error.message, error.http_status) == (
        "UNKNOWN",
        "<html>too large</html>",
        413,
    )
    error = mapped(http_error(504, b'{"error": "late"}'))
    assert isinstance(error, DeadlineExceededError) and error.http_status == 504


def test_no_answer_is_unavailable_and_a_deadline_is_a_timeout():
    refused = mapped(urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")))
    assert type(refused) is ServingError and refused.code == "UNAVAILABLE"
    assert refused.http_status is None and "cannot reach 127.0.0.1:1" in refused.message
    assert mapped(ConnectionResetError()).code == "UNAVAILABLE"
    for timeout in (TimeoutError("timed out"), urllib.error.URLError(TimeoutError("timed out"))):
        late = mapped(timeout)
        assert isinstance(late, DeadlineExceededError) and late.code == "DEADLINE_EXCEEDED"
        assert isinstance(late, ServerTimeoutError) and isinstance(late, TimeoutError)
    closed = mapped(ValueError(CLOSED_CHANNEL_MESSAGE))
    assert closed.code == "CANCELLED" and "closed" in closed.message
    assert mapped(json.JSONDecodeError("Expecting value", "<html>", 0)).code == "INTERNAL"


def test_a_grpc_error_keeps_its_code_and_details():
    import grpc

    class Failed(grpc.RpcError):
        def __init__(self, code: grpc.StatusCode) -> None:
            self._code = code

        def code(self) -> grpc.StatusCode:
            return self._code

        def details(self) -> str:
            return "Servable not found for request"

    error = mapped(Failed(grpc.StatusCode.NOT_FOUND))
    assert type(error) is ServingError
    assert (error.code, error.message, error.http_status) == (
        "NOT_FOUND",
        "Servable not found for request",
        None,
    )
    assert isinstance(mapped(Failed(grpc.StatusCode.DEADLINE_EXCEEDED)), DeadlineExceededError)


def test_other_exceptions_pass_unchanged():
    for passing in (KeyError("x"), ValueError("not a transport's"), ConfigError("bad config")):
        with pytest.raises(type(passing)) as caught, transport_errors("127.0.0.1:1"):
            raise passing
        assert caught.value is passing


def test_argument_and_config_errors_are_also_value_errors():
    assert issubclass(InvalidArgumentError, ValueError) and issubclass(ConfigError, ValueError)


def test_errors_imports_no_transport_library():
    code = (
        "import sys, tfserve_nb.errors; "
        "print(sorted(m for m in ('grpc', 'tensorflow', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
