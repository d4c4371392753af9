"""Contract §3: the gRPC services, with TF Serving's codes and texts, against a real server.

One read-only server serves every request test (:func:`server`); the reload tests share a
second one (:func:`reload_server`) and each starts from the same config. After every test the
served model still answers a normal predict.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.helpers.conformance import (
    add_broken_version,
    assert_serving,
    half_plus_two_answer,
    outputs_of,
    predict_request,
    reload_config,
    reload_request,
    rpc_error,
    set_model_spec,
    stubs,
    version_states,
    wait_for_states,
    write_config,
)
from tests.helpers.server_process import ServerProcess
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import All, Specific

ONE = np.array([[1.0]], np.float32)
A = np.array([[1.0, 2.0]], np.float32)
B = np.array([[3.0, 4.0, 5.0]], np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory, half_plus_two_models, multi_io_models):
    """``hp2`` (versions 1 and 2, labels stable → 1, canary → 2), ``rolled`` (version 1
    replaced by 2, so 1 is END), ``broken`` (version 1 failed to load, 2 serves) and
    ``multi_io``."""
    root = tmp_path_factory.mktemp("grpc")
    rolled = half_plus_two_models.make_base_path(root, (1,), name="rolled")
    broken = half_plus_two_models.make_base_path(root, (2,), name="broken")
    add_broken_version(broken, 1)
    configs = [
        ModelConfig(
            "hp2",
            str(half_plus_two_models.make_base_path(root, (1, 2))),
            Specific((1, 2)),
            {"stable": 1, "canary": 2},
        ),
        ModelConfig("rolled", str(rolled)),
        ModelConfig("broken", str(broken), All()),
        ModelConfig("multi_io", str(multi_io_models.make_base_path(root))),
    ]
    process = ServerProcess(
        root,
        f"--model_config_file={write_config(root / 'models.config', configs)}",
        "--allow_version_labels_for_unavailable_models",
        "--max_num_load_retries=0",
        "--file_system_poll_wait_seconds=1",
        "--ephemeral_ports",
    )
    try:
        half_plus_two_models.add_version(rolled, 2)
        wait_for_states(process, "rolled", {2: "AVAILABLE", 1: "END"})
        wait_for_states(process, "broken", {2: "AVAILABLE", 1: "END"})
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def still_serving(request):
    """After each test, the server it used still answers a normal predict."""
    yield
    for fixture, model in (("server", "hp2"), ("reload_process", "hp2")):
        if fixture in request.fixturenames:
            assert_serving(request.getfixturevalue(fixture), model)


# --- Predict -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "version", "y"),
    [
        ({}, 2, 3.5),
        ({"version": 1}, 1, 2.5),
        ({"version": 2}, 2, 3.5),
        ({"label": "stable"}, 1, 2.5),
        ({"label": "canary"}, 2, 3.5),
        ({"signature_name": "serving_default"}, 2, 3.5),
    ],
    ids=["latest", "version-1", "version-2", "label-stable", "label-canary", "signature"],
)
def test_predict_answers_with_the_model_spec_that_served(server, spec, version, y):
    request = predict_request("hp2", {"x": ONE}, **spec)
    response = stubs(server)[0].Predict(request, timeout=60)
    assert outputs_of(response)["y"].tolist() == [[y]]
    assert response.model_spec.name == "hp2"
    assert response.model_spec.version.value == version
    assert response.model_spec.signature_name == "serving_default"


def test_output_filter_returns_only_the_named_outputs(server):
    inputs = {"a": A, "b": B}
    predict = stubs(server)[0].Predict
    everything = outputs_of(predict(predict_request("multi_io", inputs), timeout=60))
    assert everything["sum"].tolist() == [[15.0]]
    assert everything["doubled"].tolist() == [[2.0, 4.0, 6.0, 8.0, 10.0]]
    filtered = predict(predict_request("multi_io", inputs, output_filter=["sum"]), timeout=60)
    assert outputs_of(filtered).keys() == {"sum"}
    assert outputs_of(filtered)["sum"].tolist() == [[15.0]]


def _missing_model_spec():
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.inputs["x"].CopyFrom(predict_request("hp2", {"x": ONE}).inputs["x"])
    return request


PREDICT_ERRORS = {
    "unknown-model": (
        lambda: predict_request("nope", {"x": ONE}),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    ),
    "unknown-version": (
        lambda: predict_request("hp2", {"x": ONE}, version=3),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(hp2, 3)",
    ),
    "failed-version": (
        lambda: predict_request("broken", {"x": ONE}, version=1),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(broken, 1)",
    ),
    "unloaded-version": (
        lambda: predict_request("rolled", {"x": ONE}, version=1),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(rolled, 1)",
    ),
    "unknown-label": (
        lambda: predict_request("hp2", {"x": ONE}, label="nope"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: nope",
    ),
    "unknown-signature": (
        lambda: predict_request("hp2", {"x": ONE}, signature_name="nope"),
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    ),
    "missing-input": (
        lambda: predict_request("multi_io", {"a": A}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 1!=2 len({a}) != len({a,b}). Sent extra: {}. "
        "Missing but required: {b}.",
    ),
    "extra-input": (
        lambda: predict_request("hp2", {"x": ONE, "z": ONE}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. "
        "Missing but required: {}.",
    ),
    "unknown-output": (
        lambda: predict_request("multi_io", {"a": A, "b": B}, output_filter=["z"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "output tensor alias not found in signature: z Outputs expected to be in the set "
        "{doubled,sum}.",
    ),
    "duplicate-output": (
        lambda: predict_request("multi_io", {"a": A, "b": B}, output_filter=["sum", "sum"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "duplicate output tensor alias: sum",
    ),
    "wrong-dtype": (
        lambda: predict_request("hp2", {"x": np.array([[1]], np.int32)}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg[0] to be float but int32 is provided",
    ),
    "missing-model-spec": (
        _missing_model_spec,
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing ModelSpec",
    ),
    "empty-model-name": (
        lambda: predict_request("", {"x": ONE}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ModelSpec has no name specified.",
    ),
}


@pytest.mark.parametrize(("build", "code", "details"), PREDICT_ERRORS.values(), ids=PREDICT_ERRORS)
def test_predict_errors_have_tf_serving_codes_and_texts(server, build, code, details):
    assert rpc_error(stubs(server)[0].Predict, build()) == (code, details)


def test_error_text_longer_than_1024_characters_is_truncated(server):
    name = "m" * 2000
    full = f"Servable not found for request: Latest({name})"
    code, details = rpc_error(stubs(server)[0].Predict, predict_request(name, {"x": ONE}))
    assert code == grpc.StatusCode.NOT_FOUND
    assert details == full[:1024] + "...TRUNCATED"


def test_shapes_are_left_to_tensorflow_as_upstream_does(server):
    """Upstream checks input names only: a [1,2] tensor for a [?,1] input reaches the kernel,
    whose error (code, text and node) is the answer. (TF Serving's README example, a [3]
    tensor into the TF 1.x half_plus_two, is answered: see tests/upstream.)"""
    code, details = rpc_error(
        stubs(server)[0].Predict, predict_request("hp2", {"x": np.ones((1, 2), np.float32)})
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("Matrix size-incompatible: In[0]: [1,2], In[1]: [1,1]\n\t [[{{node ")


def test_messages_over_4_mb_are_accepted_and_answered(server):
    """Like tensorflow_model_server, the server takes and sends messages of any size; the
    client must raise its own 4 MB receive limit."""
    x = np.arange(2_000_000, dtype=np.float32).reshape(-1, 1)  # 8 MB each way
    request = predict_request("hp2", {"x": x}, version=1)
    assert request.ByteSize() > 4 * 2**20
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    options = [("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=120)
    np.testing.assert_array_equal(outputs_of(response)["y"], 0.5 * x + 2)


# --- GetModelMetadata --------------------------------------------------------------------------


def _metadata_request(name="hp2", fields=("signature_def",), *, with_spec=True, **spec):
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=list(fields))
    if with_spec:
        set_model_spec(request.model_spec, name, **spec)
    return request


@pytest.mark.parametrize(
    ("spec", "version"), [({}, 2), ({"version": 1}, 1), ({"label": "stable"}, 1)]
)
def test_metadata_packs_the_signature_def_map_in_any(server, spec, version):
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = stubs(server)[0].GetModelMetadata(_metadata_request(**spec), timeout=60)
    assert response.model_spec.name == "hp2"
    assert response.model_spec.version.value == version
    assert response.model_spec.signature_name == ""
    assert list(response.metadata) == ["signature_def"]
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    signature = signature_defs.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert signature.inputs["x"].dtype == 1  # DT_FLOAT
    assert [d.size for d in signature.inputs["x"].tensor_shape.dim] == [-1, 1]
    assert set(signature.outputs) == {"y"}


METADATA_ERRORS = {
    "unsupported-field": (
        lambda: _metadata_request(fields=("signature_def", "graph")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Metadata field graph is not supported",
    ),
    "no-field": (
        lambda: _metadata_request(fields=()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "GetModelMetadataRequest must specify at least one metadata_field",
    ),
    "missing-model-spec": (
        lambda: _metadata_request(with_spec=False),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing ModelSpec",
    ),
    "unknown-model": (
        lambda: _metadata_request("nope"),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    ),
    "unknown-version": (
        lambda: _metadata_request(version=5),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(hp2, 5)",
    ),
    "unknown-label": (
        lambda: _metadata_request(label="nope"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: nope",
    ),
}


@pytest.mark.parametrize(
    ("build", "code", "details"), METADATA_ERRORS.values(), ids=METADATA_ERRORS
)
def test_metadata_errors(server, build, code, details):
    assert rpc_error(stubs(server)[0].GetModelMetadata, build()) == (code, details)


# --- GetModelStatus ----------------------------------------------------------------------------


def test_status_lists_versions_newest_first_with_ok_status(server):
    assert version_states(server, "hp2") == [(2, "AVAILABLE", 0, ""), (1, "AVAILABLE", 0, "")]


def test_status_keeps_unloaded_versions_as_end(server):
    assert version_states(server, "rolled") == [(2, "AVAILABLE", 0, ""), (1, "END", 0, "")]


def test_status_keeps_a_failed_load_with_its_error(server):
    (newest, failed) = version_states(server, "broken")
    assert newest == (2, "AVAILABLE", 0, "")
    version, state, code, message = failed
    assert (version, state) == (1, "END")
    assert code != 0 and message


def _status_request(name="hp2", *, with_spec=True, **spec):
    from tensorflow_serving.apis import get_model_status_pb2

    request = get_model_status_pb2.GetModelStatusRequest()
    if with_spec:
        set_model_spec(request.model_spec, name, **spec)
    return request


def test_status_of_one_version_and_label_ignored(server):
    get = stubs(server)[1].GetModelStatus
    one = get(_status_request(version=1), timeout=60).model_version_status
    assert [(s.version, s.state) for s in one] == [(1, 30)]
    labelled = get(_status_request(label="stable"), timeout=60).model_version_status
    assert [s.version for s in labelled] == [2, 1]  # upstream ignores a label here


STATUS_ERRORS = {
    "unknown-model": (
        lambda: _status_request("nope"),
        grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model nope",
    ),
    "unknown-version": (
        lambda: _status_request(version=9),
        grpc.StatusCode.NOT_FOUND,
        "Could not find version 9 of model hp2",
    ),
    "missing-model-spec": (
        lambda: _status_request(with_spec=False),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing ModelSpec",
    ),
}


@pytest.mark.parametrize(("build", "code", "details"), STATUS_ERRORS.values(), ids=STATUS_ERRORS)
def test_status_errors(server, build, code, details):
    assert rpc_error(stubs(server)[1].GetModelStatus, build()) == (code, details)


# --- HandleReloadConfigRequest -----------------------------------------------------------------


@pytest.fixture(scope="module")
def reload_root(tmp_path_factory, half_plus_two_models, multi_io_models) -> Path:
    """``half_plus_two`` (version 1), ``multi_io`` and ``broken`` (version 1 fails to load)."""
    root = tmp_path_factory.mktemp("reload")
    half_plus_two_models.make_base_path(root, (1,))
    multi_io_models.make_base_path(root)
    (root / "broken").mkdir()
    add_broken_version(root / "broken", 1)
    return root


def _hp2(root: Path, **changes) -> ModelConfig:
    return ModelConfig(**{"name": "hp2", "base_path": str(root / "half_plus_two"), **changes})


@pytest.fixture(scope="module")
def reload_process(reload_root):
    process = ServerProcess(
        reload_root,
        f"--model_config_file={write_config(reload_root / 'models.config', [_hp2(reload_root)])}",
        "--max_num_load_retries=0",
        "--ephemeral_ports",
    )
    yield process
    process.stop()


@pytest.fixture
def reload_server(reload_process, reload_root):
    """The reload server, reset to serve only ``hp2``."""
    reload_config(reload_process, [_hp2(reload_root)])
    wait_for_states(reload_process, "hp2", {1: "AVAILABLE"})
    return reload_process


def test_reload_blocks_until_new_models_are_available(reload_server, reload_root):
    multi_io = ModelConfig("multi_io", str(reload_root / "multi_io"))
    response = reload_config(reload_server, [_hp2(reload_root), multi_io])
    assert response.HasField("status") and response.status.error_code == 0
    assert version_states(reload_server, "multi_io") == [(1, "AVAILABLE", 0, "")]
    inputs = {"a": A, "b": B}
    answer = stubs(reload_server)[0].Predict(predict_request("multi_io", inputs), timeout=60)
    assert outputs_of(answer)["sum"].tolist() == [[15.0]]


def test_reload_replaces_the_whole_list_and_unloads_models_left_out(reload_server, reload_root):
    reload_config(reload_server, [ModelConfig("multi_io", str(reload_root / "multi_io"))])
    wait_for_states(reload_server, "hp2", {1: "END"})
    assert rpc_error(stubs(reload_server)[0].Predict, predict_request("hp2", {"x": ONE})) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(hp2)",
    )
    reload_config(reload_server, [_hp2(reload_root)])  # back, and AVAILABLE on return
    assert half_plus_two_answer(reload_server, "hp2") == (1, 2.5)


def test_reload_fails_when_a_new_model_does_not_load(reload_server, reload_root):
    broken = ModelConfig("broken", str(reload_root / "broken"))
    code, details = rpc_error(
        stubs(reload_server)[1].HandleReloadConfigRequest,
        reload_request([_hp2(reload_root), broken]),
    )
    assert code == grpc.StatusCode.UNKNOWN
    assert details.startswith(
        "1 model(s) did not become available: {{{name: broken version: 1} due to error: "
    )
    assert details.endswith("}, }")


def _custom_config_request():
    request = reload_request([])
    request.config.custom_model_config.Pack(request.config.model_config_list)
    return request


RELOAD_ERRORS = {
    "not-a-model-config-list": (
        lambda root: _custom_config_request(),
        "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
        "ModelConfigList is currently supported",
    ),
    "platform-change": (
        lambda root: reload_request([_hp2(root, platform="other")]),
        "Illegal to change a model's platform. For model hp2 platform was tensorflow and new "
        "platform requested is other",
    ),
    "unsupported-platform": (
        lambda root: reload_request(
            [_hp2(root), ModelConfig("new", str(root / "multi_io"), platform="other")]
        ),
        "Model new requests unsupported platform other",
    ),
    "no-platform": (
        lambda root: reload_request(
            [_hp2(root), ModelConfig("new", str(root / "multi_io"), platform="")]
        ),
        "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
        "ModelServerConfig::model_platform, model name is new",
    ),
    "duplicate-name": (
        lambda root: reload_request([_hp2(root), _hp2(root)]),
        "Illegal to list model hp2 multiple times in config list",
    ),
    "relative-base-path": (
        lambda root: reload_request([_hp2(root, base_path="models/hp2")]),
        "Expected model hp2 to have an absolute path or URI; got base_path()=models/hp2",
    ),
}


@pytest.mark.parametrize(("build", "details"), RELOAD_ERRORS.values(), ids=RELOAD_ERRORS)
def test_reload_errors(reload_server, reload_root, build, details):
    call = stubs(reload_server)[1].HandleReloadConfigRequest
    assert rpc_error(call, build(reload_root)) == (grpc.StatusCode.INVALID_ARGUMENT, details)


def test_reload_reports_how_much_the_named_metrics_grew(tmp_path, reload_root):
    """``metric_names`` → ``ReloadConfigResponse.metric``: each name's first int64 point after
    the reload minus before it (a fresh server, so ``request_count``'s first cell is hp2/OK);
    histograms and unknown names grow by 0. Requests to hp2 run during the reload."""
    import threading
    import time

    server = ServerProcess(
        tmp_path,
        f"--model_config_file={write_config(tmp_path / 'models.config', [_hp2(reload_root)])}",
        "--ephemeral_ports",
    )
    spans: list[tuple[float, float]] = []
    stop = threading.Event()

    def traffic() -> None:
        predict = stubs(server)[0].Predict
        while not stop.is_set():
            start = time.monotonic()
            predict(predict_request("hp2", {"x": ONE}), timeout=60)
            spans.append((start, time.monotonic()))

    thread = threading.Thread(target=traffic)
    try:
        thread.start()
        while not spans:
            time.sleep(0.01)
        names = ["/tensorflow/serving/request_count", "/no/such/metric"]
        request = reload_request(
            [_hp2(reload_root), ModelConfig("mio", str(reload_root / "multi_io"))]
        )
        request.metric_names.extend([*names, "/tensorflow/serving/request_latency"])
        began = time.monotonic()
        response = stubs(server)[1].HandleReloadConfigRequest(request, timeout=60)
        ended = time.monotonic()
        stop.set()
        thread.join()
        grew = {m.name: m.int64_value_increase for m in response.metric}
        assert set(grew) == {*names, "/tensorflow/serving/request_latency"}
        # The server reads the metrics some time after `began` and before `ended`: a request
        # counted in between ended after `began` and started before `ended` (upper bound), and
        # one well inside the reload (0.1 s from either end: far more than the reload RPC's
        # own latency) was surely counted in between (lower bound).
        margin = 0.1
        surely = sum(1 for s, e in spans if s >= began + margin and e <= ended - margin)
        maybe = sum(1 for s, e in spans if e >= began and s <= ended)
        assert surely <= grew[names[0]] <= maybe, (surely, grew, maybe)
        assert grew["/no/such/metric"] == grew["/tensorflow/serving/request_latency"] == 0
    finally:
        stop.set()
        thread.join()
        server.stop()
