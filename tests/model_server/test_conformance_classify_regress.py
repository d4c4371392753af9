"""Contract §3 and §4: gRPC ``Classify``, ``Regress`` and ``MultiInference`` and REST
``:classify`` / ``:regress``, against a real server, with TF Serving's codes and texts
(``classifier.cc``, ``regressor.cc``, ``multi_inference.cc``, ``util.cc``,
``http_rest_api_handler.cc``).

``hp2x`` is TF Serving's ``half_plus_two`` with its tf.Example test signatures
(``classify_x_to_y``, ``regress_x_to_y``; ``{"x": 2.0}`` → 3.0); ``color`` scores red, green
and blue with labels. One server serves both as upstream runs by default (no method-name
check); a second one runs with ``--enable_signature_method_name_check``. After every test the
server it used still answers a normal predict.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    regression_pb2,
)

from tests.helpers import models
from tests.helpers.conformance import (
    assert_serving,
    predict_request,
    rest,
    rest_json,
    rpc_error,
    set_model_spec,
    stubs,
    write_config,
)
from tests.helpers.server_process import ServerProcess
from tfserve_nb.config import ModelConfig

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
PREDICT = "tensorflow/serving/predict"
METRICS_PATH = "/monitoring/prometheus/metrics"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def start(root: Path, *flags: str, **bases: Path) -> ServerProcess:
    """A server of the models ``bases`` (name → base path), monitoring on."""
    (root / "monitoring.txt").write_text(
        f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}'
    )
    configs = [ModelConfig(name, str(base)) for name, base in bases.items()]
    return ServerProcess(
        root,
        f"--model_config_file={write_config(root / 'models.config', configs)}",
        f"--monitoring_config_file={root / 'monitoring.txt'}",
        "--ephemeral_ports",
        *flags,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory, half_plus_two_examples_models, color_models):
    root = tmp_path_factory.mktemp("classify")
    process = start(
        root,
        hp2x=half_plus_two_examples_models.make_base_path(root),
        color=color_models.make_base_path(root),
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def checked_server(tmp_path_factory, half_plus_two_examples_models):
    root = tmp_path_factory.mktemp("checked")
    process = start(
        root,
        "--enable_signature_method_name_check",
        hp2x=half_plus_two_examples_models.make_base_path(root),
    )
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def still_serving(request):
    """After each test, the server it used still answers a normal predict."""
    yield
    for fixture in ("server", "checked_server"):
        if fixture in request.fixturenames:
            assert_serving(request.getfixturevalue(fixture), "hp2x")


# --- requests as TF Serving's clients build them ------------------------------------------------

Features = dict[str, Any]


def fill_example(example: Any, features: Features) -> None:
    """Floats go to ``float_list``, integers to ``int64_list``, strings to ``bytes_list``."""
    for name, value in features.items():
        values = value if isinstance(value, list) else [value]
        feature = example.features.feature[name]
        if isinstance(values[0], float):
            feature.float_list.value.extend(values)
        elif isinstance(values[0], int):
            feature.int64_list.value.extend(values)
        else:
            feature.bytes_list.value.extend(v.encode() for v in values)


def fill_input(request_input: Any, examples: list[Features], context: Features | None) -> None:
    if context is None:
        target = request_input.example_list.examples
    else:
        fill_example(request_input.example_list_with_context.context, context)
        target = request_input.example_list_with_context.examples
    for features in examples:
        fill_example(target.add(), features)


def classification_request(
    name: str,
    signature_name: str,
    examples: list[Features],
    context: Features | None = None,
    **spec: Any,
) -> Any:
    request = classification_pb2.ClassificationRequest()
    set_model_spec(request.model_spec, name, signature_name=signature_name, **spec)
    fill_input(request.input, examples, context)
    return request


def regression_request(
    name: str, signature_name: str, examples: list[Features], **spec: Any
) -> Any:
    request = regression_pb2.RegressionRequest()
    set_model_spec(request.model_spec, name, signature_name=signature_name, **spec)
    fill_input(request.input, examples, None)
    return request


def multi_inference_request(
    tasks: list[tuple[str, str, str]],
    examples: list[Features] = [{"x": 2.0}],  # noqa: B006
) -> Any:
    """``tasks`` as ``(model name, signature name, method name)``."""
    request = inference_pb2.MultiInferenceRequest()
    for name, signature_name, method_name in tasks:
        task = request.tasks.add(method_name=method_name)
        set_model_spec(task.model_spec, name, signature_name=signature_name)
    fill_input(request.input, examples, None)
    return request


def classes(result: Any) -> list[list[tuple[str, float]]]:
    return [[(c.label, c.score) for c in row.classes] for row in result.classifications]


def spec_of(response: Any) -> tuple[str, int, str]:
    spec = response.model_spec
    return spec.name, spec.version.value, spec.signature_name


def predict_signature_text(server: ServerProcess) -> str:
    """``DebugString()`` of hp2x's ``serving_default``, laid out as TF Serving prints it (the
    tensor names come from the model's metadata)."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "hp2x"
    response = stubs(server)[0].GetModelMetadata(request, timeout=30)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_defs)
    signature = signature_defs.signature_def["serving_default"]
    shape = (
        "    tensor_shape {\n"
        "      dim {\n        size: -1\n      }\n"
        "      dim {\n        size: 1\n      }\n"
        "    }\n"
    )
    return (
        f'inputs {{\n  key: "x"\n  value {{\n    name: "{signature.inputs["x"].name}"\n'
        f"    dtype: DT_FLOAT\n{shape}  }}\n}}\n"
        f'outputs {{\n  key: "y"\n  value {{\n    name: "{signature.outputs["y"].name}"\n'
        f"    dtype: DT_FLOAT\n{shape}  }}\n}}\n"
        f'method_name: "{PREDICT}"\n'
    )


