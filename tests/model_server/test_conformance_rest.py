"""Contract §4: the REST API, with TF Serving's routes, JSON shapes, texts and HTTP statuses,
against a real server over a real socket.

One read-only server (:func:`server`, CORS on) answers every request test; the deadline tests
use a second one (:func:`slow_server`, CORS off, a short ``--rest_api_timeout_in_ms``). After
every test the served model still answers a normal predict.
"""

from __future__ import annotations

import base64
import math

import pytest

from tests.helpers.conformance import (
    assert_serving,
    half_plus_two_answer,
    rest,
    rest_json,
    write_config,
)
from tests.helpers.server_process import ServerProcess
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import Specific

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, half_plus_two_models, multi_io_models, dtypes_models, float16_models):
    """``hp2`` (versions 1 and 2; labels stable → 1, canary → 2, ``a/b`` → 1, ``my label`` →
    2), ``hp two`` (its latest version), ``multi_io``, ``dtypes`` and ``float16``; CORS on."""
    root = tmp_path_factory.mktemp("rest")
    hp2 = str(half_plus_two_models.make_base_path(root, (1, 2)))
    labels = {"stable": 1, "canary": 2, "a/b": 1, "my label": 2}
    configs = [
        ModelConfig("hp2", hp2, Specific((1, 2)), labels),
        ModelConfig("hp two", hp2),
        *(
            ModelConfig(versions.name, str(versions.make_base_path(root)))
            for versions in (multi_io_models, dtypes_models, float16_models)
        ),
    ]
    process = ServerProcess(
        root,
        f"--model_config_file={write_config(root / 'models.config', configs)}",
        "--allow_version_labels_for_unavailable_models",
        "--rest_api_enable_cors_support",
        "--ephemeral_ports",
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory, half_plus_two_models, busy_wait_models):
    """``hp2`` and ``busy_wait`` with a 1.5 s REST deadline; CORS off."""
    root = tmp_path_factory.mktemp("rest_deadline")
    configs = [
        ModelConfig("hp2", str(half_plus_two_models.make_base_path(root))),
        ModelConfig("busy_wait", str(busy_wait_models.make_base_path(root))),
    ]
    process = ServerProcess(
        root,
        f"--model_config_file={write_config(root / 'models.config', configs)}",
        "--rest_api_timeout_in_ms=1500",
        "--ephemeral_ports",
    )
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def still_serving(request):
    """After each test, the server it used still answers a normal predict."""
    yield
    for fixture in ("server", "slow_server"):
        if fixture in request.fixturenames:
            assert_serving(request.getfixturevalue(fixture), "hp2")


def post(server, path, doc):
    return rest_json(server, "POST", path, doc)


