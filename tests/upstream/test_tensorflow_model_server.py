"""TF Serving's integration suite, ``tensorflow_serving/model_servers/
tensorflow_model_server_test.py``, ported: one test per upstream test (its name in the
docstring), with upstream's requests, expected values, codes and texts, against our embedded
server started with upstream's flags (``upstream_harness.ModelServers``), through the
``tensorflow-serving-api`` stubs and plain HTTP as upstream.

Servers are shared as upstream shares them: one per distinct ``RunServer`` argument set, so
most tests here talk to the same ``default`` server of ``saved_model_half_plus_two_cpu``.
``docs/conformance.md`` ("Upstream integration suite") lists every upstream test and its port.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import upstream_models
from upstream_harness import (
    ModelServers,
    call_rest,
    model_service,
    model_version,
    prediction_service,
    sorted_object,
    verify_model_spec,
    verify_predict_request,
)

from tests.helpers.conformance import wait_for_states, write_atomically

RPC_TIMEOUT = 20.0
"""Upstream's ``RPC_TIMEOUT`` of this test file."""

BASE_CONFIG_PROTO = """
    model_config_list: {{
      config: {{
        name: "{name}",
        base_path: "{model_path}",
        model_platform: "tensorflow"
      }}
    }}
    """
"""The config file of upstream's config-reload tests."""


@pytest.fixture(scope="module")
def good_model_config_file(testdata: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Upstream's ``__BuildModelConfigFile``: ``good_model_config.txt`` with the paths of
    half_plus_two and half_plus_three substituted."""
    config = (
        testdata.good_model_config_template.read_text()
        .replace("${TEST_HALF_PLUS_TWO_DIR}", str(testdata.saved_model_half_plus_two_cpu))
        .replace("${TEST_HALF_PLUS_THREE_DIR}", str(testdata.saved_model_half_plus_three))
    )
    path = tmp_path_factory.mktemp("good_config") / "good_model_config.conf"
    path.write_text(config)
    return path


# --- ModelService and PredictionService over gRPC ---------------------------------------------


def test_get_model_status(model_servers: ModelServers, testdata: Any) -> None:
    """``testGetModelStatus``: one version, 123, with an OK status."""
    from tensorflow_serving.apis import get_model_status_pb2

    model_path = testdata.saved_model_half_plus_two_cpu
    address = model_servers.run_server("default", model_path).grpc_address
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    with model_service(address) as stub:
        result = stub.GetModelStatus(request, RPC_TIMEOUT)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].status.error_code == 0


def test_get_model_metadata(model_servers: ModelServers, testdata: Any) -> None:
    """``testGetModelMetadata``: the model spec and one metadata entry, ``signature_def``."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    model_path = testdata.saved_model_half_plus_two_cpu
    address = model_servers.run_server("default", model_path).grpc_address
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    with prediction_service(address) as stub:
        result = stub.GetModelMetadata(request, RPC_TIMEOUT)
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == model_version(model_path)
    assert len(result.metadata) == 1
    assert "signature_def" in result.metadata


def _test_classify(model_servers: ModelServers, model_path: Path) -> None:
    """Upstream's ``_TestClassify``: ``classify_x_to_y`` of one example ``x = 2`` scores 3."""
    from tensorflow_serving.apis import classification_pb2

    address = model_servers.run_server("default", model_path).grpc_address
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])
    with prediction_service(address) as stub:
        result = stub.Classify(request, RPC_TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    verify_model_spec(
        result.model_spec,
        request.model_spec.name,
        request.model_spec.signature_name,
        model_version(model_path),
    )


def test_classify(model_servers: ModelServers, testdata: Any) -> None:
    """``testClassify`` (TF1 model)."""
    _test_classify(model_servers, testdata.saved_model_half_plus_two_cpu)


def test_classify_tf2(model_servers: ModelServers, testdata: Any) -> None:
    """``testClassifyTf2`` (TF2 model: its signatures' method name is predict)."""
    _test_classify(model_servers, testdata.saved_model_half_plus_two_tf2_cpu)


def _test_regress(model_servers: ModelServers, model_path: Path) -> None:
    """Upstream's ``_TestRegress``: ``regress_x_to_y`` of one example ``x = 2`` is 3."""
    from tensorflow_serving.apis import regression_pb2

    address = model_servers.run_server("default", model_path).grpc_address
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])
    with prediction_service(address) as stub:
        result = stub.Regress(request, RPC_TIMEOUT)
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    verify_model_spec(
        result.model_spec,
        request.model_spec.name,
        request.model_spec.signature_name,
        model_version(model_path),
    )


