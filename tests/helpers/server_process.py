"""A model server as a real process: ``python -m tfserve_nb.model_server`` with the given flags,
on 127.0.0.1 ports it reports through ``--port_file``, and TF Serving's canonical client call.

Shared by the conformance, reliability and upstream suites. Not thread-safe: one
:class:`ServerProcess` belongs to the test (or fixture) that started it, which stops it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import grpc

from tfserve_nb.processes import stop_process

from .waiting import wait_until

STARTUP_DEADLINE = 90.0
"""Seconds a server process may take to report its ports (loading TensorFlow included)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now (closed again: another process may take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m tfserve_nb.model_server`` with the given flags, on ports it reports."""

    def __init__(self, tmp_path: Path, *flags: str) -> None:
        self.port_file = tmp_path / "ports.json"
        self.log_path = tmp_path / "server.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tfserve_nb.model_server",
                    *flags,
                    f"--port_file={self.port_file}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(
                self._reported_ports, "the server's port file", STARTUP_DEADLINE, interval=0.05
            )
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"server did not start ({exc}):\n{self.logs()}") from None
        ports = json.loads(self.port_file.read_text())
        self.grpc_port, self.rest_port = ports["grpc_port"], ports["rest_port"]
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")

    def _reported_ports(self) -> bool:
        """Whether the port file is there; raises ``AssertionError`` once the process exited."""
        if self.port_file.exists():
            return True
        if self.popen.poll() is not None:
            raise AssertionError(f"exited with code {self.popen.returncode}")
        return False

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rest(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rest_port}{path}", data=body, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> None:
        stop_process(self.popen, 10)


def canonical_predict(channel, name, x, version=None):
    """TF Serving's documented client code, verbatim in spirit."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = "serving_default"
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x, shape=x.shape))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(request, 30.0)
    return response, tf.make_ndarray(response.outputs["y"])