# --- routes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "y"),
    [
        ("/v1/models/hp2:predict", 3.5),
        ("/V1/MODELS/hp2/VERSIONS/1:predict", 2.5),
        ("/v1/Models/hp2/Labels/stable:predict", 2.5),
        ("/v1/models/hp2/labels/canary:predict", 3.5),
        ("/v1/models/hp%20two:predict", 3.5),
        ("/v1/models/hp2/labels/a%2Fb:predict", 2.5),
        ("/v1/models/hp2/labels/my%20label:predict", 3.5),
        ("/v1/models/hp2/versions/0001:predict", 2.5),
    ],
)
def test_routes_are_case_insensitive_and_url_decoded(server, path, y):
    assert post(server, path, {"instances": [[1.0]]}) == (200, {"predictions": [[y]]})


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("POST", "/v1/models/hp2", 400, "Malformed request: POST /v1/models/hp2"),
        ("POST", "/v1/models/hp2:explain", 400, "Malformed request: POST /v1/models/hp2:explain"),
        ("POST", "/v1/models/hp2:PREDICT", 400, "Malformed request: POST /v1/models/hp2:PREDICT"),
        (
            "POST",
            "/v1/models/hp2/versions/one:predict",
            400,
            "Malformed request: POST /v1/models/hp2/versions/one:predict",
        ),
        (
            "POST",
            "/v1/models/hp2/versions/99999999999999999999:predict",
            400,
            "Failed to convert version: 99999999999999999999 to numeric.",
        ),
        ("GET", "/v1/models/hp2:predict", 400, "Malformed request: GET /v1/models/hp2:predict"),
        ("GET", "/v1/", 400, "Malformed request: GET /v1/"),
        ("GET", "/v1/models", 400, "Missing model name in request."),
        ("GET", "/v1/models/", 400, "Malformed request: GET /v1/models/"),
        ("PUT", "/v1/models/hp2", 400, "Malformed request: PUT /v1/models/hp2"),
        ("DELETE", "/v1/models/hp2", 400, "Malformed request: DELETE /v1/models/hp2"),
        ("GET", "/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/hp2/versions/7", 404, "Could not find version 7 of model hp2"),
        ("GET", "/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
        (
            "GET",
            "/v1/models/hp2/versions/7/metadata",
            404,
            "Servable not found for request: Specific(hp2, 7)",
        ),
        (
            "GET",
            "/v1/models/hp2/labels/nope/metadata",
            400,
            "Unrecognized servable version label: nope",
        ),
        ("POST", "/v1/models/nope:predict", 404, "Servable not found for request: Latest(nope)"),
        (
            "POST",
            "/v1/models/hp2/versions/7:predict",
            404,
            "Servable not found for request: Specific(hp2, 7)",
        ),
        (
            "POST",
            "/v1/models/hp2/labels/nope:predict",
            400,
            "Unrecognized servable version label: nope",
        ),
    ],
)
def test_bad_paths_answer_errors_with_tf_serving_statuses(server, method, path, status, error):
    body = b'{"instances": [[1.0]]}' if method == "POST" else None
    reply = rest(server, method, path, body)
    assert (reply.status, reply.json) == (status, {"error": error})
    assert reply.headers["Content-Type"] == "application/json"


def test_paths_outside_v1_are_not_handled(server):
    assert rest(server, "GET", "/v2/models/hp2").status == 404


def test_only_lowercase_metadata_is_the_metadata_subresource(server):
    """Upstream compares the sub-resource exactly after a case-insensitive match, so
    ``/METADATA`` answers the model status."""
    status, body = rest_json(server, "GET", "/v1/models/hp2/METADATA")
    assert status == 200 and "model_version_status" in body


def test_error_texts_are_not_truncated_over_rest(server):
    name = "m" * 2000
    status, body = post(server, f"/v1/models/{name}:predict", {"instances": [[1.0]]})
    assert (status, body) == (404, {"error": f"Servable not found for request: Latest({name})"})


# --- status and metadata -----------------------------------------------------------------------


def _version_status(version: str) -> dict:
    ok = {"error_code": "OK", "error_message": ""}
    return {"version": version, "state": "AVAILABLE", "status": ok}


