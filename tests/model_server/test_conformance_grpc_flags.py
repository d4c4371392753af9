"""Contract §1, the gRPC server's flags, on real server processes with real clients:
``--grpc_socket_path`` (gRPC on a Unix socket, also with ``--port=0``), ``--grpc_channel_arguments``
(applied: a message limit refuses a big request, a connection age closes connections) and
``--enable_profiler`` (``tensorflow.ProfilerService`` on the gRPC port, traced by TensorFlow's own
profiler client).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.helpers.conformance import (
    outputs_of,
    predict_request,
    rest_json,
    run_to_exit,
    write_config,
)
from tests.helpers.server_process import STARTUP_DEADLINE, ServerProcess, free_port
from tests.helpers.waiting import wait_until
from tfserve_nb.config import ModelConfig

MAX_RECEIVE_BYTES = 65536
UPSTREAM_CHANNEL_ARGUMENTS = "grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb"
"""Upstream's ``testGoodGrpcChannelArgs`` (its harness adds ``grpc.so_reuseaddr=1``)."""


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory of its own under /tmp: a Unix socket path must stay under 108 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="tfs-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _stale_socket(path: Path) -> None:
    """Leave a socket file at ``path`` that nobody listens on (a killed server's)."""
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))


def _predict(channel: grpc.Channel, name: str, x: np.ndarray) -> np.ndarray:
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request(name, {"x": x}), timeout=30)
    return outputs_of(response)["y"]


@pytest.fixture(scope="module")
def socket_server(tmp_path_factory, half_plus_two_models) -> Iterator[tuple[ServerProcess, Path]]:
    """gRPC on a Unix socket only (``--port=0``; a stale socket file was in the way), REST on
    a port, a receive limit of :data:`MAX_RECEIVE_BYTES` (set twice: the last wins, as
    upstream's ``ServerBuilder`` replaces), the profiler off. Serves ``hp2`` and ``both`` (a
    SavedModel version that also holds a ``model.tflite``: without ``--prefer_tflite_model``
    the SavedModel answers). Stopping it must remove the socket file."""
    from tests.helpers import tflite_models

    root = tmp_path_factory.mktemp("socket")
    both = half_plus_two_models.make_base_path(root, name="both")
    (both / "1" / "model.tflite").write_bytes(tflite_models.session_half_plus(3.0))
    configs = [
        ModelConfig("hp2", str(half_plus_two_models.make_base_path(root))),
        ModelConfig("both", str(both)),
    ]
    directory = Path(tempfile.mkdtemp(prefix="tfs-", dir="/tmp"))
    path = directory / "tf-serving.sock"
    _stale_socket(path)
    server = ServerProcess(
        root,
        f"--model_config_file={write_config(root / 'models.config', configs)}",
        "--port=0",
        f"--grpc_socket_path={path}",
        f"--rest_api_port={free_port()}",
        "--grpc_channel_arguments=grpc.lb_policy_name=grpclb,grpc.so_reuseaddr=1,"
        f"grpc.max_receive_message_length=1024,grpc.max_receive_message_length={MAX_RECEIVE_BYTES}",
        "--enable_profiler=false",
    )
    try:
        yield server, path
        server.stop()
        assert server.popen.returncode == 0, server.logs()
        assert not path.exists(), "the socket file outlived the server"
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_grpc_socket_path_serves_grpc_with_no_tcp_port(socket_server):
    """``--port=0`` with a socket path is valid (upstream's check asks for either); clients
    dial ``unix:PATH``; REST is served as usual."""
    server, path = socket_server
    with grpc.insecure_channel(f"unix:{path}") as channel:
        np.testing.assert_array_equal(_predict(channel, "hp2", np.array([[1.0]], "f4")), [[2.5]])
        np.testing.assert_array_equal(_predict(channel, "both", np.array([[1.0]], "f4")), [[2.5]])
    assert server.grpc_port == 0
    logs = server.logs()
    assert f"Running gRPC ModelServer at UNIX socket {path} ..." in logs
    assert "Running gRPC ModelServer at 127.0.0.1" not in logs
    assert rest_json(server, "POST", "/v1/models/hp2:predict", {"instances": [[1.0]]}) == (
        200,
        {"predictions": [[2.5]]},
    )