def test_regress(model_servers: ModelServers, testdata: Any) -> None:
    """``testRegress`` (TF1 model)."""
    _test_regress(model_servers, testdata.saved_model_half_plus_two_cpu)


def test_regress_tf2(model_servers: ModelServers, testdata: Any) -> None:
    """``testRegressTf2`` (TF2 model)."""
    _test_regress(model_servers, testdata.saved_model_half_plus_two_tf2_cpu)


def _test_multi_inference(model_servers: ModelServers, model_path: Path) -> None:
    """Upstream's ``_TestMultiInference``: a regress and a classify task over one example
    ``x = 2``, both 3, each with its model spec."""
    from tensorflow_serving.apis import inference_pb2

    address = model_servers.run_server("default", model_path).grpc_address
    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add().model_spec.name = "default"
    request.tasks[0].model_spec.signature_name = "regress_x_to_y"
    request.tasks[0].method_name = "tensorflow/serving/regress"
    request.tasks.add().model_spec.name = "default"
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/classify"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])
    with prediction_service(address) as stub:
        result = stub.MultiInference(request, RPC_TIMEOUT)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for i in range(2):
        verify_model_spec(
            result.results[i].model_spec,
            request.tasks[i].model_spec.name,
            request.tasks[i].model_spec.signature_name,
            model_version(model_path),
        )


def test_multi_inference(model_servers: ModelServers, testdata: Any) -> None:
    """``testMultiInference`` (TF1 model)."""
    _test_multi_inference(model_servers, testdata.saved_model_half_plus_two_cpu)


def test_multi_inference_tf2(model_servers: ModelServers, testdata: Any) -> None:
    """``testMultiInferenceTf2`` (TF2 model)."""
    _test_multi_inference(model_servers, testdata.saved_model_half_plus_two_tf2_cpu)


def _test_predict(
    model_servers: ModelServers,
    model_path: Path,
    batching_parameters_file: Path | None = None,
    signature_name: str = "serving_default",
) -> None:
    """Upstream's ``_TestPredict``: ``x = [2]`` gives ``y = [3]``, with and without an output
    filter."""
    options = {"batching_parameters_file": batching_parameters_file}
    address = model_servers.run_server(
        "default", model_path, **{k: v for k, v in options.items() if v is not None}
    ).grpc_address
    expected_version = model_version(model_path)
    verify_predict_request(
        address,
        expected_output=3.0,
        expected_version=expected_version,
        signature_name=signature_name,
    )
    verify_predict_request(
        address,
        expected_output=3.0,
        specify_output=False,
        expected_version=expected_version,
        signature_name=signature_name,
    )


def test_predict_saved_model(model_servers: ModelServers, testdata: Any) -> None:
    """``testPredictSavedModel``."""
    _test_predict(model_servers, testdata.saved_model_half_plus_two_cpu)


# --- model config files -----------------------------------------------------------------------


def test_good_model_config(
    model_servers: ModelServers, testdata: Any, good_model_config_file: Path
) -> None:
    """``testGoodModelConfig``: half_plus_two (3 for x = 2) and half_plus_three (4) from one
    config file, with and without an output filter. (half_plus_three declares ``x`` with no
    shape while its graph's ``x:0`` is [?,1]: the [1]-shaped ``x`` is fed as it is.)"""
    address = model_servers.run_server(
        None, None, model_config_file=good_model_config_file
    ).grpc_address
    half_plus_two = model_version(testdata.saved_model_half_plus_two_cpu)
    half_plus_three = model_version(testdata.saved_model_half_plus_three)
    verify_predict_request(
        address, model_name="half_plus_two", expected_output=3.0, expected_version=half_plus_two
    )
    verify_predict_request(
        address,
        model_name="half_plus_two",
        expected_output=3.0,
        specify_output=False,
        expected_version=half_plus_two,
    )
    verify_predict_request(
        address,
        model_name="half_plus_three",
        expected_output=4.0,
        expected_version=half_plus_three,
    )
    verify_predict_request(
        address,
        model_name="half_plus_three",
        expected_output=4.0,
        specify_output=False,
        expected_version=half_plus_three,
    )


