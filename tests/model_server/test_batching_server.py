"""``--enable_batching`` through a real server process: batched answers equal unbatched ones,
one request's error stays its own, padding never shows, a full queue answers UNAVAILABLE (503),
gRPC and REST share one queue, and a version's scheduler goes away with the version.

Batch composition is made deterministic, not timed: the ``merging`` server waits up to a minute
for a batch to fill (``max_batch_size`` 4), so a batch runs exactly when the test has sent four
rows; the ``padding`` server runs every batch at once and is sent one request at a time, so each
batch holds one request, padded up to an allowed size.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from tests.helpers.server_process import ServerProcess
from tests.helpers.waiting import wait_until
from tfserve_nb.batching.batch_scheduler import QUEUE_FULL_MESSAGE
from tfserve_nb.config import ModelConfig, render_config_file
from tfserve_nb.protocol import tensor_proto

DEADLINE = 60.0
MERGING = """
max_batch_size { value: 4 }
batch_timeout_micros { value: 60000000 }
max_enqueued_batches { value: 1 }
num_batch_threads { value: 1 }
"""
PADDING = """
max_batch_size { value: 4 }
batch_timeout_micros { value: 0 }
num_batch_threads { value: 2 }
allowed_batch_sizes: 2
allowed_batch_sizes: 4
"""
MONITORING = 'prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }'


def start_server(
    root: Path, batching: str, models: Mapping[str, Path], *flags: str
) -> ServerProcess:
    """A server with ``--enable_batching`` and ``batching`` as its parameters file, serving
    ``models`` (name → base path), with monitoring on and ``flags`` added."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "batching.txt").write_text(batching)
    (root / "monitoring.txt").write_text(MONITORING)
    configs = [ModelConfig(name, str(path)) for name, path in models.items()]
    (root / "models.config").write_text(render_config_file(configs))
    return ServerProcess(
        root,
        "--ephemeral_ports",
        f"--model_config_file={root / 'models.config'}",
        "--enable_batching",
        f"--batching_parameters_file={root / 'batching.txt'}",
        f"--monitoring_config_file={root / 'monitoring.txt'}",
        "--file_system_poll_wait_seconds=1",
        *flags,
    )


def grpc_predict(server: ServerProcess, name: str, inputs: Mapping[str, np.ndarray]) -> Any:
    """``PredictionService.Predict``; returns the response (raises ``grpc.RpcError``)."""
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for alias, array in inputs.items():
        request.inputs[alias].CopyFrom(tensor_proto.from_ndarray(array))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
    return stub.Predict(request, timeout=DEADLINE)


def grpc_outputs(server: ServerProcess, name: str, inputs: Mapping[str, np.ndarray]) -> dict:
    """The outputs of a gRPC predict, as arrays."""
    response = grpc_predict(server, name, inputs)
    return {a: tensor_proto.to_ndarray(t) for a, t in response.outputs.items()}


def grpc_error(server: ServerProcess, name: str, inputs: Mapping[str, np.ndarray]) -> tuple:
    """``(code, details)`` of a gRPC predict that must fail."""
    try:
        grpc_predict(server, name, inputs)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    raise AssertionError("the predict succeeded; expected an error")


