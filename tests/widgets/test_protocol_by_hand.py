"""The protocol beside every action: each switch (follow latest, pin, move a label, reload) and
each status refresh shows and returns what it sent, and what is shown runs as shown — the gRPC
snippet in a fresh Python process, the ``curl`` line with ``/usr/bin/curl`` — against the real
embedded server of ``conftest.py`` (checked through the protocol, not the widgets)."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tests.helpers.waiting import wait_until
from tfserve_nb.by_hand import ConfigReload, StatusCall
from tfserve_nb.config import ModelConfig, from_server_config, parse_config_file
from tfserve_nb.core.version_policy import Latest, Specific
from tfserve_nb.widgets import Dashboard, SwitchOutcome, dashboard

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def dash(rollout_server: Any) -> Any:
    board = dashboard(rollout_server, poll_interval=0.1)
    wait_until(lambda: board.monitor.served == (1,), what="v1 served")
    yield board
    board.close()


def served(server: Any) -> list[int]:
    return sorted(s.version for s in server.status() if s.state == "AVAILABLE")


def sent_configs(reload: ConfigReload) -> list[ModelConfig]:
    return from_server_config(
        text_format.Parse(reload.request, model_server_config_pb2.ModelServerConfig())
    )


def run_python(snippet: str) -> str:
    """Run ``snippet`` as a user would paste it into a fresh Python (this environment's)."""
    done = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_curl(command: str) -> Any:
    assert shutil.which("curl"), "the test set-up provides curl (/usr/bin/curl)"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def shown(outcome: SwitchOutcome, dash: Dashboard) -> None:
    """The switch panel shows every snippet of ``outcome`` (escaped, so copied exactly)."""
    message = dash.switch.message.value
    assert "tfnb-by-hand" in message
    texts = [text for _, text in outcome._blocks()]
    assert texts, "an outcome without its protocol"
    for text in texts:
        assert html.escape(text.rstrip()) in message


def test_each_switch_returns_and_shows_the_reload_it_sent(
    dash: Dashboard, rollout_server: Any, rollout_base: Path
) -> None:
    pinned = dash.pin([1, 2])
    assert pinned.ok and pinned.reload is not None and pinned.status is not None
    assert sent_configs(pinned.reload) == [
        ModelConfig("digits", str(rollout_base), Specific((1, 2)))
    ]
    shown(pinned, dash)

    moved = dash.move_label("canary", 2)
    assert moved.ok and moved.reload is not None
    assert dict(sent_configs(moved.reload)[0].labels) == {"canary": 2}
    shown(moved, dash)

    dash.move_label("canary", None)
    latest = dash.follow_latest()
    assert latest.ok and latest.reload is not None
    assert sent_configs(latest.reload)[0].version_policy == Latest(1)
    states = {
        int(s["version"]): s["state"]
        for s in json.loads(latest.status.json)["model_version_status"]  # type: ignore[union-attr]
    }
    assert states[2] == "AVAILABLE"  # the status read after the switch
    shown(latest, dash)

    again = dash.reload()
    assert again.ok and again.reload is not None and "reload" in again.action
    assert sent_configs(again.reload) == sent_configs(latest.reload)
    shown(again, dash)
    assert "Reload config" in dash.switch.reload_button.description


def test_a_refused_switch_sends_nothing_but_still_shows_the_status(dash: Dashboard) -> None:
    refused = dash.move_label("canary", 2)  # v2 is on disk, not loaded: the server refuses
    assert not refused.ok and refused.reload is None
    assert refused.upstream.startswith("[FAILED_PRECONDITION]")
    assert refused.status is not None and '"state": "AVAILABLE"' in refused.status.json


def test_the_grpc_snippet_sends_the_same_reload(dash: Dashboard, rollout_server: Any) -> None:
    pinned = dash.pin([1, 2])
    assert pinned.reload is not None
    assert dash.follow_latest().ok
    wait_until(lambda: served(rollout_server) == [2], what="only v2 after following latest")

    assert run_python(pinned.reload.python).strip() == "reloaded"
    wait_until(lambda: served(rollout_server) == [1, 2], what="the snippet's pin of v1 and v2")


def test_the_models_config_reproduces_the_state_for_a_container(
    dash: Dashboard, rollout_base: Path
) -> None:
    dash.pin([1, 2])
    moved = dash.move_label("stable", 1)
    assert moved.reload is not None
    (config,) = parse_config_file(moved.reload.models_config)
    assert config == ModelConfig("digits", "/models/digits", Specific((1, 2)), {"stable": 1})
    assert f"-v {rollout_base}:/models/digits:ro" in moved.reload.docker_run
    assert "tensorflow/serving" in moved.reload.docker_run


def test_status_refresh_returns_and_shows_curl_that_runs_as_shown(
    dash: Dashboard, rollout_server: Any
) -> None:
    call = dash.refresh()
    assert isinstance(call, StatusCall) and dash.status.last_call == call
    assert rollout_server.rest_url + "/v1/models/digits" in call.curl
    assert html.escape(call.curl) in dash.status.by_hand.value
    assert run_curl(call.curl) == json.loads(call.json)

    dash.status.refresh_button.click()  # the button shows the same, read in the background
    wait_until(
        lambda: dash.status.last_call is not None and dash.status.last_call is not call,
        what="the button's status read",
    )


def test_a_twin_of_the_handle_returns_its_reload(rollout_server: Any) -> None:
    sent = rollout_server.set_version_policy([1, 2])
    assert isinstance(sent, ConfigReload)
    assert sent_configs(sent)[0].version_policy == Specific((1, 2))
    assert "tensorflow/serving" in str(sent) and "HandleReloadConfigRequest" in str(sent)
