"""by_hand: the protocol text of a config change and of a status read, checked as text (the
snippets are run against a real server in tests/widgets/test_protocol_by_hand.py)."""

from __future__ import annotations

import ast
import shlex

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfserve_nb.by_hand import config_reload, status_call
from tfserve_nb.config import ModelConfig, from_server_config, parse_config_file
from tfserve_nb.core.version_policy import Latest, Specific

ODD = ModelConfig("my model's", "/tmp/base path/it's here", Specific((1, 3)), {"canary": 3})
REMOTE = ModelConfig("remote", "s3://bucket/remote", Latest(2))


def _argv(command: str) -> list[str]:
    return shlex.split(command.replace("\\\n", " "))


def test_the_request_is_the_config_sent_as_text_proto() -> None:
    sent = ModelConfig("digits", "/models/digits", Specific((2,)))
    reload = config_reload([sent], "127.0.0.1:8500", served=[ODD])
    assert from_server_config(
        text_format.Parse(reload.request, model_server_config_pb2.ModelServerConfig())
    ) == [sent]


def test_the_python_snippet_parses_the_same_request_and_targets_the_address() -> None:
    reload = config_reload([ODD, REMOTE], "127.0.0.1:8500")
    tree = ast.parse(reload.python)
    config = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CONFIG"
    )
    assert parse_config_file(config) == [ODD, REMOTE]
    assert "grpc.insecure_channel('127.0.0.1:8500')" in reload.python
    assert "stub.HandleReloadConfigRequest(request" in reload.python


def test_models_config_mounts_local_base_paths_and_keeps_remote_ones() -> None:
    reload = config_reload([ODD, REMOTE], "127.0.0.1:8500")
    in_container = parse_config_file(reload.models_config)
    assert [c.base_path for c in in_container] == ["/models/my%20model%27s", "s3://bucket/remote"]
    assert [(c.version_policy, dict(c.labels)) for c in in_container] == [
        (ODD.version_policy, {"canary": 3}),
        (REMOTE.version_policy, {}),
    ]


def test_docker_run_line_quotes_every_word() -> None:
    argv = _argv(config_reload([ODD, REMOTE], "127.0.0.1:8500").docker_run)
    assert argv[:7] == ["docker", "run", "--rm", "-p", "8500:8500", "-p", "8501:8501"]
    volumes = [argv[i + 1] for i, word in enumerate(argv) if word == "-v"]
    assert volumes == [
        "/tmp/base path/it's here:/models/my%20model%27s:ro",
        "$PWD/models.config:/models/models.config:ro",  # shlex keeps $PWD for the shell
    ]
    image = argv.index("tensorflow/serving")
    assert argv[image + 1 :] == [
        "--model_config_file=/models/models.config",
        "--model_config_file_poll_wait_seconds=60",
        "--allow_version_labels_for_unavailable_models=true",  # ODD has a label
    ]
    unlabelled = _argv(config_reload([REMOTE], "127.0.0.1:8500").docker_run)
    assert not any(word.startswith("--allow_version_labels") for word in unlabelled)


def test_status_curl_url_quotes_the_name_and_indents_the_answer() -> None:
    call = status_call("http://127.0.0.1:8501/", "my model/v", {"model_version_status": []})
    assert _argv(call.curl) == ["curl", "-s", "http://127.0.0.1:8501/v1/models/my%20model%2Fv"]
    assert call.json == '{\n  "model_version_status": []\n}'
    assert str(call).splitlines()[0] == call.curl
