"""The embedded model server as a real process on real sockets, driven by TF Serving's own
client code (tensorflow-serving-api stubs, REST JSON)."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import numpy as np
import pytest

from tests.helpers.server_process import (
    STARTUP_DEADLINE,
    ServerProcess,
    canonical_predict,
    free_port,
)
from tests.helpers.waiting import wait_until


@pytest.fixture
def half_plus_two_server(tmp_path, half_plus_two_base):
    port, rest_port = free_port(), free_port()
    server = ServerProcess(
        tmp_path,
        f"--port={port}",
        f"--rest_api_port={rest_port}",
        "--model_name=hp2",
        f"--model_base_path={half_plus_two_base}",
        "--file_system_poll_wait_seconds=1",
    )
    assert (server.grpc_port, server.rest_port) == (port, rest_port)
    yield server
    server.stop()


def test_canonical_client_gets_in_process_numbers(half_plus_two_server, half_plus_two_models):
    import tensorflow as tf

    x = np.array([[1.0], [2.0], [5.0]], dtype=np.float32)
    response, y = canonical_predict(half_plus_two_server.channel, "hp2", x)
    loaded = tf.saved_model.load(str(half_plus_two_models.exports[1]))
    expected = loaded.signatures["serving_default"](x=tf.constant(x))["y"].numpy()
    np.testing.assert_array_equal(y, expected)
    assert y.ravel().tolist() == [2.5, 3.0, 4.5]
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_rest_predict_status_and_metadata(half_plus_two_server):
    server = half_plus_two_server
    status, body = server.rest("POST", "/v1/models/hp2:predict", b'{"instances": [[1.0], [2.0]]}')
    assert (status, body) == (200, {"predictions": [[2.5], [3.0]]})
    status, body = server.rest("POST", "/v1/models/hp2/versions/1:predict", b'{"inputs": [[4.0]]}')
    assert (status, body) == (200, {"outputs": [[4.0]]})
    status, body = server.rest("GET", "/v1/models/hp2")
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    status, body = server.rest("GET", "/v1/models/hp2/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "hp2", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["inputs"]["x"]["tensor_shape"]["dim"][1]["size"] == "1"
    assert signature["method_name"] == "tensorflow/serving/predict"


def test_errors_keep_the_server_serving(half_plus_two_server):
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    server = half_plus_two_server
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
    x = np.ones((1, 1), np.float32)

    def grpc_error(name="hp2", version=None, label=None, signature="", inputs=None):
        from tfserve_nb.protocol import tensor_proto

        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = version
        if label is not None:
            request.model_spec.version_label = label
        for alias, value in (inputs or {"x": x}).items():
            request.inputs[alias].CopyFrom(tensor_proto.from_ndarray(value))
        with pytest.raises(grpc.RpcError) as exc:
            stub.Predict(request, 30.0)
        return exc.value.code(), exc.value.details()

    assert grpc_error(name="nope") == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )
    assert grpc_error(version=7) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(hp2, 7)",
    )
    assert grpc_error(label="canary") == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: canary",
    )
    assert grpc_error(signature="nope") == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )
    assert grpc_error(inputs={"x": x, "z": x}) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. "
        "Missing but required: {}.",
    )
    code, details = grpc_error(inputs={"x": np.ones((1, 1), np.int32)})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "int32" in details

    status, body = server.rest("POST", "/v1/models/nope:predict", b'{"instances": [[1.0]]}')
    assert (status, body) == (404, {"error": "Servable not found for request: Latest(nope)"})
    status, body = server.rest("POST", "/v1/models/hp2:predict", b'{"instances": [["a"]]}')
    assert status == 400 and "a" in body["error"]
    status, body = server.rest("POST", "/v1/models/hp2:predict", b'{"instances": [[1.0]')
    assert status == 400 and body["error"].startswith("JSON Parse error")
    status, body = server.rest(
        "POST", "/v1/models/hp2:predict", b'{"signature_name": "nope", "instances": [[1.0]]}'
    )
    assert (status, body) == (
        400,
        {"error": 'Serving signature name: "nope" not found in signature def'},
    )
    status, body = server.rest("POST", "/v1/models/foo")
    assert (status, body) == (400, {"error": "Malformed request: POST /v1/models/foo"})
    status, body = server.rest("GET", "/v1/models")
    assert (status, body) == (400, {"error": "Missing model name in request."})
    status, body = server.rest("GET", "/v1/models/nope")
    assert (status, body) == (404, {"error": "Could not find any versions of model nope"})
    # after all that, it still answers
    _, y = canonical_predict(server.channel, "hp2", np.array([[2.0]], np.float32))
    assert y.tolist() == [[3.0]]
    assert server.popen.poll() is None


def test_new_version_is_picked_up_while_requests_succeed(
    half_plus_two_server, half_plus_two_base, half_plus_two_models
):
    import threading

    server = half_plus_two_server
    versions, failures, stop = [], [], threading.Event()

    def traffic():
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        while not stop.is_set():
            try:
                response, _ = canonical_predict(channel, "hp2", np.ones((1, 1), np.float32))
                versions.append(response.model_spec.version.value)
            except grpc.RpcError as exc:
                failures.append(exc.details())

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        half_plus_two_models.add_version(half_plus_two_base, 2)
        wait_until(
            lambda: versions and versions[-1] == 2, "version 2 to be served", 30, interval=0.05
        )
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert versions[0] == 1 and versions[-1] == 2
    # v1 answered until v2 took over: never an interleaving back to 1
    assert versions == sorted(versions)

    def states_once_1_ended() -> dict[str, str] | None:
        _status, body = server.rest("GET", "/v1/models/hp2")
        states = {s["version"]: s["state"] for s in body["model_version_status"]}
        return states if states.get("1") == "END" else None

    states = wait_until(states_once_1_ended, "version 1 to reach END", 30, interval=0.05)
    assert states == {"2": "AVAILABLE", "1": "END"}


def test_startup_failures(tmp_path):
    def run(*flags):
        done = subprocess.run(
            [sys.executable, "-m", "tfserve_nb.model_server", *flags],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stdout + done.stderr

    code, out = run("--port=8500")
    assert code != 0 and (
        "Both server_options.model_base_path and server_options.model_config_file are empty!" in out
    )
    code, out = run("--no_such_flag=1", "--model_base_path=/x")
    assert code != 0 and "--no_such_flag" in out
    code, out = run("--model_base_path=/x", "--batching_parameters_file=/b")
    assert code != 0 and "batching_parameters_file is set without setting" in out
    broken = tmp_path / "broken"
    (broken / "1").mkdir(parents=True)
    (broken / "1" / "saved_model.pb").write_bytes(b"not a protobuf")
    code, out = run(
        f"--model_base_path={broken}",
        "--model_name=broken",
        "--port=0",
        "--ephemeral_ports",
        "--max_num_load_retries=0",
    )
    assert code != 0
    assert "Failed to start server. Error: UNKNOWN: 1 model(s) did not become available" in out
    assert "{name: broken version: 1}" in out


def test_no_numeric_version_waits_and_logs_the_hint(tmp_path):
    base = tmp_path / "model"
    (base / "v1").mkdir(parents=True)
    port_file = tmp_path / "ports.json"
    with open(tmp_path / "log", "wb") as log:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tfserve_nb.model_server",
                f"--model_base_path={base}",
                "--model_name=m",
                "--ephemeral_ports",
                f"--port_file={port_file}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        hint = (
            f"No versions of servable m found under base path {base}. Did you forget to "
            "name your leaf directory as a number (eg. '/1/')?"
        )

        def hint_logged() -> bool:
            log = (tmp_path / "log").read_text(errors="replace")
            assert popen.poll() is None or hint in log, log
            return hint in log

        wait_until(hint_logged, "the hint in the log", STARTUP_DEADLINE, interval=0.1)
        assert not port_file.exists()  # no port opens before a version is AVAILABLE
    finally:
        popen.kill()
        popen.wait()
    assert os.path.isdir(base / "v1")
