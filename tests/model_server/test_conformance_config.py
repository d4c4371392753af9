"""Contract §5: the model config file — several models, version policies, version labels and
their availability rule, validation texts, and reloads by polling the file — against real
server processes.
"""

from __future__ import annotations

import grpc
import pytest

from tests.helpers.conformance import (
    assert_serving,
    half_plus_two_answer,
    reload_config,
    reload_request,
    rpc_error,
    run_to_exit,
    states_by_version,
    stubs,
    wait_for_states,
    write_atomically,
    write_config,
)
from tests.helpers.server_process import ServerProcess
from tests.helpers.waiting import wait_until
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import All, Latest, Specific

# --- several models and every version policy ---------------------------------------------------

POLICIES = {
    "default": (None, {3: "AVAILABLE"}),
    "latest-0": (Latest(0), {3: "AVAILABLE"}),
    "latest-2": (Latest(2), {3: "AVAILABLE", 2: "AVAILABLE"}),
    "all": (All(), {3: "AVAILABLE", 2: "AVAILABLE", 1: "AVAILABLE"}),
    "specific": (Specific((1, 3)), {3: "AVAILABLE", 1: "AVAILABLE"}),
}


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory, half_plus_two_models, multi_io_models):
    """One model per policy over the same versions 1, 2 and 3 (3 is a copy of 2), ``numbered``
    whose only version directories are ``0007`` and ``v9``, and ``multi_io``."""
    root = tmp_path_factory.mktemp("policies")
    base = half_plus_two_models.make_base_path(root, (1, 2))
    half_plus_two_models.add_version(base, 2, as_version=3)
    numbered = root / "numbered"
    numbered.mkdir()
    half_plus_two_models.add_version(numbered, 1, as_version=7)
    (numbered / "7").rename(numbered / "0007")
    half_plus_two_models.add_version(numbered, 2, as_version=9)
    (numbered / "9").rename(numbered / "v9")
    configs = [
        ModelConfig(name, str(base), *([policy] if policy else []))
        for name, (policy, _) in POLICIES.items()
    ]
    configs += [
        ModelConfig("numbered", str(numbered)),
        ModelConfig("multi_io", str(multi_io_models.make_base_path(root))),
    ]
    process = ServerProcess(
        root,
        f"--model_config_file={write_config(root / 'models.config', configs)}",
        "--ephemeral_ports",
    )
    yield process
    process.stop()


@pytest.mark.parametrize(("name", "expected"), [(k, v[1]) for k, v in POLICIES.items()])
def test_version_policies_choose_the_versions_served(policy_server, name, expected):
    wait_for_states(policy_server, name, expected)
    for version in expected:
        assert half_plus_two_answer(policy_server, name, version=version)[0] == version
    assert half_plus_two_answer(policy_server, name)[0] == 3
    assert_serving(policy_server, name)


def test_only_integer_directory_names_are_versions(policy_server):
    assert states_by_version(policy_server, "numbered") == {7: "AVAILABLE"}
    assert half_plus_two_answer(policy_server, "numbered") == (7, 2.5)


def test_several_models_in_one_file(policy_server):
    status = policy_server.rest(
        "POST", "/v1/models/multi_io:predict", b'{"inputs": {"a": [[1, 2]], "b": [[3, 4, 5]]}}'
    )
    assert status == (200, {"outputs": {"doubled": [[2.0, 4.0, 6.0, 8.0, 10.0]], "sum": [[15.0]]}})
    assert_serving(policy_server, "default")


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            'model_config_list { config { name: "hp2" base_path: "{base}" '
            'model_platform: "tensorflow" } config { name: "hp2" base_path: "{base}" '
            'model_platform: "tensorflow" } }',
            "INVALID_ARGUMENT: Illegal to list model hp2 multiple times in config list",
        ),
        (
            'model_config_list { config { name: "hp2" base_path: "models/hp2" '
            'model_platform: "tensorflow" } }',
            "INVALID_ARGUMENT: Expected model hp2 to have an absolute path or URI; "
            "got base_path()=models/hp2",
        ),
        (
            'model_config_list { config { name: "hp2" base_path: "{base}" } }',
            "INVALID_ARGUMENT: Illegal setting neither ModelServerConfig::model_type "
            "(deprecated) nor ModelServerConfig::model_platform, model name is hp2",
        ),
        (
            'model_config_list { config { name: "hp2" base_path: "{base}" '
            'model_platform: "pytorch" } }',
            "INVALID_ARGUMENT: Model hp2 requests unsupported platform pytorch",
        ),
        (
            'model_config_list { config { name: "hp2" base_path: "{base}" '
            'model_platform: "tensorflow" version_labels { key: "stable" value: 1 } } }',
            "FAILED_PRECONDITION: Request to assign label to version 1 of model hp2, which is "
            "not currently available for inference",
        ),
        (
            "model_config_list { config { name: ",
            "INVALID_ARGUMENT: Invalid protobuf file: '{file}'",
        ),
    ],
    ids=["duplicate", "relative", "no-platform", "bad-platform", "label-at-start-up", "syntax"],
)
def test_invalid_config_files_stop_start_up_with_the_reason(
    tmp_path, half_plus_two_base, text, error
):
    config = tmp_path / "models.config"
    config.write_text(text.replace("{base}", str(half_plus_two_base)))
    code, out = run_to_exit(f"--model_config_file={config}", "--ephemeral_ports")
    assert code == 255
    assert f"Failed to start server. Error: {error.replace('{file}', str(config))}" in out


def test_a_missing_config_file_stops_start_up(tmp_path):
    missing = tmp_path / "nope.config"
    code, out = run_to_exit(f"--model_config_file={missing}", "--ephemeral_ports")
    assert code == 255
    assert f"Failed to start server. Error: NOT_FOUND: {missing}; No such file or directory" in out