def metric(server: ServerProcess, sample: str) -> float:
    """One Prometheus sample's value (name and labels as printed), 0 if absent."""
    page = rest(server, "GET", METRICS_PATH).body.decode()
    match = re.search(rf"^{re.escape(sample)} (\S+)$", page, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


# --- answers, as in TF Serving's tensorflow_model_server_test.py --------------------------------


def test_classify(server):
    request = classification_request("hp2x", "classify_x_to_y", [{"x": 2.0}])
    response = stubs(server)[0].Classify(request, timeout=30)
    assert classes(response.result) == [[("", 3.0)]]
    assert spec_of(response) == ("hp2x", 1, "classify_x_to_y")


def test_regress(server):
    request = regression_request("hp2x", "regress_x_to_y", [{"x": 2.0}, {"x": 5.0}], version=1)
    response = stubs(server)[0].Regress(request, timeout=30)
    assert [r.value for r in response.result.regressions] == [3.0, 4.5]
    assert spec_of(response) == ("hp2x", 1, "regress_x_to_y")


def test_multi_inference(server):
    request = multi_inference_request(
        [("hp2x", "regress_x_to_y", REGRESS), ("hp2x", "classify_x_to_y", CLASSIFY)]
    )
    response = stubs(server)[0].MultiInference(request, timeout=30)
    regression, classification = response.results
    assert [r.value for r in regression.regression_result.regressions] == [3.0]
    assert classes(classification.classification_result) == [[("", 3.0)]]
    assert [spec_of(r) for r in response.results] == [
        ("hp2x", 1, "regress_x_to_y"),
        ("hp2x", 1, "classify_x_to_y"),
    ]


def test_rest_classify_and_regress(server):
    reply = rest(
        server,
        "POST",
        "/v1/models/hp2x:classify",
        '{"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}',
    )
    assert (reply.status, reply.body) == (200, b'{\n    "results": [[["", 3.0]]\n    ]\n}')
    assert rest_json(
        server,
        "POST",
        "/v1/models/hp2x/versions/1:regress",
        {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}, {"x": 4.0}]},
    ) == (200, {"results": [3.0, 4.0]})