@pytest.mark.parametrize(
    ("path", "versions"),
    [
        ("/v1/models/hp2", ["2", "1"]),
        ("/v1/models/hp2/versions/1", ["1"]),
        ("/v1/models/hp2/labels/stable", ["2", "1"]),  # a label is ignored, as upstream
        ("/v1/models/hp%20two", ["2"]),
    ],
)
def test_status_json(server, path, versions):
    status, body = rest_json(server, "GET", path)
    assert status == 200
    assert body == {"model_version_status": [_version_status(v) for v in versions]}


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("/v1/models/hp2/metadata", "2"),
        ("/v1/models/hp2/versions/1/metadata", "1"),
        ("/v1/models/hp2/labels/stable/metadata", "1"),
    ],
)
def test_metadata_json(server, path, version):
    status, body = rest_json(server, "GET", path)
    assert status == 200
    assert body["model_spec"] == {"name": "hp2", "signature_name": "", "version": version}
    signature_defs = body["metadata"]["signature_def"]["signature_def"]
    signature = signature_defs["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    x = signature["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT"
    assert x["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}],
        "unknown_rank": False,
    }
    assert set(signature["outputs"]) == {"y"}


# --- predict: formats --------------------------------------------------------------------------


def test_row_and_columnar_with_one_input(server):
    body = '{"instances": [[1.0], [4.0]]}'
    reply = rest(server, "POST", "/v1/models/hp2/versions/1:predict", body)
    assert reply.status == 200
    assert reply.body == b'{\n    "predictions": [[2.5], [4.0]\n    ]\n}'  # whole floats: 4.0
    assert post(server, "/v1/models/hp2:predict", {"instances": [[1.0], [2.0]]}) == (
        200,
        {"predictions": [[3.5], [4.0]]},
    )
    assert post(server, "/v1/models/hp2:predict", {"inputs": [[1.0], [2.0]]}) == (
        200,
        {"outputs": [[3.5], [4.0]]},
    )
    doc = {"signature_name": "serving_default", "inputs": [[1.0]]}
    assert post(server, "/v1/models/hp2:predict", doc) == (200, {"outputs": [[3.5]]})


def test_row_and_columnar_with_several_inputs_and_outputs(server):
    instances = [{"a": [1, 2], "b": [3, 4, 5]}, {"b": [0, 0, 1], "a": [0, 0]}]
    status, body = post(server, "/v1/models/multi_io:predict", {"instances": instances})
    assert (status, body) == (
        200,
        {
            "predictions": [
                {"doubled": [2.0, 4.0, 6.0, 8.0, 10.0], "sum": [15.0]},
                {"doubled": [0.0, 0.0, 0.0, 0.0, 2.0], "sum": [1.0]},
            ]
        },
    )
    inputs = {"a": [[1, 2], [0, 0]], "b": [[3, 4, 5], [0, 0, 1]]}
    status, body = post(server, "/v1/models/multi_io:predict", {"inputs": inputs})
    assert (status, body) == (
        200,
        {
            "outputs": {
                "doubled": [[2.0, 4.0, 6.0, 8.0, 10.0], [0.0, 0.0, 0.0, 0.0, 2.0]],
                "sum": [[15.0], [1.0]],
            }
        },
    )


PREDICT_BODY_ERRORS = {
    "both-keys": (
        "hp2",
        '{"instances": [[1.0]], "inputs": [[1.0]]}',
        'JSON Value: {\n    "instances": [[1.0]],\n    "inputs": [[1.0]]\n} Not formatted '
        "correctly expecting only one of 'inputs' or 'instances' keys to exist ",
    ),
    "neither-key": ("hp2", '{"x": [[1.0]]}', "Missing 'inputs' or 'instances' key"),
    "bad-json": (
        "hp2",
        '{"instances": [[1.0]',
        "JSON Parse error: Missing a comma or ']' after an array element. at offset: 20",
    ),
    "empty-body": ("hp2", "", "JSON Parse error: The document is empty"),
    "not-an-object": ("hp2", "[1.0]", "JSON Value: [1.0] Is not object"),
    "no-instances": (
        "hp2",
        '{"instances": []}',
        "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
    ),
    "instances-not-a-list": (
        "hp2",
        '{"instances": 1.0}',
        "JSON Value: {\n    \"instances\": 1.0\n} Expecting 'instances' to be an list/array",
    ),
    "unknown-signature": (
        "hp2",
        '{"signature_name": "nope", "instances": [[1.0]]}',
        'Serving signature name: "nope" not found in signature def',
    ),
    "ragged-instances": (
        "hp2",
        '{"instances": [[1.0], [1.0, 2.0]]}',
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting tensor size: 1 but got: 2",
    ),
    "wrong-type": (
        "hp2",
        '{"instances": [["x"]]}',
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "x" Type: String is not of expected type: float',
    ),
    "plain-list-for-several-inputs": (
        "multi_io",
        '{"instances": [[1.0]]}',
        "instances is a plain list, but expecting list of objects as multiple input tensors "
        "required as per tensorinfo_map",
    ),
    "instance-missing-a-key": (
        "multi_io",
        '{"instances": [{"a": [1.0, 2.0]}]}',
        "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"a\": "
        "[1.0, 2.0]\n} keys must be equal to: a,b",
    ),
    "instance-bad-value": (
        "multi_io",
        '{"instances": [{"a": ["x", 2.0], "b": [1.0, 2.0, 3.0]}]}',
        "Failed to process element: 0 key: a of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "x" Type: String is not of expected type: float',
    ),
    "inputs-missing-a-name": (
        "multi_io",
        '{"inputs": {"a": [[1.0, 2.0]]}}',
        "Missing named input: b in 'inputs' object.",
    ),
    "plain-inputs-for-several-inputs": (
        "multi_io",
        '{"inputs": [[1.0]]}',
        "inputs is a plain value/list, but expecting an object as multiple input tensors "
        "required as per tensorinfo_map",
    ),
}


@pytest.mark.parametrize(
    ("model", "body", "error"), PREDICT_BODY_ERRORS.values(), ids=PREDICT_BODY_ERRORS
)
def test_predict_body_errors(server, model, body, error):
    reply = rest(server, "POST", f"/v1/models/{model}:predict", body)
    assert (reply.status, reply.json) == (400, {"error": error})


# --- predict: dtypes ---------------------------------------------------------------------------

HELLO = base64.b64encode("héllo".encode()).decode()
DTYPE_VALUES = {
    "float32": ("[1.5, NaN]", [1.5, math.nan]),
    "float64": ("[0.1, -Infinity]", [0.1, -math.inf]),
    "int8": ("[-128, 127]", [-128, 127]),
    "int16": ("[-32768, 32767]", [-32768, 32767]),
    "int32": ("[-2147483648, 2147483647]", [-2147483648, 2147483647]),
    "int64": ("[-9223372036854775808, 9223372036854775807]", [-(2**63), 2**63 - 1]),
    "uint8": ("[0, 255]", [0, 255]),
    "uint32": ("[0, 4294967295]", [0, 2**32 - 1]),
    "uint64": ("[0, 18446744073709551615]", [0, 2**64 - 1]),
    "bool": ("[true, false]", [True, False]),
    "string": (f'["hello", {{"b64": "{HELLO}"}}]', ["hello", "héllo"]),
}


def _same(got, expected):
    return all(
        (isinstance(e, float) and math.isnan(e) and math.isnan(g)) or g == e
        for g, e in zip(got, expected, strict=True)
    )


def test_every_json_dtype_round_trips_row_format(server):
    instance = "{" + ", ".join(f'"{k}": {text}' for k, (text, _) in DTYPE_VALUES.items()) + "}"
    reply = rest(server, "POST", "/v1/models/dtypes:predict", f'{{"instances": [{instance}]}}')
    assert reply.status == 200, reply.body
    (prediction,) = reply.json["predictions"]
    for dtype, (_, expected) in DTYPE_VALUES.items():
        assert _same(prediction[f"{dtype}_out"], expected), (dtype, prediction[f"{dtype}_out"])
    assert prediction["string_bytes"] == [
        {"b64": base64.b64encode(b"hello").decode()},
        {"b64": HELLO},
    ]
    assert b"NaN" in reply.body and b"-Infinity" in reply.body


def test_every_json_dtype_round_trips_columnar_format(server):
    inputs = "{" + ", ".join(f'"{k}": [{text}]' for k, (text, _) in DTYPE_VALUES.items()) + "}"
    reply = rest(server, "POST", "/v1/models/dtypes:predict", f'{{"inputs": {inputs}}}')
    assert reply.status == 200, reply.body
    outputs = reply.json["outputs"]
    for dtype, (_, expected) in DTYPE_VALUES.items():
        (got,) = outputs[f"{dtype}_out"]
        assert _same(got, expected), (dtype, got)


def _with(dtype: str, text: str) -> str:
    values = {k: v for k, (v, _) in DTYPE_VALUES.items()}
    values[dtype] = text
    return '{"instances": [{' + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}]}"


