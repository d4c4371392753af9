"""Random REST bodies, as a careless or hostile client sends them, against a real server.

Hypothesis draws JSON documents (any shape: nested lists of numbers, strings, booleans and
nulls, objects with the request keys or others, ``b64`` objects), near-JSON bytes, and
predict/classify/regress/metadata paths. For every one the server answers at once with either
200 and a JSON body or a 4xx status and upstream's ``{"error": "..."}`` JSON body; never a 5xx
(no request may reach a bug), never a closed connection; and a good predict answers right
after. Bounded: a fixed number of examples, each request with a 30 s deadline."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.conformance import rest, rest_json
from tests.helpers.server_process import ServerProcess

PATHS = [
    "/v1/models/hp2:predict",
    "/v1/models/hp2/versions/1:predict",
    "/v1/models/hp2:classify",
    "/v1/models/hp2:regress",
    "/v1/models/multi_io:predict",
    "/v1/models/hp2/metadata",
    "/v1/models/nope:predict",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["b64", "x", "a", "b", "y"]) | st.text(max_size=4), inner, max_size=3
        )
    ),
    max_leaves=24,
)
documents = (
    st.fixed_dictionaries(
        {},
        optional={
            "instances": values,
            "inputs": values,
            "examples": values,
            "signature_name": st.sampled_from(["", "serving_default", "nope"])
            | st.text(max_size=6),
            "context": values,
        },
    )
    | values
)
near_json = st.binary(max_size=64) | documents.map(lambda d: json.dumps(d)[:-1].encode())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, half_plus_two_models, multi_io_models):
    root = tmp_path_factory.mktemp("rest_bad_input")
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "hp2" base_path: "{half_plus_two_models.make_base_path(root)}" '
        'model_platform: "tensorflow" }\n'
        f'  config {{ name: "multi_io" base_path: "{multi_io_models.make_base_path(root)}" '
        'model_platform: "tensorflow" }\n'
        "}\n"
    )
    process = ServerProcess(root, f"--model_config_file={config}", "--ephemeral_ports")
    yield process
    process.stop()


def _assert_answered_well(server: ServerProcess, path: str, body: bytes) -> None:
    reply = rest(server, "POST", path, body)
    assert reply.status < 500, (path, body, reply.status, reply.body[:300])
    parsed = json.loads(reply.body)  # always JSON
    if reply.status != 200:
        assert 400 <= reply.status < 500
        assert isinstance(parsed.get("error"), str) and parsed["error"], reply.body[:300]
    status, answer = rest_json(server, "POST", "/v1/models/hp2:predict", {"instances": [[1.0]]})
    assert (status, answer) == (200, {"predictions": [[2.5]]})


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(path=st.sampled_from(PATHS), document=documents)
def test_random_json_documents(server: ServerProcess, path: str, document: object) -> None:
    _assert_answered_well(server, path, json.dumps(document).encode())


@settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(path=st.sampled_from(PATHS[:4]), body=near_json)
def test_random_bytes_and_cut_documents(server: ServerProcess, path: str, body: bytes) -> None:
    _assert_answered_well(server, path, body)