def test_bad_model_config(model_servers: ModelServers, testdata: Any) -> None:
    """``testBadModelConfig``: a config file that is not a text proto stops the server with
    protobuf's ``Error parsing text-format tensorflow.serving.ModelServerConfig`` on stderr."""
    proc = model_servers.start_unready(None, None, model_config_file=testdata.bad_model_config)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    error_message = b"Error parsing text-format tensorflow.serving.ModelServerConfig"
    assert stderr is not None
    assert stderr.find(error_message) > -1, (
        f"exit status {proc.returncode}; stderr:\n{stderr.decode(errors='replace')}\n"
        f"stdout:\n{stdout.decode(errors='replace')}"
    )


def test_model_config_reload(model_servers: ModelServers, testdata: Any, tmp_path: Path) -> None:
    """``testModelConfigReload``: with ``--model_config_file_poll_wait_seconds=1`` a rewritten
    config (half_plus_three instead of half_plus_two) is picked up. Upstream sleeps 10 s before
    asking; we wait until half_plus_three is AVAILABLE (at most 60 s), then ask the same."""
    config_path = tmp_path / "model_config.txt"
    config_path.write_text(
        BASE_CONFIG_PROTO.format(
            name="half_plus_two", model_path=testdata.saved_model_half_plus_two_cpu
        )
    )
    server = model_servers.run_server(
        None, None, model_config_file=config_path, model_config_file_poll_period=1
    )
    verify_predict_request(
        server.grpc_address,
        model_name="half_plus_two",
        expected_output=3.0,
        specify_output=False,
        expected_version=model_version(testdata.saved_model_half_plus_two_cpu),
    )
    write_atomically(
        config_path,
        BASE_CONFIG_PROTO.format(
            name="half_plus_three", model_path=testdata.saved_model_half_plus_three
        ),
    )
    version = model_version(testdata.saved_model_half_plus_three)
    wait_for_states(server.process, "half_plus_three", {version: "AVAILABLE"})
    verify_predict_request(
        server.grpc_address,
        model_name="half_plus_three",
        expected_output=4.0,
        specify_output=False,
        expected_version=version,
    )


def test_model_config_reload_with_zero_poll_period(
    model_servers: ModelServers, testdata: Any, tmp_path: Path
) -> None:
    """``testModelConfigReloadWithZeroPollPeriod``: with a poll period of 0 the config file is
    read once; a rewrite is not acted on, half_plus_two still serves."""
    config_path = tmp_path / "model_config.txt"
    config_path.write_text(
        BASE_CONFIG_PROTO.format(
            name="half_plus_two", model_path=testdata.saved_model_half_plus_two_cpu
        )
    )
    poll_period = 0
    address = model_servers.run_server(
        None, None, model_config_file=config_path, model_config_file_poll_period=poll_period
    ).grpc_address
    verify_predict_request(
        address,
        model_name="half_plus_two",
        expected_output=3.0,
        specify_output=False,
        expected_version=model_version(testdata.saved_model_half_plus_two_cpu),
    )
    write_atomically(
        config_path,
        BASE_CONFIG_PROTO.format(
            name="half_plus_three", model_path=testdata.saved_model_half_plus_three
        ),
    )
    # Upstream's window for a poll that must not happen: an observation, not a synchronisation
    # (no condition can say "nothing will happen").
    time.sleep(poll_period + 1)
    verify_predict_request(
        address,
        model_name="half_plus_two",
        expected_output=3.0,
        specify_output=False,
        expected_version=model_version(testdata.saved_model_half_plus_three),
    )


def test_good_grpc_channel_args(model_servers: ModelServers, testdata: Any) -> None:
    """``testGoodGrpcChannelArgs``: the server starts and serves with
    ``--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb``
    (and upstream's ``grpc.so_reuseaddr=1``)."""
    address = model_servers.run_server(
        "default",
        testdata.saved_model_half_plus_two_cpu,
        grpc_channel_arguments="grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
    ).grpc_address
    verify_predict_request(
        address,
        expected_output=3.0,
        specify_output=False,
        expected_version=model_version(testdata.saved_model_half_plus_three),
    )


# --- REST -------------------------------------------------------------------------------------