# --- labels ------------------------------------------------------------------------------------


def _hp2(base, versions=(1,), labels=None) -> ModelConfig:
    return ModelConfig("hp2", str(base), Specific(tuple(versions)), labels or {})


@pytest.fixture(scope="module")
def label_root(tmp_path_factory, half_plus_two_models):
    root = tmp_path_factory.mktemp("labels")
    half_plus_two_models.make_base_path(root, (1, 2))
    return root / "half_plus_two"


def _label_server(workdir, model_base, *flags):
    """A server in ``workdir`` serving version 1 of ``hp2`` from ``model_base``."""
    config = write_config(workdir / "models.config", [_hp2(model_base)])
    return ServerProcess(workdir, f"--model_config_file={config}", "--ephemeral_ports", *flags)


@pytest.fixture(scope="module")
def label_process(tmp_path_factory, label_root):
    process = _label_server(tmp_path_factory.mktemp("label_server"), label_root)
    yield process
    process.stop()


def _only_version_1(server) -> bool:
    states = states_by_version(server, "hp2")
    return states.get(1) == "AVAILABLE" and states.get(2, "END") == "END"


@pytest.fixture
def label_server(label_process, label_root):
    """Serves ``hp2`` version 1 only, no labels, and no exemption flag."""
    reload_config(label_process, [_hp2(label_root)])
    wait_until(lambda: _only_version_1(label_process), "hp2 to serve version 1 only")
    yield label_process
    assert_serving(label_process, "hp2")


def _reload_error(server, configs):
    return rpc_error(stubs(server)[1].HandleReloadConfigRequest, reload_request(configs))


def _not_available(version: int) -> tuple[grpc.StatusCode, str]:
    return (
        grpc.StatusCode.FAILED_PRECONDITION,
        f"Request to assign label to version {version} of model hp2, which is not currently "
        "available for inference",
    )


def test_a_label_may_only_point_at_an_available_version(label_server, label_root):
    labels = {"stable": 1, "canary": 2}
    assert _reload_error(label_server, [_hp2(label_root, (1, 2), labels)]) == _not_available(2)
    assert _only_version_1(label_server)  # labels are checked before anything loads
    # so moving a label to a new version takes two reloads: load it, then point the label
    reload_config(label_server, [_hp2(label_root, (1, 2), {"stable": 1})])
    wait_for_states(label_server, "hp2", {2: "AVAILABLE", 1: "AVAILABLE"})
    reload_config(label_server, [_hp2(label_root, (1, 2), labels)])
    assert half_plus_two_answer(label_server, "hp2", label="stable") == (1, 2.5)
    assert half_plus_two_answer(label_server, "hp2", label="canary") == (2, 3.5)


def test_several_labels_may_share_a_version(label_server, label_root):
    reload_config(label_server, [_hp2(label_root, (1,), {"stable": 1, "blue": 1, "green": 1})])
    for label in ("stable", "blue", "green"):
        assert half_plus_two_answer(label_server, "hp2", label=label) == (1, 2.5)
    assert _reload_error(label_server, [_hp2(label_root, (1,), {"x": 9})]) == _not_available(9)


@pytest.fixture(scope="module")
def exempt_server(tmp_path_factory, label_root):
    """Like ``label_server``, with ``--allow_version_labels_for_unavailable_models``."""
    workdir = tmp_path_factory.mktemp("exempt_server")
    process = _label_server(workdir, label_root, "--allow_version_labels_for_unavailable_models")
    yield process
    process.stop()


def test_the_flag_exempts_only_new_labels(exempt_server, label_root):
    reload_config(exempt_server, [_hp2(label_root, (1,), {"stable": 1, "canary": 2})])  # new
    code_and_text = _reload_error(exempt_server, [_hp2(label_root, (1,), {"stable": 2})])
    assert code_and_text == _not_available(2)  # moving an existing label is not exempt
    reload_config(exempt_server, [_hp2(label_root, (1, 2), {"stable": 1, "canary": 2})])
    wait_for_states(exempt_server, "hp2", {2: "AVAILABLE", 1: "AVAILABLE"})
    assert half_plus_two_answer(exempt_server, "hp2", label="canary") == (2, 3.5)
    assert_serving(exempt_server, "hp2")


# --- --model_config_file_poll_wait_seconds -----------------------------------------------------


def test_polling_picks_up_edits_and_removes_models_left_out(
    tmp_path, half_plus_two_models, multi_io_models
):
    hp2 = ModelConfig("hp2", str(half_plus_two_models.make_base_path(tmp_path)))
    multi_io = ModelConfig("multi_io", str(multi_io_models.make_base_path(tmp_path)))
    config = write_config(tmp_path / "models.config", [hp2])
    server = ServerProcess(
        tmp_path,
        f"--model_config_file={config}",
        "--model_config_file_poll_wait_seconds=1",
        "--ephemeral_ports",
    )
    try:
        write_config(config, [hp2, multi_io])
        wait_for_states(server, "multi_io", {1: "AVAILABLE"})
        write_atomically(config, "model_config_list { config { name: ")  # broken: ignored
        error = f"Failed to read ModelServerConfig file: Invalid protobuf file: '{config}'"
        wait_until(lambda: error in server.logs(), "the bad file to be reported")
        assert_serving(server, "hp2")
        write_config(config, [hp2])
        wait_for_states(server, "multi_io", {1: "END"})
        assert server.rest("POST", "/v1/models/multi_io:predict", b'{"instances": [[1]]}') == (
            404,
            {"error": "Servable not found for request: Latest(multi_io)"},
        )
        assert_serving(server, "hp2")
    finally:
        server.stop()
