"""The entry points as a user types them: ``tfserve-nb model-server`` with
``tensorflow_model_server``'s flags, answering TF Serving's canonical client code, and
``tfserve-nb demo`` (README command 1) running the main job end to end."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np

from tests.helpers.waiting import wait_until

CLI = str(Path(sys.executable).with_name("tfserve-nb"))
STARTUP_DEADLINE = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_console_script_serves_canonical_client_the_in_process_numbers(
    tmp_path, digits_base_path, digits_models, digits_data
):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    port, rest_port = free_port(), free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                CLI,
                "model-server",
                f"--port={port}",
                f"--rest_api_port={rest_port}",
                "--model_name=digits",
                f"--model_base_path={digits_base_path.resolve()}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def serving() -> bool:
        text = log.read_text()
        assert server.poll() is None or "Running gRPC ModelServer at" in text, text
        return "Running gRPC ModelServer at" in text

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        wait_until(serving, "the server to say it runs", STARTUP_DEADLINE, interval=0.05)
        x = digits_data.x_test[:16]
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "digits"
        request.model_spec.signature_name = "serving_default"
        request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(x, shape=x.shape))
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, 30.0)
        served = tf.make_ndarray(response.outputs["output_0"])
        loaded = tf.saved_model.load(str(digits_models.exports[1]))
        expected = loaded.signatures["serving_default"](pixels=tf.constant(x))["output_0"]
        np.testing.assert_array_equal(served, expected.numpy())
        assert response.model_spec.version.value == 1
    finally:
        channel.close()
        server.terminate()
        assert server.wait(30) == 0, log.read_text()


def test_demo_runs_the_main_job_end_to_end(tmp_path):
    done = subprocess.run(
        [CLI, "demo", f"--base-dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in ("Export v1", "Serve it", "Predict 10", "improved v2", "Pin v1 back", "Stop"):
        assert f"== {step}" in out or step in out, step
    assert re.search(r"during the switch \d+ requests answered .*, 0 failed", out), out
    assert "now v1 answers" in out and re.search(r"\nSummary: cold start [\d.]+ s", out)
    assert sorted(p.name for p in (tmp_path / "digits").iterdir()) == ["1", "2"]