def _rest_url(model_servers: ModelServers, testdata: Any, path: str, **options: Any) -> str:
    server = model_servers.run_server("default", testdata.saved_model_half_plus_two_cpu, **options)
    return f"http://{server.rest_address}{path}"


def test_classify_rest(model_servers: ModelServers, testdata: Any) -> None:
    """``testClassifyREST``."""
    url = _rest_url(model_servers, testdata, "/v1/models/default:classify")
    json_req = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    resp_data = call_rest(url, json_req)
    assert json.loads(resp_data.decode()) == {"results": [[["", 3.0]]]}


def test_regress_rest(model_servers: ModelServers, testdata: Any) -> None:
    """``testRegressREST``."""
    url = _rest_url(model_servers, testdata, "/v1/models/default:regress")
    json_req = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    resp_data = call_rest(url, json_req)
    assert json.loads(resp_data.decode()) == {"results": [3.0]}


def test_predict_rest(model_servers: ModelServers, testdata: Any) -> None:
    """``testPredictREST``: scalar instances, fed as ``x`` of shape [3] (the signature says
    [?,1]; upstream does not check)."""
    url = _rest_url(model_servers, testdata, "/v1/models/default:predict")
    resp_data = call_rest(url, {"instances": [2.0, 3.0, 4.0]})
    assert json.loads(resp_data.decode()) == {"predictions": [3.0, 3.5, 4.0]}


def test_predict_columnar_rest(model_servers: ModelServers, testdata: Any) -> None:
    """``testPredictColumnarREST``."""
    url = _rest_url(model_servers, testdata, "/v1/models/default:predict")
    resp_data = call_rest(url, {"inputs": [2.0, 3.0, 4.0]})
    assert json.loads(resp_data.decode()) == {"outputs": [3.0, 3.5, 4.0]}


def test_readme_example(model_servers: ModelServers, testdata: Any) -> None:
    """Not in upstream's suite: TF Serving's README example, ``half_plus_two`` answering
    ``{"instances": [1.0, 2.0, 5.0]}`` with ``[2.5, 3.0, 4.5]``, over REST and the same tensor
    over gRPC; and a scalar ``x``, as upstream's manual client sends it (3.0 for 2.0)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    server = model_servers.run_server("half_plus_two", testdata.saved_model_half_plus_two_cpu)
    url = f"http://{server.rest_address}/v1/models/half_plus_two:predict"
    answer = json.loads(call_rest(url, {"instances": [1.0, 2.0, 5.0]}).decode())
    assert answer == {"predictions": [2.5, 3.0, 4.5]}
    with prediction_service(server.grpc_address) as stub:
        for x, y in (([1.0, 2.0, 5.0], [2.5, 3.0, 4.5]), (2.0, 3.0)):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "half_plus_two"
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(x, dtype=tf.float32))
            result = stub.Predict(request, 10)
            assert tf.make_ndarray(result.outputs["y"]).tolist() == y


def test_get_status_rest(model_servers: ModelServers, testdata: Any) -> None:
    """``testGetStatusREST``."""
    url = _rest_url(model_servers, testdata, "/v1/models/default")
    resp_data = call_rest(url, None)
    assert json.loads(resp_data.decode()) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def _json_tensor_info(name: str, dtype: str, dims: list[int] | None) -> dict[str, Any]:
    """A TensorInfo as upstream's ``half_plus_two_model_metadata.json`` writes it (``dims``
    ``None``: unknown rank)."""
    return {
        "dtype": dtype,
        "tensor_shape": {
            "dim": [{"size": str(size), "name": ""} for size in dims or []],
            "unknown_rank": dims is None,
        },
        "name": name,
    }


def _json_signature(method: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": inputs, "outputs": outputs, "method_name": method, "defaults": {}}


_EXAMPLES = _json_tensor_info("tf_example:0", "DT_STRING", None)
_BATCH_1 = [-1, 1]

HALF_PLUS_TWO_MODEL_METADATA = {
    "model_spec": {"name": "default", "signature_name": "", "version": "123"},
    "metadata": {
        "signature_def": {
            "signature_def": {
                "regress_x2_to_y3": _json_signature(
                    "tensorflow/serving/regress",
                    {"inputs": _json_tensor_info("x2:0", "DT_FLOAT", _BATCH_1)},
                    {"outputs": _json_tensor_info("y3:0", "DT_FLOAT", _BATCH_1)},
                ),
                "serving_default": _json_signature(
                    "tensorflow/serving/predict",
                    {"x": _json_tensor_info("x:0", "DT_FLOAT", _BATCH_1)},
                    {"y": _json_tensor_info("y:0", "DT_FLOAT", _BATCH_1)},
                ),
                "classify_x_to_y": _json_signature(
                    "tensorflow/serving/classify",
                    {"inputs": _EXAMPLES},
                    {"scores": _json_tensor_info("y:0", "DT_FLOAT", _BATCH_1)},
                ),
                "regress_x_to_y2": _json_signature(
                    "tensorflow/serving/regress",
                    {"inputs": _EXAMPLES},
                    {"outputs": _json_tensor_info("y2:0", "DT_FLOAT", _BATCH_1)},
                ),
                "regress_x_to_y": _json_signature(
                    "tensorflow/serving/regress",
                    {"inputs": _EXAMPLES},
                    {"outputs": _json_tensor_info("y:0", "DT_FLOAT", _BATCH_1)},
                ),
            }
        }
    },
}
"""Upstream's ``half_plus_two_model_metadata.json``, value for value."""


