"""TF Serving's integration-test base (``model_servers/test_util/
tensorflow_model_server_test_base.py``), ported to start our embedded server.

:class:`ModelServers` is upstream's ``RunServer``: the same flags (``--rest_api_timeout_in_ms``,
``--grpc_socket_path``, ``--model_config_file``, ``--prefer_tflite_model``, batching,
``--grpc_channel_arguments`` ending in ``grpc.so_reuseaddr=1``, ...), and one server per
distinct set of arguments, handed again to every test that asks for the same one. Where it
differs, only in how a server is found and kept, not in what is asked of it:

- ``python -m tfserve_nb.model_server`` instead of the ``tensorflow_model_server`` binary,
  through ``tests.helpers.server_process.ServerProcess`` (our ``--port_file`` extra tells when
  both ports listen, or the process ends, and its log is kept for the failure message);
- ``127.0.0.1`` instead of ``localhost``, and a socket path of its own per server instead of
  upstream's shared ``/tmp/tf-serving.sock``, so parallel runs on one machine do not collide;
- the servers stop when the test module ends (upstream kills them at exit), and a server that
  failed to start is not started again for the next test with the same arguments: its error is
  raised again;
- :func:`call_rest` tries once: the port file guarantees REST is listening, and upstream's 60
  retries a second apart would only turn a failure into a minute's wait.

:func:`verify_predict_request` is upstream's ``VerifyPredictRequest``, building the
``PredictRequest`` field by field as upstream does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from tests.helpers.server_process import ServerProcess, free_port

RPC_TIMEOUT = 5.0
"""Upstream's ``RPC_TIMEOUT`` of the test base (``VerifyPredictRequest``)."""

HTTP_REST_TIMEOUT_MS = 5000
"""Upstream's ``--rest_api_timeout_in_ms``."""

WAIT_FOR_SERVER_READY_INT_SECS = 60
"""How long upstream's ``WaitForServerReady`` probes a started server."""

DEFAULT_SERVING_SIGNATURE_DEF_KEY = "serving_default"

SERVER = (sys.executable, "-m", "tfserve_nb.model_server")
"""Our ``tensorflow_model_server``."""


@dataclass
class RunningServer:
    """What upstream's ``RunServer`` returns: the process and its two ``host:port`` addresses,
    plus the path of its gRPC Unix socket."""

    process: ServerProcess
    grpc_address: str
    rest_address: str
    grpc_socket_path: Path


