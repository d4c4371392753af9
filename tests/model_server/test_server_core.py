"""ServerCore with fake loaders (no TensorFlow): config reloads, labels, request resolution."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.core_fakes import FakeLoader
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.servable_state import ManagerState
from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.core.version_policy import Specific
from tfserve_nb.model_server.server_core import ServerCore, ServerCoreOptions

OPTIONS = ServerCoreOptions(file_system_poll_wait_seconds=0, max_num_load_retries=0)


def make_versions(base, *versions):
    for v in versions:
        (base / str(v)).mkdir(parents=True, exist_ok=True)
    return str(base)


@pytest.fixture
def base(tmp_path):
    return make_versions(tmp_path / "m", 1, 2)


def create(configs, options=OPTIONS, factory=FakeLoader):
    return ServerCore.create(configs, options, loader_factory=factory)


def error(fn, *args, **kwargs) -> ServingStatusError:
    with pytest.raises(ServingStatusError) as exc:
        fn(*args, **kwargs)
    return exc.value


def test_serves_latest_and_predicts(base):
    core = create([ModelConfig("m", base)])
    try:
        result = core.predict("m", {"x": np.ones((2, 1), np.float32)})
        assert result.version == 2 and result.signature_name == "serving_default"
        assert result.outputs["y"].tolist() == [[2.0], [2.0]]
        assert [s.id.version for s in core.model_status("m")] == [2]
    finally:
        core.stop()


def test_request_errors_have_upstream_texts(base):
    core = create([ModelConfig("m", base)])
    x = {"x": np.ones((1, 1), np.float32)}
    try:
        e = error(core.predict, "other", x)
        assert (e.code, e.message) == (
            Code.NOT_FOUND,
            "Servable not found for request: Latest(other)",
        )
        e = error(core.predict, "m", x, version=1)
        assert e.message == "Servable not found for request: Specific(m, 1)"
        e = error(core.predict, "m", x, label="stable")
        assert (e.code, e.message) == (
            Code.INVALID_ARGUMENT,
            "Unrecognized servable version label: stable",
        )
        e = error(core.predict, "m", x, signature_name="nope")
        assert (e.code, e.message) == (
            Code.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        )
        e = error(core.predict, "m", {"x": x["x"], "z": x["x"]})
        assert e.message == (
            "input size does not match signature: 2!=1 len({x,z}) != len({x}). "
            "Sent extra: {z}. Missing but required: {}."
        )
        e = error(core.predict, "m", x, output_filter=["q"])
        assert e.message == (
            "output tensor alias not found in signature: q Outputs expected to be in the set {y}."
        )
        e = error(core.model_status, "other")
        assert (e.code, e.message) == (Code.NOT_FOUND, "Could not find any versions of model other")
        e = error(core.model_status, "m", 7)
        assert e.message == "Could not find version 7 of model m"
        # the core still serves after every error
        assert core.predict("m", x).version == 2
    finally:
        core.stop()


def test_labels_only_on_available_versions(base):
    core = create([ModelConfig("m", base, Specific((1, 2)))])
    try:
        # start-up waits for the latest version only (upstream's ServableRequest::Latest)
        assert core.monitor.wait_until(lambda: core.manager.available_versions("m") == [2, 1], 30)
        core.reload_config([ModelConfig("m", base, Specific((1, 2)), {"stable": 1, "canary": 2})])
        x = {"x": np.ones((1, 1), np.float32)}
        assert core.predict("m", x, label="stable").version == 1
        assert core.predict("m", x, label="canary").version == 2
        e = error(core.reload_config, [ModelConfig("m", base, Specific((1, 2)), {"stable": 3})])
        assert (e.code, e.message) == (
            Code.FAILED_PRECONDITION,
            "Request to assign label to version 3 of model m, which is not currently available "
            "for inference",
        )
        assert core.predict("m", x, label="stable").version == 1  # refused reload changed nothing
    finally:
        core.stop()


def test_labels_at_startup_need_the_flag(base):
    labelled = [ModelConfig("m", base, labels={"stable": 2})]
    e = error(create, labelled)
    assert e.code is Code.FAILED_PRECONDITION
    core = create(
        labelled,
        ServerCoreOptions(
            file_system_poll_wait_seconds=0, allow_version_labels_for_unavailable_models=True
        ),
    )
    try:
        assert core.predict("m", {"x": np.ones((1, 1), np.float32)}, label="stable").version == 2
    finally:
        core.stop()


def test_flag_exempts_only_new_or_unchanged_labels(base):
    options = ServerCoreOptions(
        file_system_poll_wait_seconds=0, allow_version_labels_for_unavailable_models=True
    )
    core = create([ModelConfig("m", base, labels={"canary": 2})], options)
    try:
        core.reload_config([ModelConfig("m", base, labels={"canary": 2, "future": 9})])
        e = error(core.reload_config, [ModelConfig("m", base, labels={"canary": 9})])
        assert e.code is Code.FAILED_PRECONDITION
    finally:
        core.stop()


def test_reload_adds_and_removes_models(tmp_path, base):
    other = make_versions(tmp_path / "o", 5)
    core = create([ModelConfig("m", base)])
    try:
        core.reload_config([ModelConfig("o", other)])
        assert core.predict("o", {"x": np.ones((1, 1), np.float32)}).version == 5
        assert core.monitor.wait_until(
            lambda: core.monitor.versions("m")[2].state is ManagerState.END, 30
        )
        e = error(core.predict, "m", {"x": np.ones((1, 1), np.float32)})
        assert e.code is Code.NOT_FOUND
    finally:
        core.stop()


def test_config_validation_texts(base):
    e = error(create, [ModelConfig("m", base), ModelConfig("m", base)])
    assert e.message == "Illegal to list model m multiple times in config list"
    e = error(create, [ModelConfig("m", "relative/path")])
    assert e.message == (
        "Expected model m to have an absolute path or URI; got base_path()=relative/path"
    )


def test_failed_initial_load_reports_upstream_message(tmp_path):
    base = make_versions(tmp_path / "bad", 1)

    def failing(servable_id, path):
        return FakeLoader(servable_id, path, fail_times=99)

    e = error(create, [ModelConfig("bad", base)], factory=failing)
    assert e.code is Code.UNKNOWN
    assert e.message.startswith(
        "1 model(s) did not become available: {{{name: bad version: 1} due to error: UNKNOWN: "
        "injected failure 1"
    )
    assert e.message.endswith("}, }")