@pytest.mark.parametrize(
    ("dtype", "text", "value", "json_type"),
    [
        ("float32", '[1.0, "x"]', '"x"', "String"),
        ("int8", "[1, 1.0]", "1.0", "Number"),
        ("int32", "[1, 2147483648]", "2147483648", "Number"),
        ("uint8", "[1, true]", "true", "True"),
        ("int64", "[1, 9223372036854775808]", "9223372036854775808", "Number"),
        ("uint32", "[1, -1]", "-1", "Number"),
        ("uint64", "[1, -1]", "-1", "Number"),
        ("bool", "[true, 1]", "1", "Number"),
        ("string", '["a", 1]', "1", "Number"),
    ],
)
def test_json_values_of_the_wrong_type_are_rejected(server, dtype, text, value, json_type):
    reply = rest(server, "POST", "/v1/models/dtypes:predict", _with(dtype, text))
    assert reply.status == 400
    assert reply.json == {
        "error": f"Failed to process element: 0 key: {dtype} of 'instances' list. Error: "
        f"INVALID_ARGUMENT: JSON Value: {value} Type: {json_type} is not of expected type: "
        f"{dtype.replace('float32', 'float').replace('float64', 'double')}"
    }


def test_dtypes_without_a_json_conversion_are_unimplemented(server):
    status, body = post(server, "/v1/models/float16:predict", {"inputs": [[1.0, 2.0]]})
    assert (status, body) == (501, {"error": "Conversion of JSON Value: 1.0 to type: half"})