def rest_predict(server: ServerProcess, name: str, instances: Any) -> tuple[int, Any]:
    """``(HTTP status, JSON body)`` of a row-format REST predict."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=DEADLINE)
    try:
        body = json.dumps({"instances": np.asarray(instances).tolist()})
        connection.request("POST", f"/v1/models/{name}:predict", body)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def metric(server: ServerProcess, sample: str) -> float:
    """The value of one Prometheus sample (name and labels as printed), 0 if absent."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=DEADLINE)
    try:
        connection.request("GET", "/monitoring/prometheus/metrics")
        page = connection.getresponse().read().decode()
    finally:
        connection.close()
    match = re.search(rf"^{re.escape(sample)} (\S+)$", page, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def half_plus_two(x: np.ndarray, version: int = 1) -> np.ndarray:
    """What ``tests/models.half_plus_two`` answers, exactly."""
    return (0.5 * x + 1 + version).astype(np.float32)


def rows(*values: float) -> np.ndarray:
    return np.array([[v] for v in values], np.float32)


WRAPPED_RUNS = ":tensorflow:serving:batching_session:wrapped_run_count"


# --- merging: a batch runs when four rows are in ---------------------------------------------


@pytest.fixture(scope="module")
def merging(tmp_path_factory, half_plus_two_models, multi_io_models):
    root = tmp_path_factory.mktemp("merging")
    server = start_server(
        root,
        MERGING,
        {
            "hp2": half_plus_two_models.make_base_path(root / "models"),
            "multi_io": multi_io_models.make_base_path(root / "models"),
        },
    )
    yield server
    server.stop()


def test_grpc_and_rest_requests_share_a_batch_and_get_their_own_rows(merging):
    runs = metric(merging, WRAPPED_RUNS)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(grpc_outputs, merging, "hp2", {"x": rows(1.0)})
        second = pool.submit(grpc_outputs, merging, "hp2", {"x": rows(2.0)})
        third = pool.submit(rest_predict, merging, "hp2", rows(3.0, 4.0))
        # The three requests hold four rows: only together do they fill the batch.
        np.testing.assert_array_equal(first.result()["y"], half_plus_two(rows(1.0)))
        np.testing.assert_array_equal(second.result()["y"], half_plus_two(rows(2.0)))
        assert third.result() == (200, {"predictions": [[3.5], [4.0]]})
    assert metric(merging, WRAPPED_RUNS) == runs + 1
    assert metric(
        merging, ':tensorflow:serving:batching_session:processed_batch_size_bucket{le="4.0"}'
    )


def test_several_inputs_and_outputs_are_merged_by_name(merging, multi_io_models):
    a = np.arange(8, dtype=np.float32).reshape(4, 2)
    b = np.arange(12, dtype=np.float32).reshape(4, 3)
    with ThreadPoolExecutor(4) as pool:
        answers = [
            pool.submit(grpc_outputs, merging, "multi_io", {"a": a[i : i + 1], "b": b[i : i + 1]})
            for i in range(4)
        ]
        for i, answer in enumerate(answers):
            both = np.concatenate([a[i : i + 1], b[i : i + 1]], axis=1)
            np.testing.assert_array_equal(answer.result()["doubled"], 2 * both)
            np.testing.assert_array_equal(answer.result()["sum"], both.sum(1, keepdims=True))


def test_a_bad_request_fails_alone(merging):
    runs = metric(merging, WRAPPED_RUNS)
    with ThreadPoolExecutor(8) as pool:
        good: list[Future] = [pool.submit(grpc_outputs, merging, "hp2", {"x": rows(1.0, 2.0)})]
        bad = {
            "dtype": pool.submit(grpc_error, merging, "hp2", {"x": np.ones((1, 1), np.int32)}),
            "name": pool.submit(grpc_error, merging, "hp2", {"z": rows(1.0)}),
            "too large": pool.submit(grpc_error, merging, "hp2", {"x": rows(1, 2, 3, 4, 5)}),
            "rest": pool.submit(rest_predict, merging, "hp2", [["a"]]),
        }
        for name, future in bad.items():  # refused before they could join the batch
            result = future.result()
            assert result[0] in (grpc.StatusCode.INVALID_ARGUMENT, 400), (name, result)
        assert bad["too large"].result()[1] == (
            "Task size 5 is larger than maximum input batch size 4"
        )
        assert metric(merging, WRAPPED_RUNS) == runs
        good.append(pool.submit(grpc_outputs, merging, "hp2", {"x": rows(3.0, 4.0)}))
        np.testing.assert_array_equal(good[0].result()["y"], half_plus_two(rows(1.0, 2.0)))
        np.testing.assert_array_equal(good[1].result()["y"], half_plus_two(rows(3.0, 4.0)))
    assert metric(merging, WRAPPED_RUNS) == runs + 1


INPUT_BATCHES = ":tensorflow:serving:batching_session:input_batch_size_count"


def test_a_full_queue_answers_unavailable_over_grpc_and_503_over_rest(merging):
    with ThreadPoolExecutor(2) as pool:
        submitted = metric(merging, INPUT_BATCHES)
        waiting = pool.submit(grpc_outputs, merging, "hp2", {"x": rows(1.0)})
        # Wait for the scheduler to take the waiting row (it counts a request's size just
        # before queuing it). A 4-row request sent earlier would run alone, full, and could
        # still hold the queue's one batch when the row arrives, refusing the row instead.
        wait_until(lambda: metric(merging, INPUT_BATCHES) > submitted, "the waiting row")

        def refused() -> tuple | None:
            """A 4-row request does not fit next to the waiting row, and the one batch the
            queue may hold is taken: refused."""
            try:
                answer = grpc_outputs(merging, "hp2", {"x": rows(5, 6, 7, 8)})
            except grpc.RpcError as exc:
                return exc.code(), exc.details()
            np.testing.assert_array_equal(answer["y"], half_plus_two(rows(5, 6, 7, 8)))
            return None

        code, details = wait_until(refused, "a full queue")
        assert code == grpc.StatusCode.UNAVAILABLE
        assert details.startswith(QUEUE_FULL_MESSAGE)
        status, body = rest_predict(merging, "hp2", rows(5, 6, 7, 8))
        assert status == 503 and body["error"].startswith(QUEUE_FULL_MESSAGE)
        assert not waiting.done()
        fill = pool.submit(grpc_outputs, merging, "hp2", {"x": rows(2.0, 3.0, 4.0)})
        np.testing.assert_array_equal(waiting.result()["y"], half_plus_two(rows(1.0)))
        np.testing.assert_array_equal(fill.result()["y"], half_plus_two(rows(2.0, 3.0, 4.0)))


# --- padding: every request is its own batch, padded -----------------------------------------


@pytest.fixture(scope="module")
def padding_server(tmp_path_factory, half_plus_two_models, digits_models):
    """Also serves ``versioned``, a half_plus_two base path the version test adds to."""
    root = tmp_path_factory.mktemp("padding")
    models = root / "models"
    server = start_server(
        root,
        PADDING,
        {
            "hp2": half_plus_two_models.make_base_path(models),
            "digits": digits_models.make_base_path(models),
            "versioned": half_plus_two_models.make_base_path(models, name="versioned"),
        },
    )
    yield server
    server.stop()


@pytest.mark.parametrize("size", [1, 3])
def test_padding_rows_are_sliced_away(padding_server, size):
    padded = 2 if size == 1 else 4
    sample = (
        ":tensorflow:serving:batching_session:padding_size_count"
        f'{{execution_batch_size="{padded}"}}'
    )
    others = (
        ':tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name=""}',
        ":tensorflow:serving:batching_session:input_batch_size_count",
        ":tensorflow:serving:batching_session:processed_batch_size_count",
    )
    before = metric(padding_server, sample)
    others_before = [metric(padding_server, name) for name in others]
    x = rows(*range(size))
    np.testing.assert_array_equal(
        grpc_outputs(padding_server, "hp2", {"x": x})["y"], half_plus_two(x)
    )
    assert rest_predict(padding_server, "hp2", x) == (
        200,
        {"predictions": half_plus_two(x).tolist()},
    )
    assert metric(padding_server, sample) == before + 2
    # one task and one batch per request (gRPC, then REST), each measured once
    assert [metric(padding_server, name) for name in others] == [n + 2 for n in others_before]


def test_a_mis_shaped_request_gets_tensorflows_error_alone(padding_server):
    """No shape check of our own, as upstream: the kernel refuses [1,2] for a [?,1] input, in a
    batch of its own (its non-batch shape differs), and the server keeps answering."""
    code, details = grpc_error(padding_server, "hp2", {"x": np.ones((1, 2), np.float32)})
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Matrix size-incompatible: In[0]: [2,2], In[1]: [1,1]" in details, details
    x = rows(1.0)
    np.testing.assert_array_equal(
        grpc_outputs(padding_server, "hp2", {"x": x})["y"], half_plus_two(x)
    )


def test_batched_digits_answers_equal_the_saved_model_called_alone(
    padding_server, digits_models, digits_data
):
    import tensorflow as tf

    signature = tf.saved_model.load(str(digits_models.exports[1])).signatures["serving_default"]
    images = digits_data.x_test[:24]
    with ThreadPoolExecutor(8) as pool:
        answers = [
            pool.submit(grpc_outputs, padding_server, "digits", {"pixels": images[i : i + n]})
            for i, n in zip(range(0, 24, 3), [1, 2, 3, 1, 2, 3, 1, 2], strict=True)
        ]
        for i, answer in zip(range(0, 24, 3), answers, strict=True):
            got = answer.result()["output_0"]
            alone = signature(pixels=tf.constant(images[i : i + len(got)]))["output_0"].numpy()
            np.testing.assert_allclose(got, alone, rtol=1e-6, atol=1e-7)


def test_a_new_version_gets_a_scheduler_of_its_own(padding_server, half_plus_two_models):
    x = rows(1.0, 2.0, 3.0)
    np.testing.assert_array_equal(
        grpc_outputs(padding_server, "versioned", {"x": x})["y"], half_plus_two(x)
    )
    half_plus_two_models.add_version(padding_server.port_file.parent / "models" / "versioned", 2)

    def states() -> dict[str, str]:
        _, body = padding_server.rest("GET", "/v1/models/versioned")
        return {s["version"]: s["state"] for s in body["model_version_status"]}

    # Version 1 unloads only once its scheduler has closed (it waits for queued requests).
    wait_until(lambda: states() == {"2": "AVAILABLE", "1": "END"}, "version 1 to unload")
    response = grpc_predict(padding_server, "versioned", {"x": x})
    assert response.model_spec.version.value == 2
    np.testing.assert_array_equal(
        tensor_proto.to_ndarray(response.outputs["y"]), half_plus_two(x, 2)
    )


# --- per-model parameters: each version's own batching_params.pbtxt --------------------------


def test_per_model_batching_parameters_come_from_each_version(tmp_path, half_plus_two_models):
    models = tmp_path / "models"
    own = half_plus_two_models.make_base_path(models, name="own")
    (own / "1" / "batching_params.pbtxt").write_text(
        "max_batch_size { value: 2 }\nbatch_timeout_micros { value: 0 }\n"
    )
    plain = half_plus_two_models.make_base_path(models, name="plain")
    server = start_server(
        tmp_path,
        PADDING,  # the server-wide parameters (max_batch_size 4): their pool only, here
        {"own": own, "plain": plain},
        "--enable_per_model_batching_parameters",
        "--max_num_load_retries=0",
    )
    try:
        assert grpc_error(server, "own", {"x": rows(1, 2, 3)}) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Task size 3 is larger than maximum input batch size 2",
        )
        np.testing.assert_array_equal(
            grpc_outputs(server, "own", {"x": rows(1, 2)})["y"], half_plus_two(rows(1, 2))
        )
        x = rows(*range(6))  # no file: not batched, so no batch size limit at all
        np.testing.assert_array_equal(
            grpc_outputs(server, "plain", {"x": x})["y"], half_plus_two(x)
        )

        # A version whose file does not parse fails to load; the one before keeps serving.
        staging = own / ".tmp-2"
        shutil.copytree(half_plus_two_models.exports[2], staging)
        (staging / "batching_params.pbtxt").write_text("max_batch_size: oops")
        staging.rename(own / "2")

        def version_2() -> dict[str, Any]:
            _, body = server.rest("GET", "/v1/models/own/versions/2")
            return next((s for s in body.get("model_version_status", [])), {})

        failed = wait_until(lambda: version_2().get("state") == "END" and version_2(), "v2 END")
        assert failed["status"] == {
            "error_code": "INVALID_ARGUMENT",
            "error_message": f"Invalid protobuf file: '{own / '2' / 'batching_params.pbtxt'}'",
        }
        assert grpc_predict(server, "own", {"x": rows(1)}).model_spec.version.value == 1
    finally:
        server.stop()