def color_scores(server_models: Any, rows: list[dict[str, Any]]) -> np.ndarray:
    """What the color model itself scores for ``rows`` (rgb, boost)."""
    return server_models.models[1](
        {
            "rgb": np.array([r["rgb"] for r in rows], np.float32),
            "boost": np.array([[r["boost"]] for r in rows], np.int32),
        }
    ).numpy()


def test_labels_and_context(server, color_models):
    """The context is merged into every example; an example's own feature wins."""
    expected = color_scores(
        color_models, [{"rgb": [1.0, 0.0, 0.0], "boost": 2}, {"rgb": [0.0, 1.0, 0.5], "boost": 0}]
    )
    request = classification_request(
        "color",
        "classification",
        [{"rgb": [1.0, 0.0, 0.0]}, {"rgb": [0.0, 1.0, 0.5], "boost": 0}],
        context={"boost": 2},
    )
    answered = classes(stubs(server)[0].Classify(request, timeout=30).result)
    assert [[label for label, _ in row] for row in answered] == [list(models.COLORS)] * 2
    np.testing.assert_allclose([[s for _, s in row] for row in answered], expected, rtol=1e-6)

    status, body = rest_json(
        server,
        "POST",
        "/v1/models/color:classify",
        {
            "signature_name": "classification",
            "context": {"boost": 2},
            "examples": [{"rgb": [1.0, 0.0, 0.0]}, {"rgb": [0.0, 1.0, 0.5], "boost": 0}],
        },
    )
    assert status == 200
    assert [[label for label, _ in row] for row in body["results"]] == [list(models.COLORS)] * 2
    np.testing.assert_allclose(
        [[s for _, s in row] for row in body["results"]], expected, rtol=1e-5
    )
    scores_only = classification_request("color", "scores", [{"rgb": [1.0, 0.0, 0.0], "boost": 0}])
    (row,) = classes(stubs(server)[0].Classify(scores_only, timeout=30).result)
    assert [label for label, _ in row] == ["", "", ""]


def test_classify_and_regress_are_counted_multi_inference_is_not(server):
    count = ':tensorflow:serving:request_count{model_name="hp2x",status="OK"}'
    grpc_latency = (
        ':tensorflow:serving:request_latency_count{API="Classify",entrypoint="GRPC",'
        'model_name="hp2x"}'
    )
    before = metric(server, count), metric(server, grpc_latency)
    prediction = stubs(server)[0]
    prediction.Classify(classification_request("hp2x", "classify_x_to_y", [{"x": 2.0}]))
    prediction.Regress(regression_request("hp2x", "regress_x_to_y", [{"x": 2.0}]))
    prediction.MultiInference(multi_inference_request([("hp2x", "classify_x_to_y", CLASSIFY)]))
    rest_json(
        server,
        "POST",
        "/v1/models/hp2x:regress",
        {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]},
    )
    assert (metric(server, count), metric(server, grpc_latency)) == (before[0] + 3, before[1] + 1)
    assert (
        metric(
            server,
            ':tensorflow:serving:request_latency_count{API="Regress",entrypoint="GRPC",'
            'model_name="hp2x"}',
        )
        >= 1
    )
    assert (
        metric(
            server,
            ':tensorflow:serving:request_latency_count{API="regress",entrypoint="REST",'
            'model_name="hp2x"}',
        )
        >= 1
    )


# --- errors -------------------------------------------------------------------------------------