# --- transport: gzip, CORS, deadline -----------------------------------------------------------


def test_gzip_request_bodies_are_decompressed(server):
    reply = rest(server, "POST", "/v1/models/hp2:predict", '{"instances": [[1.0]]}', gzipped=True)
    assert (reply.status, reply.json) == (200, {"predictions": [[3.5]]})


def test_deflate_bodies_too_and_a_corrupt_body_is_named(server):
    import zlib

    body = zlib.compress(b'{"instances": [[1.0]]}')
    reply = rest(server, "POST", "/v1/models/hp2:predict", body, {"Content-Encoding": "deflate"})
    assert (reply.status, reply.json) == (200, {"predictions": [[3.5]]})
    reply = rest(
        server, "POST", "/v1/models/hp2:predict", b"not gzip", {"Content-Encoding": "gzip"}
    )
    assert reply.status == 400
    assert reply.json["error"].startswith("Failed to decompress gzip request body: ")


def test_a_mis_shaped_instance_gets_tensorflows_error(server):
    status, body = rest_json(server, "POST", "/v1/models/hp2:predict", {"instances": [[1.0, 2.0]]})
    assert status == 400
    assert body["error"].startswith("Matrix size-incompatible: In[0]: [1,2], In[1]: [1,1]")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/models/hp2"), ("POST", "/v1/models/hp2:predict"), ("GET", "/v1/models/nope")],
)
def test_cors_headers_on_every_answer_when_enabled(server, slow_server, method, path):
    body = '{"instances": [[1.0]]}' if method == "POST" else None
    headers = rest(server, method, path, body).headers
    assert {k: headers.get(k) for k in CORS_HEADERS} == CORS_HEADERS
    without = rest(slow_server, method, path, body).headers
    assert not [k for k in without if k.lower().startswith("access-control")]


@pytest.mark.parametrize(
    ("origin", "status"),
    [("http://localhost:8888", 200), ("https://example.org", 200), (None, 400), ("null", 400)],
)
def test_cors_preflight_needs_an_http_origin(server, origin, status):
    headers = {"Origin": origin} if origin else {}
    reply = rest(server, "OPTIONS", "/v1/models/hp2:predict", headers=headers)
    assert (reply.status, reply.body) == (status, b"")
    assert {k: reply.headers.get(k) for k in CORS_HEADERS} == CORS_HEADERS


def test_deadline_exceeded_answers_504_and_the_server_keeps_serving(slow_server):
    """A run past ``--rest_api_timeout_in_ms`` answers 504; meanwhile (the run still going on
    its inference thread) and afterwards, other requests are answered."""
    status, body = post(slow_server, "/v1/models/busy_wait:predict", {"instances": [[4.0]]})
    assert (status, body) == (504, {"error": "Timed out waiting for notification"})
    assert half_plus_two_answer(slow_server, "hp2") == (1, 2.5)
    assert post(slow_server, "/v1/models/hp2:predict", {"instances": [[1.0]]}) == (
        200,
        {"predictions": [[2.5]]},
    )
    assert post(slow_server, "/v1/models/busy_wait:predict", {"instances": [[0.0]]}) == (
        200,
        {"predictions": [[0.0]]},
    )
