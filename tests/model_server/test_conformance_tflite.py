"""Contract §1, ``--prefer_tflite_model``: a version's ``model.tflite`` served with TF Lite, over
gRPC and REST, with the signatures upstream's ``TfLiteSession`` derives — on a real server
process, with models TensorFlow's converters built (``tests/helpers/tflite_models.py``) and TF
Serving's client code. Upstream's ``testPredictOnTfLite`` and
``testPredictWithSignatureDefOnTfLite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.conformance import outputs_of, predict_request, rest_json, stubs, write_config
from tests.helpers.server_process import ServerProcess
from tfserve_nb.config import ModelConfig


def _write_warmup(version_dir: Path, request: Any) -> None:
    """A warmup file holding one predict log of ``request``."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.CopyFrom(request)
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(log.SerializeToString())


def _tflite_version(base: Path, content: bytes) -> None:
    (base / "1").mkdir(parents=True)
    (base / "1" / "model.tflite").write_bytes(content)


@pytest.fixture(scope="module")
def server(tmp_path_factory, half_plus_two_models):
    """``--prefer_tflite_model`` with two interpreters per version, serving:

    - ``converted``: ``0.5x + 2`` converted from a ``tf.function`` (no stored SignatureDefs:
      the signature is made from the tensors, ``serving_default_x`` → ``PartitionedCall``);
    - ``sigdef``: ``0.5x + 3`` from a TF 1 session, with ``serving_default`` (``x:0`` → ``y:0``)
      stored, as upstream's ``saved_model_half_plus_two_tflite_with_sigdef``, and a warmup
      request;
    - ``both``: a half_plus_two SavedModel whose directory also holds a ``0.5x + 3``
      ``model.tflite`` (TF Lite answers);
    - ``saved``: the SavedModel alone (served as a SavedModel).
    """
    from tests.helpers import tflite_models

    root = tmp_path_factory.mktemp("tflite")
    _tflite_version(root / "converted", tflite_models.converted_half_plus(2.0))
    session = tflite_models.session_half_plus(3.0)
    signature = tflite_models.signature_def({"x": "x:0"}, {"y": "y:0"})
    _tflite_version(
        root / "sigdef",
        tflite_models.with_signature_defs(session, {"serving_default": signature}),
    )
    _write_warmup(root / "sigdef" / "1", predict_request("sigdef", {"x": [[1.0]]}))
    both = half_plus_two_models.make_base_path(root, name="both")
    (both / "1" / "model.tflite").write_bytes(session)
    configs = [
        ModelConfig("converted", str(root / "converted")),
        ModelConfig("sigdef", str(root / "sigdef")),
        ModelConfig("both", str(both)),
        ModelConfig("saved", str(half_plus_two_models.make_base_path(root, name="saved"))),
    ]
    process = ServerProcess(
        root,
        f"--model_config_file={write_config(root / 'models.config', configs)}",
        "--prefer_tflite_model=true",
        "--num_tflite_pools=2",
        "--ephemeral_ports",
    )
    yield process
    process.stop()


@pytest.mark.parametrize(
    ("model", "x", "y", "expected"),
    [
        ("converted", "serving_default_x", "PartitionedCall", [[2.5], [3.0]]),
        ("sigdef", "x", "y", [[3.5], [4.0]]),
        ("both", "x", "y", [[3.5], [4.0]]),
        ("saved", "x", "y", [[2.5], [3.0]]),
    ],
)
def test_predict_over_grpc_and_rest(server, model, x, y, expected):
    """A batch of two though the TF Lite inputs are ``[1, 1]``: the interpreter is resized to
    the request, as upstream's is."""
    request = predict_request(model, {x: np.array([[1.0], [2.0]], np.float32)})
    response = stubs(server)[0].Predict(request, timeout=30)
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(outputs_of(response)[y], expected)
    path = f"/v1/models/{model}:predict"
    rows = rest_json(server, "POST", path, {"instances": [[1.0], [2.0]]})
    assert rows == (200, {"predictions": expected})
    assert rest_json(server, "POST", path, {"inputs": [[1.0]]}) == (200, {"outputs": [expected[0]]})


def test_metadata_reports_the_signatures_upstream_derives(server):
    """``GetModelMetadata`` (gRPC) and ``/metadata`` (REST) describe the TF Lite signatures:
    made from the tensors (full names, current dims), or stored with names fixed."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    def signature_def(model: str):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = model
        response = stubs(server)[0].GetModelMetadata(request, timeout=30)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return signatures.signature_def

    made = signature_def("converted")["serving_default"]
    assert list(made.inputs) == ["serving_default_x"] and list(made.outputs) == ["PartitionedCall"]
    assert made.inputs["serving_default_x"].name == "serving_default_x:0"
    assert [d.size for d in made.inputs["serving_default_x"].tensor_shape.dim] == [1, 1]
    assert made.method_name == "tensorflow/serving/predict"
    stored = signature_def("sigdef")["serving_default"]
    assert (stored.inputs["x"].name, stored.outputs["y"].name) == ("x", "y")
    status, body = rest_json(server, "GET", "/v1/models/converted/metadata")
    assert status == 200
    rest_signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert rest_signature["inputs"]["serving_default_x"]["name"] == "serving_default_x:0"
    assert rest_signature["outputs"]["PartitionedCall"]["dtype"] == "DT_FLOAT"


def test_a_wrong_dtype_is_refused_and_the_server_keeps_serving(server):
    """TF Lite's own text (upstream copies the bytes unchecked: a documented difference)."""
    import grpc

    request = predict_request("sigdef", {"x": np.array([[1]], np.int32)})
    with pytest.raises(grpc.RpcError) as refused:
        stubs(server)[0].Predict(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == (
        "Cannot set tensor: Got value of type INT32 but expected type FLOAT32 for input 0, name: x"
    )
    request = predict_request("sigdef", {"x": np.array([[1.0]], np.float32)})
    np.testing.assert_array_equal(
        outputs_of(stubs(server)[0].Predict(request, timeout=30))["y"], [[3.5]]
    )


def test_warmup_requests_replay_on_tf_lite_versions(server):
    """The version's warmup request ran on its TF Lite interpreter before it became
    AVAILABLE (a failing one would have failed the load, and the start)."""
    warmup = (
        server.port_file.parent / "sigdef" / "1" / "assets.extra" / "tf_serving_warmup_requests"
    )
    assert (
        f"Finished reading warmup data for model at {warmup}. Number of warmup records read: 1."
        in server.logs()
    )