def test_classify_errors(server):
    prediction = stubs(server)[0]
    no_spec = classification_pb2.ClassificationRequest()
    fill_input(no_spec.input, [{"x": 2.0}], None)
    assert rpc_error(prediction.Classify, no_spec) == (INVALID, "Missing ModelSpec")
    assert rpc_error(
        prediction.Classify, classification_request("nope", "classify_x_to_y", [{"x": 2.0}])
    ) == (grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)")
    assert rpc_error(
        prediction.Classify,
        classification_request("hp2x", "classify_x_to_y", [{"x": 2.0}], version=7),
    ) == (grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(hp2x, 7)")
    assert rpc_error(
        prediction.Classify,
        classification_request("hp2x", "classify_x_to_y", [{"x": 2.0}], label="canary"),
    ) == (INVALID, "Unrecognized servable version label: canary")
    assert rpc_error(prediction.Classify, classification_request("hp2x", "nope", [{"x": 2.0}])) == (
        INVALID,
        "No signature was found with the name: nope",
    )
    assert rpc_error(
        prediction.Classify, classification_request("hp2x", "classify_x_to_y", [])
    ) == (
        INVALID,
        "Input is empty.",
    )


def test_signature_structure_errors_print_the_signature(server):
    prediction = stubs(server)[0]
    # no signature name: serving_default, a predict signature over tensor x
    assert rpc_error(prediction.Classify, classification_request("hp2x", "", [{"x": 2.0}])) == (
        INVALID,
        f"No classification inputs found in SignatureDef: {predict_signature_text(server)}",
    )
    code, message = rpc_error(
        prediction.Classify, classification_request("hp2x", "regress_x_to_y", [{"x": 2.0}])
    )
    assert code == INVALID
    assert message.startswith(
        'Expected classification signature outputs to contain at least one of "classes" or '
        '"scores". Signature was: inputs {\n  key: "inputs"\n'
    )
    assert message.endswith(f'method_name: "{REGRESS}"\n')
    code, message = rpc_error(
        prediction.Regress, regression_request("hp2x", "classify_x_to_y", [{"x": 2.0}])
    )
    assert code == INVALID
    assert message.startswith(
        'No regression outputs found in SignatureDef: inputs {\n  key: "inputs"'
    )
    assert message.endswith(f'method_name: "{CLASSIFY}"\n')
    assert rpc_error(
        prediction.Regress, regression_request("color", "classification", [{"x": 2.0}])
    ) == (INVALID, "Expected one output Tensor.")


def test_regress_errors(server):
    prediction = stubs(server)[0]
    no_spec = regression_pb2.RegressionRequest()
    assert rpc_error(prediction.Regress, no_spec) == (INVALID, "Missing ModelSpec")
    assert rpc_error(prediction.Regress, regression_request("hp2x", "nope", [{"x": 2.0}])) == (
        INVALID,
        "No signature was found with the name: nope",
    )
    assert rpc_error(prediction.Regress, regression_request("hp2x", "regress_x_to_y", [])) == (
        INVALID,
        "Input is empty.",
    )


def test_tensorflow_parse_errors(server):
    """Examples the signature cannot parse fail in TensorFlow's ParseExample, INVALID_ARGUMENT
    with TensorFlow's text (upstream's too, minus TensorFlow Python's node decorations)."""
    prediction = stubs(server)[0]
    code, message = rpc_error(
        prediction.Regress, regression_request("hp2x", "regress_x_to_y", [{"y": 2.0}])
    )
    assert code == INVALID
    assert "Feature: x (data type: float) is required but could not be found." in message
    code, message = rpc_error(  # a JSON integer is an int64 feature: TF Serving users write 2.0
        prediction.Classify, classification_request("hp2x", "classify_x_to_y", [{"x": 2}])
    )
    assert code == INVALID
    assert "Data types don't match. Data type: int64 but expected type: float" in message


@pytest.mark.parametrize(
    ("tasks", "code", "message"),
    [
        ([], INVALID, "ModelSpec has no name specified."),
        (
            [("hp2x", "regress_x_to_y", REGRESS), ("color", "classification", CLASSIFY)],
            INVALID,
            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
        ),
        (
            [("hp2x", "regress_x_to_y", REGRESS), ("", "classify_x_to_y", CLASSIFY)],
            INVALID,
            "Found ModelSpec with an empty model name.",
        ),
        (
            [("hp2x", "classify_x_to_y", CLASSIFY), ("hp2x", "classify_x_to_y", CLASSIFY)],
            INVALID,
            "Duplicate evaluation of signature: classify_x_to_y",
        ),
        (
            [("hp2x", "nope", CLASSIFY)],
            INVALID,
            "Requested signature not found in model graph: nope",
        ),
        (
            [("hp2x", "", PREDICT)],
            grpc.StatusCode.UNIMPLEMENTED,
            "Unsupported signature method_name: tensorflow/serving/predict",
        ),
        (
            [("nope", "classify_x_to_y", CLASSIFY)],
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(nope)",
        ),
    ],
    ids=["no-tasks", "two-models", "empty-name", "duplicate", "missing", "predict", "unknown"],
)
def test_multi_inference_errors(server, tasks, code, message):
    request = multi_inference_request(tasks)
    assert rpc_error(stubs(server)[0].MultiInference, request) == (code, message)


def test_multi_inference_without_examples(server):
    request = multi_inference_request([("hp2x", "regress_x_to_y", REGRESS)], examples=[])
    assert rpc_error(stubs(server)[0].MultiInference, request) == (INVALID, "Input is empty.")


def test_rest_errors(server):
    post = "POST"
    assert rest_json(
        server, post, "/v1/models/hp2x:regress", {"signature_name": "nope", "examples": [{}]}
    ) == (400, {"error": "No signature was found with the name: nope"})
    assert rest_json(server, post, "/v1/models/nope:classify", {"examples": [{"x": 2.0}]}) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )
    # upstream says "classify" for :regress too
    assert rest_json(
        server, post, "/v1/models/hp2x:regress", {"signature_name": "regress_x_to_y"}
    ) == (
        400,
        {
            "error": 'JSON Value: {\n    "signature_name": "regress_x_to_y"\n} When method is '
            "classify, key 'examples' is expected and was not found"
        },
    )
    no_inputs = f"No classification inputs found in SignatureDef: {predict_signature_text(server)}"
    assert rest_json(server, post, "/v1/models/hp2x:classify", {"examples": [{"x": 2.0}]}) == (
        400,
        {"error": no_inputs},
    )
    status, body = rest_json(
        server,
        post,
        "/v1/models/hp2x:classify",
        {"signature_name": "classify_x_to_y", "examples": [{"x": 2}]},
    )
    assert status == 400
    assert "Data types don't match. Data type: int64 but expected type: float" in body["error"]