def test_get_model_metadata_rest(model_servers: ModelServers, testdata: Any) -> None:
    """``testGetModelMetadataREST``: the metadata JSON equals upstream's
    ``half_plus_two_model_metadata.json``, compared sorted as upstream compares it."""
    url = _rest_url(model_servers, testdata, "/v1/models/default/metadata")
    resp_data = call_rest(url, None)
    assert sorted_object(json.loads(resp_data.decode())) == sorted_object(
        HALF_PLUS_TWO_MODEL_METADATA
    )


def test_prometheus_endpoint(model_servers: ModelServers, testdata: Any) -> None:
    """``testPrometheusEndpoint``: with upstream's ``monitoring_config.txt`` the page at
    ``/monitoring/prometheus/metrics`` carries metric type information."""
    url = _rest_url(
        model_servers,
        testdata,
        "/monitoring/prometheus/metrics",
        monitoring_config_file=testdata.monitoring_config,
    )
    resp_data = call_rest(url, None)
    assert "# TYPE" in resp_data.decode("utf-8")


# --- transports and model formats -------------------------------------------------------------


def test_predict_uds(model_servers: ModelServers, testdata: Any) -> None:
    """``testPredictUDS``: predict over the ``--grpc_socket_path`` Unix domain socket."""
    server = model_servers.run_server("default", testdata.saved_model_half_plus_two_cpu)
    verify_predict_request(
        f"unix:{server.grpc_socket_path}",
        expected_output=3.0,
        specify_output=False,
        expected_version=model_version(testdata.saved_model_half_plus_three),
    )


def test_predict_on_tf_lite(model_servers: ModelServers, testdata: Any) -> None:
    """``testPredictOnTfLite``: ``--prefer_tflite_model=true`` serves ``model.tflite``."""
    model_path = testdata.saved_model_half_plus_two_tflite
    address = model_servers.run_server("default", model_path, model_type="tflite").grpc_address
    verify_predict_request(
        address,
        expected_output=3.0,
        specify_output=False,
        expected_version=model_version(model_path),
    )


def test_predict_with_signature_def_on_tf_lite(model_servers: ModelServers, testdata: Any) -> None:
    """``testPredictWithSignatureDefOnTfLite``: the model's own SignatureDef maps ``x`` to its
    input tensor ``tflite_input``."""
    model_path = testdata.saved_model_half_plus_two_tflite_with_sigdef
    address = model_servers.run_server("default", model_path, model_type="tflite").grpc_address
    verify_predict_request(
        address,
        expected_output=3.0,
        specify_output=False,
        expected_version=model_version(testdata.saved_model_half_plus_two_tflite),
    )


def test_tf_saved_model_save(model_servers: ModelServers, tmp_path: Path) -> None:
    """``test_tf_saved_model_save``: a ``tf.saved_model.save`` of a ``tf.train.Checkpoint``
    answers ``3 * 2 * x`` = 12 for x = 2."""
    base_path = tmp_path / "tf_saved_model_save"
    upstream_models.tf_saved_model_save(base_path / "00000123")
    address = model_servers.run_server("default", base_path).grpc_address
    verify_predict_request(
        address,
        expected_output=12.0,
        specify_output=False,
        expected_version=model_version(base_path),
    )


