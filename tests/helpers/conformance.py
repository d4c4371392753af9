"""What the conformance suites (``test_conformance_*.py``) share: clients written the way TF
Serving's users write them (``tensorflow-serving-api`` stubs, ``tf.make_tensor_proto``, plain
HTTP), waiting on conditions with deadlines, and files a polling server may see.

Every helper talks to a real server process
(:class:`~tests.helpers.server_process.ServerProcess`) over its sockets; none reaches into the
server.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from tests.helpers.waiting import wait_until
from tfserve_nb.config import ModelConfig, render_config_file, to_server_config

from .server_process import ServerProcess

DEADLINE = 60.0
"""Seconds a test waits for a condition (a load, an unload, a poll) before failing."""


# --- files a polling server reads -------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, so a polling reader never sees half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_config(path: Path, configs: Iterable[ModelConfig]) -> Path:
    """Write ``configs`` as a ``--model_config_file`` text proto at ``path``; returns it."""
    write_atomically(path, render_config_file(configs))
    return path


def add_broken_version(base: Path, version: int) -> Path:
    """A version directory whose ``saved_model.pb`` is not a protobuf (its load fails),
    moved into place in one rename."""
    staging = Path(tempfile.mkdtemp(prefix=".tmp-broken-", dir=base))
    (staging / "saved_model.pb").write_bytes(b"not a protobuf")
    target = base / str(version)
    os.rename(staging, target)
    return target


# --- processes ---------------------------------------------------------------------------------


def run_to_exit(*flags: str, timeout: float = 120.0) -> tuple[int, str]:
    """Run the server with ``flags`` until it exits by itself; ``(exit status, output)``."""
    done = subprocess.run(
        [sys.executable, "-m", "tfserve_nb.model_server", *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout + done.stderr


# --- gRPC --------------------------------------------------------------------------------------


def stubs(server: ServerProcess) -> tuple[Any, Any]:
    """``(PredictionServiceStub, ModelServiceStub)`` on the server's channel."""
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    return (
        prediction_service_pb2_grpc.PredictionServiceStub(server.channel),
        model_service_pb2_grpc.ModelServiceStub(server.channel),
    )


def set_model_spec(
    spec: Any,
    name: str,
    version: int | None = None,
    label: str | None = None,
    signature_name: str = "",
) -> None:
    """Fill a ``ModelSpec`` message."""
    spec.name = name
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
    spec.signature_name = signature_name


def predict_request(
    name: str,
    inputs: Mapping[str, Any],
    *,
    version: int | None = None,
    label: str | None = None,
    signature_name: str = "",
    output_filter: Iterable[str] = (),
) -> Any:
    """A ``PredictRequest`` as TF Serving's documented clients build it."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    set_model_spec(request.model_spec, name, version, label, signature_name)
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def outputs_of(response: Any) -> dict[str, np.ndarray]:
    """A ``PredictResponse``'s outputs as numpy arrays."""
    import tensorflow as tf

    return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}


def rpc_error(call: Callable[..., Any], request: Any) -> tuple[grpc.StatusCode, str]:
    """``(code, details)`` of the error ``call(request)`` must fail with."""
    try:
        call(request, timeout=DEADLINE)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    raise AssertionError(f"{call} succeeded; expected an error")


def version_states(server: ServerProcess, name: str) -> list[tuple[int, str, int, str]]:
    """``GetModelStatus`` of ``name`` as ``(version, state, error_code, error_message)``, in
    the server's order; empty when the model is unknown."""
    from tensorflow_serving.apis import get_model_status_pb2

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    try:
        response = stubs(server)[1].GetModelStatus(request, timeout=DEADLINE)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return []
        raise
    return [
        (
            s.version,
            get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
            s.status.error_code,
            s.status.error_message,
        )
        for s in response.model_version_status
    ]


def states_by_version(server: ServerProcess, name: str) -> dict[int, str]:
    """Version → state name, from ``GetModelStatus``."""
    return {version: state for version, state, _, _ in version_states(server, name)}


def wait_for_states(server: ServerProcess, name: str, expected: Mapping[int, str]) -> None:
    """Wait until ``GetModelStatus`` of ``name`` reports exactly ``expected``."""
    try:
        wait_until(
            lambda: states_by_version(server, name) == dict(expected),
            f"{name} to reach {dict(expected)}",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; now {states_by_version(server, name)}") from None


def half_plus_two_answer(server: ServerProcess, name: str, **spec: Any) -> tuple[int, float]:
    """``(answering version, y)`` of a gRPC predict of ``x = 1`` on a half_plus_two model."""
    request = predict_request(name, {"x": np.array([[1.0]], np.float32)}, **spec)
    response = stubs(server)[0].Predict(request, timeout=DEADLINE)
    return response.model_spec.version.value, float(outputs_of(response)["y"][0, 0])


def reload_request(configs: Iterable[ModelConfig]) -> Any:
    """A ``ReloadConfigRequest`` carrying ``configs`` as a ``model_config_list``."""
    from tensorflow_serving.apis import model_management_pb2

    request = model_management_pb2.ReloadConfigRequest()
    request.config.CopyFrom(to_server_config(configs))
    return request


def reload_config(server: ServerProcess, configs: Iterable[ModelConfig]) -> Any:
    """``HandleReloadConfigRequest`` with ``configs``; returns the response."""
    return stubs(server)[1].HandleReloadConfigRequest(reload_request(configs), timeout=DEADLINE)


# --- REST --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestReply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def rest(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    gzipped: bool = False,
) -> RestReply:
    """One HTTP request to the REST port; ``gzipped`` compresses ``body`` and says so."""
    data = body.encode() if isinstance(body, str) else body
    sent = dict(headers or {})
    if gzipped and data is not None:
        data = gzip.compress(data)
        sent["Content-Encoding"] = "gzip"
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=DEADLINE)
    try:
        connection.request(method, path, body=data, headers=sent)
        reply = connection.getresponse()
        return RestReply(reply.status, dict(reply.getheaders()), reply.read())
    finally:
        connection.close()


def rest_json(server: ServerProcess, method: str, path: str, doc: Any = None) -> tuple[int, Any]:
    """``(HTTP status, parsed JSON body)`` of a request whose body is ``doc`` as JSON."""
    reply = rest(server, method, path, None if doc is None else json.dumps(doc))
    return reply.status, reply.json


def assert_serving(server: ServerProcess, name: str) -> None:
    """A normal predict of ``x = 1`` on the half_plus_two model ``name`` answers over gRPC and
    REST (after an error case: bad requests never take the server down)."""
    assert server.popen.poll() is None, server.logs()
    version, y = half_plus_two_answer(server, name)
    status, body = rest_json(server, "POST", f"/v1/models/{name}:predict", {"instances": [[1.0]]})
    assert (status, body) == (200, {"predictions": [[y]]}), (version, body)