def test_channel_arguments_limit_received_messages(socket_server):
    """``grpc.max_receive_message_length`` overrides the server's unlimited default: a request
    over the limit is refused with RESOURCE_EXHAUSTED before it reaches the model."""
    _, path = socket_server
    with grpc.insecure_channel(f"unix:{path}") as channel:
        small = np.ones((1000, 1), np.float32)  # 4 kB: over the first limit, under the last
        np.testing.assert_array_equal(_predict(channel, "hp2", small), small * 0.5 + 2)
        with pytest.raises(grpc.RpcError) as refused:
            _predict(channel, "hp2", np.ones((MAX_RECEIVE_BYTES // 4, 1), np.float32))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MAX_RECEIVE_BYTES) in refused.value.details()


def test_channel_arguments_age_connections(tmp_path, half_plus_two_base):
    """Upstream's ``testGoodGrpcChannelArgs``, and the effect of its
    ``grpc.max_connection_age_ms=2000``: the server closes (GOAWAY) a connection that old, and
    the client's channel, READY after a predict, goes IDLE; the next predict reconnects.
    (Without the argument, a channel stays READY as long as the client keeps it.)"""
    server = ServerProcess(
        tmp_path,
        f"--model_base_path={half_plus_two_base}",
        "--ephemeral_ports",
        f"--grpc_channel_arguments={UPSTREAM_CHANNEL_ARGUMENTS},grpc.so_reuseaddr=1",
    )
    states: list[tuple[float, grpc.ChannelConnectivity]] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            channel.subscribe(lambda state: states.append((time.monotonic(), state)))
            np.testing.assert_array_equal(
                _predict(channel, "default", np.array([[1.0]], "f4")), [[2.5]]
            )
            ready = next(t for t, s in states if s is grpc.ChannelConnectivity.READY)
            idle = wait_until(
                lambda: [t for t, s in states if t > ready and s is grpc.ChannelConnectivity.IDLE],
                "the server to close the connection",
                30,
            )
            assert 1.0 < idle[0] - ready < 10, states  # 2 s, give or take the server's jitter
            np.testing.assert_array_equal(
                _predict(channel, "default", np.array([[2.0]], "f4")), [[3.0]]
            )
    finally:
        server.stop()


def test_no_profiler_service_when_turned_off(socket_server):
    _, path = socket_server
    with grpc.insecure_channel(f"unix:{path}") as channel:
        monitor = channel.unary_unary("/tensorflow.ProfilerService/Monitor")
        with pytest.raises(grpc.RpcError) as missing:
            monitor(b"", timeout=30)
    assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_socket_path_that_cannot_be_bound_fails_start_up_as_upstream(
    tmp_path, half_plus_two_base
):
    """Upstream's ``BuildAndStart`` returns no server and fails with its text; the log names
    the address."""
    path = tmp_path / "no-such-directory" / "tf-serving.sock"
    code, out = run_to_exit(
        f"--model_base_path={half_plus_two_base}", "--port=0", f"--grpc_socket_path={path}"
    )
    assert code == 255, out
    assert (
        "Failed to start server. Error: INVALID_ARGUMENT: Failed to BuildAndStart gRPC server"
        in out
    )
    assert f"Could not bind the gRPC server to unix:{path}" in out


def test_profiler_service_traces_the_server(tmp_path, half_plus_two_base):
    """Upstream's ``test_profiler_service_with_valid_trace_request``: ``profiler_client.trace``
    on the gRPC port, with ``--enable_profiler`` (ours is off unless asked), while predicts
    run; the trace lands in the client's logdir, as TensorBoard's profile plugin reads it."""
    from tensorflow.python.profiler import profiler_client

    server = ServerProcess(
        tmp_path,
        f"--model_base_path={half_plus_two_base}",
        "--model_name=hp2",
        "--ephemeral_ports",
        "--enable_profiler",
    )
    stop = threading.Event()

    def predicts() -> None:
        while not stop.is_set():
            _predict(server.channel, "hp2", np.array([[1.0], [2.0]], "f4"))
            time.sleep(0.05)

    load = threading.Thread(target=predicts, daemon=True)
    try:
        assert "Profiler service is enabled" in server.logs()
        load.start()
        logdir = tmp_path / "logs"
        logdir.mkdir()
        profiler_client.trace(f"grpc://127.0.0.1:{server.grpc_port}", str(logdir), 1000, "", 10)
        traces = list((logdir / "plugins" / "profile").glob("*/*.xplane.pb"))
        assert len(traces) == 1 and traces[0].stat().st_size > 0, traces
        # TensorFlow's SaveXSpace names it after the host the client asked, ':' made '_'
        assert traces[0].name == f"127.0.0.1_{server.grpc_port}.xplane.pb"
        stop.set()
        load.join(STARTUP_DEADLINE)
        assert not load.is_alive()
        wait_until(lambda: "profiler server" in server.logs(), "the profiler server's log line")
    finally:
        stop.set()
        server.stop()