@dataclass
class ModelServers:
    """Upstream's ``RunServer`` and its ``model_servers_dict``: one server per argument set."""

    root: Path
    _servers: dict[tuple[Any, ...], RunningServer | AssertionError] = field(default_factory=dict)
    _socket_dirs: list[Path] = field(default_factory=list)

    def flags(
        self,
        model_name: str | None,
        model_path: Path | None,
        *,
        grpc_port: int,
        rest_api_port: int,
        grpc_socket_path: Path,
        model_type: str = "tf",
        model_config_file: Path | None = None,
        monitoring_config_file: Path | None = None,
        batching_parameters_file: Path | None = None,
        grpc_channel_arguments: str = "",
        model_config_file_poll_period: int | None = None,
        enable_profiler: bool = False,
    ) -> list[str]:
        """The flags upstream's ``RunServer`` passes (in its order). ``enable_profiler`` adds
        ``--enable_profiler``, which upstream's server has on by default and ours only when
        asked (its backend listens on all interfaces)."""
        command = [
            f"--port={grpc_port}",
            f"--rest_api_port={rest_api_port}",
            f"--rest_api_timeout_in_ms={HTTP_REST_TIMEOUT_MS}",
            f"--grpc_socket_path={grpc_socket_path}",
        ]
        if model_config_file:
            command.append(f"--model_config_file={model_config_file}")
        elif model_path:
            command += [f"--model_name={model_name}", f"--model_base_path={model_path}"]
        else:
            raise ValueError("Both model_config_file and model_path cannot be empty!")
        if model_type == "tflite":
            command.append("--prefer_tflite_model=true")
        if monitoring_config_file:
            command.append(f"--monitoring_config_file={monitoring_config_file}")
        if model_config_file_poll_period is not None:
            command.append(f"--model_config_file_poll_wait_seconds={model_config_file_poll_period}")
        if batching_parameters_file:
            command += [
                "--enable_batching",
                f"--batching_parameters_file={batching_parameters_file}",
            ]
        channel_arguments = [a for a in (grpc_channel_arguments, "grpc.so_reuseaddr=1") if a]
        command.append(f"--grpc_channel_arguments={','.join(channel_arguments)}")
        if enable_profiler:
            command.append("--enable_profiler")
        return command

    def _socket_path(self) -> Path:
        # Unix socket paths are limited to 107 bytes: a short directory of its own in /tmp.
        directory = Path(tempfile.mkdtemp(prefix="tfs-upstream-", dir="/tmp"))
        self._socket_dirs.append(directory)
        return directory / "tf-serving.sock"

    def run_server(
        self, model_name: str | None, model_path: Path | None, **options: Any
    ) -> RunningServer:
        """Start the server for these arguments, or return the one already started for them.

        ``options`` are upstream's keyword arguments: ``model_type`` (``"tf"``/``"tflite"``),
        ``model_config_file``, ``monitoring_config_file``, ``batching_parameters_file``,
        ``grpc_channel_arguments``, ``model_config_file_poll_period``. Returns once the server
        answers on its gRPC port (upstream's ``wait_for_server_ready=True``)."""
        key = (model_name, str(model_path), *sorted((k, str(v)) for k, v in options.items()))
        known = self._servers.get(key)
        if isinstance(known, AssertionError):
            raise AssertionError(f"(an earlier test's start of this server failed) {known}")
        if known is not None:
            return known
        grpc_port, rest_api_port = free_port(), free_port()
        socket_path = self._socket_path()
        flags = self.flags(
            model_name,
            model_path,
            grpc_port=grpc_port,
            rest_api_port=rest_api_port,
            grpc_socket_path=socket_path,
            **options,
        )
        directory = Path(tempfile.mkdtemp(prefix="server-", dir=self.root))
        try:
            process = ServerProcess(directory, *flags)
        except AssertionError as exc:
            self._servers[key] = exc
            raise
        assert (process.grpc_port, process.rest_port) == (grpc_port, rest_api_port)
        server = RunningServer(
            process, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{rest_api_port}", socket_path
        )
        self._servers[key] = server
        wait_for_server_ready(server.grpc_address)
        return server

    def start_unready(
        self, model_name: str | None, model_path: Path | None, **options: Any
    ) -> subprocess.Popen[bytes]:
        """Upstream's ``RunServer(..., pipe=subprocess.PIPE, wait_for_server_ready=False)``:
        the process, its standard error a pipe; nothing waited for."""
        flags = self.flags(
            model_name,
            model_path,
            grpc_port=free_port(),
            rest_api_port=free_port(),
            grpc_socket_path=self._socket_path(),
            **options,
        )
        return subprocess.Popen(
            [*SERVER, *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def stop_all(self) -> None:
        """Stop every server: all are asked to end first, then each is waited for (killed
        after 10 s)."""
        running = [s.process for s in self._servers.values() if isinstance(s, RunningServer)]
        for process in running:
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in running:
            try:
                process.popen.wait(10)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
        self._servers.clear()
        for directory in self._socket_dirs:
            shutil.rmtree(directory, ignore_errors=True)


def wait_for_server_ready(address: str) -> None:
    """Upstream's ``WaitForServerReady``: predict on ``intentionally_missing_model`` until the
    error says ``Servable`` (gRPC serves). Like upstream, it gives up silently."""
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "intentionally_missing_model"
    deadline = time.monotonic() + WAIT_FOR_SERVER_READY_INT_SECS
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while time.monotonic() < deadline:
            try:
                stub.Predict(request, RPC_TIMEOUT)
            except grpc.RpcError as error:
                if "Servable" in (error.details() or ""):
                    return
            time.sleep(0.1)


@contextmanager
def prediction_service(address: str) -> Iterator[Any]:
    """A ``PredictionServiceStub`` on a fresh channel to ``address`` (``host:port`` or
    ``unix:PATH``), closed afterwards."""
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


@contextmanager
def model_service(address: str) -> Iterator[Any]:
    """A ``ModelServiceStub`` on a fresh channel to ``address``, closed afterwards."""
    from tensorflow_serving.apis import model_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        yield model_service_pb2_grpc.ModelServiceStub(channel)


def verify_model_spec(
    actual: Any, exp_model_name: str, exp_signature_name: str, exp_version: int
) -> None:
    """Upstream's ``_VerifyModelSpec``."""
    assert actual.name == exp_model_name
    assert actual.signature_name == exp_signature_name
    assert actual.version.value == exp_version


def verify_predict_request(
    model_server_address: str,
    expected_output: float,
    expected_version: int,
    model_name: str = "default",
    specify_output: bool = True,
    batch_input: bool = False,
    signature_name: str = DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    rpc_timeout: float = RPC_TIMEOUT,
) -> None:
    """Upstream's ``VerifyPredictRequest``: ``x`` = float [2.0] of shape [1] ([1,1] with
    ``batch_input``), ``output_filter`` ``y`` with ``specify_output``; the answer must hold
    ``y`` as DT_FLOAT with one value, ``expected_output``, and the request's model spec."""
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    with prediction_service(model_server_address) as stub:
        result = stub.Predict(request, rpc_timeout)
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs["y"].float_val) == 1
    assert result.outputs["y"].float_val[0] == expected_output
    verify_model_spec(result.model_spec, request.model_spec.name, signature_name, expected_version)


def call_rest(url: str, req: Any) -> bytes:
    """Upstream's ``CallREST``: POST ``req`` as JSON (GET when ``None``) and return the body.
    An HTTP error fails with its status and body."""
    data = json.dumps(req).encode("utf-8") if req is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{url} answered {exc.code}: {exc.read().decode()!r}") from None


def sorted_object(obj: Any) -> Any:
    """Upstream's ``SortedObject``: dicts as sorted ``(key, value)`` lists and lists sorted,
    all the way down, so JSON without meaningful order compares equal."""
    if isinstance(obj, dict):
        return sorted((k, sorted_object(v)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return sorted(sorted_object(x) for x in obj)
    return obj


def model_version(model_path: Path) -> int:
    """Upstream's ``_GetModelVersion``: the one version directory under ``model_path``."""
    (version,) = (p.name for p in model_path.iterdir())
    return int(version)