# --- --enable_signature_method_name_check -------------------------------------------------------


def test_method_names_checked_when_asked(checked_server):
    prediction = stubs(checked_server)[0]
    assert rpc_error(prediction.Classify, classification_request("hp2x", "", [{"x": 2.0}])) == (
        INVALID,
        f"Expected classification signature method_name to be {CLASSIFY}. Was: {PREDICT}",
    )
    assert rpc_error(
        prediction.Regress, regression_request("hp2x", "classify_x_to_y", [{"x": 2.0}])
    ) == (INVALID, f"Expected regression signature method_name to be {REGRESS}. Was: {CLASSIFY}")
    assert rpc_error(
        prediction.MultiInference,
        multi_inference_request([("hp2x", "regress_x_to_y", CLASSIFY)]),
    ) == (
        INVALID,
        f"Expected classification signature method_name to be {CLASSIFY}. Was: {REGRESS}",
    )
    assert rest_json(
        checked_server, "POST", "/v1/models/hp2x:regress", {"examples": [{"x": 2.0}]}
    ) == (
        400,
        {"error": f"Expected regression signature method_name to be {REGRESS}. Was: {PREDICT}"},
    )
    # exported signatures carry their methods, so they pass
    request = classification_request("hp2x", "classify_x_to_y", [{"x": 2.0}])
    assert classes(prediction.Classify(request, timeout=30).result) == [[("", 3.0)]]
    request = regression_request("hp2x", "regress_x_to_y", [{"x": 2.0}])
    assert [r.value for r in prediction.Regress(request, timeout=30).result.regressions] == [3.0]
    # predict accepts predict, classify and regress signatures
    example = example_pb2.Example()
    fill_example(example, {"x": 2.0})
    examples = np.array([example.SerializeToString()], dtype=object)
    response = prediction.Predict(
        predict_request("hp2x", {"inputs": examples}, signature_name="classify_x_to_y"), timeout=30
    )
    assert response.outputs["scores"].float_val == [3.0]