def test_tf_saved_model_save_multiple_signatures(
    model_servers: ModelServers, tmp_path: Path
) -> None:
    """``test_tf_saved_model_save_multiple_signatures``: ``custom_signature_key`` answers 2,
    ``serving_default`` 1."""
    base_path = tmp_path / "tf_saved_model_save"
    upstream_models.tf_saved_model_save_multiple_signatures(base_path / "00000123")
    address = model_servers.run_server("default", base_path).grpc_address
    expected_version = model_version(base_path)
    verify_predict_request(
        address,
        expected_output=2.0,
        expected_version=expected_version,
        signature_name="custom_signature_key",
    )
    verify_predict_request(address, expected_output=1.0, expected_version=expected_version)


def test_sequential_keras_saved_model_save(model_servers: ModelServers, tmp_path: Path) -> None:
    """``test_sequential_keras_saved_model_save``: a Keras 2 ``Sequential`` (input ``x``,
    identity ``Lambda`` ``y``) answers x = [[2]] with 2."""
    base_path = tmp_path / "keras_sequential_saved_model_save"
    upstream_models.keras_sequential(base_path / "00000123")
    address = model_servers.run_server("default", base_path).grpc_address
    verify_predict_request(
        address,
        batch_input=True,
        specify_output=False,
        expected_output=2.0,
        expected_version=model_version(base_path),
    )


def test_distrat_sequential_keras_saved_model_save(
    model_servers: ModelServers, tmp_path: Path
) -> None:
    """``test_distrat_sequential_keras_saved_model_save``: the same built under a
    ``MirroredStrategy`` over two virtual CPUs, with a ``Dense(1)`` of weight 1."""
    base_path = tmp_path / "keras_sequential_saved_model_save"
    upstream_models.keras_distributed_sequential(base_path / "00000123")
    address = model_servers.run_server("default", base_path).grpc_address
    verify_predict_request(
        address,
        batch_input=True,
        specify_output=False,
        expected_output=2.0,
        expected_version=model_version(base_path),
    )


def test_profiler_service_with_valid_trace_request(
    model_servers: ModelServers, testdata: Any, tmp_path: Path
) -> None:
    """``test_profiler_service_with_valid_trace_request``: TensorFlow's profiler client traces
    the server for 1 s through its gRPC port (10 attempts) while REST predicts arrive, one a
    second for 3 s (upstream sends them with ``wget`` from a shell loop; we use plain HTTP from
    a thread). As upstream, it passes when ``trace`` returns; the answers are printed only.
    The one flag added to upstream's: ``--enable_profiler``, on by default upstream, off unless
    asked here (TensorFlow's profiler server listens on all interfaces)."""
    from tensorflow.python.profiler import profiler_client

    server = model_servers.run_server(
        "default", testdata.saved_model_half_plus_two_cpu, enable_profiler=True
    )
    url = f"http://{server.rest_address}/v1/models/default:predict"
    answers: list[str] = []
    stop = threading.Event()

    def send_predicts() -> None:
        for _ in range(3):
            try:
                answers.append(call_rest(url, {"instances": [2.0, 3.0, 4.0]}).decode())
            except Exception as exc:  # upstream only logs these answers
                answers.append(repr(exc))
            if stop.wait(1.0):
                return

    sender = threading.Thread(target=send_predicts, daemon=True)
    sender.start()
    logdir = tmp_path / "logs"
    logdir.mkdir()
    try:
        profiler_client.trace(server.grpc_address, str(logdir), 1000, "", 10)
    finally:
        stop.set()
        sender.join(60)
        print(f"REST answers while tracing: {answers}")


def test_tf_text(model_servers: ModelServers, testdata: Any) -> None:
    """``test_tf_text``: ``tf_text_regression`` (one op of each TF Text family as control
    dependencies of ``y = x + 1``) answers 3 for x = 2, version 1 (directory ``01``). As
    upstream's server has TF Text's ops linked in, ours registers them (``tensorflow-text``, a
    test dependency) when the version's graph needs them."""
    model_path = testdata.tf_text_regression
    address = model_servers.run_server("default", model_path).grpc_address
    verify_predict_request(
        address, expected_output=3.0, expected_version=model_version(model_path), rpc_timeout=600
    )
