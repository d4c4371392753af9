"""The dashboard driven headless: every control clicked, toggled or slid, and both the widgets'
state and the server's state checked (the server's through the protocol, independently of the
dashboard). A real embedded server answers; see ``conftest.py`` for the baseline each test starts
from."""

from __future__ import annotations

import contextlib
import html
import io
import json
import shlex
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.waiting import wait_until
from tfserve_nb.client import ServingClient
from tfserve_nb.core.version_policy import Latest, Specific
from tfserve_nb.errors import (
    InvalidArgumentError,
    ServerTimeoutError,
    ServingError,
    TrafficStoppedError,
)
from tfserve_nb.widgets import Dashboard, SwitchPanel, dashboard
from tfserve_nb.widgets._render import BAD, PALETTE

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def dash(rollout_server: Any, digits_data: Any) -> Any:
    """A dashboard on the reset server with 60 test digits, polling every 0.1 s."""
    board = dashboard(
        rollout_server, digits_data.x_test[:60], digits_data.y_test[:60], poll_interval=0.1
    )
    wait_until(lambda: board.predictions.shown_versions == (1,), what="v1 predictions")
    yield board
    board.close()


def served(server: Any) -> list[int]:
    """Versions the server reports AVAILABLE, ascending (asked directly, not via the widget)."""
    return sorted(s.version for s in server.status() if s.state == "AVAILABLE")


def click_and_wait(switch: SwitchPanel, button: Any) -> Any:
    """Click ``button`` of ``switch`` and wait for the background action to finish."""
    button.click()
    assert switch.busy, "a click runs in the background and marks the panel busy"
    wait_until(lambda: not switch.busy, timeout=120, what="the switch to finish")
    return switch.outcome


def choose_versions(switch: SwitchPanel, versions: set[int]) -> None:
    for version, toggle in switch.version_buttons.items():
        toggle.value = version in versions


# ------------------------------------------------------------------ status


def test_status_panel_shows_backend_addresses_and_live_states(
    dash: Dashboard, rollout_server: Any
) -> None:
    summary = dash.status.summary.value
    assert "embedded" in summary
    assert rollout_server.grpc_address in summary and rollout_server.rest_url in summary
    assert rollout_server.reason and rollout_server.reason in summary  # why this backend
    assert "specific { versions: 1 }" in summary
    table = dash.status.versions_table.value
    assert "AVAILABLE" in table
    assert "on disk · not asked for by the policy" in table  # version 2
    assert dash.monitor.known_versions == (1, 2)
    assert dash.monitor.served == (1,)
    assert "live · polling every 0.1 s" in dash.status.footer.value


def test_versions_table_follows_a_new_export_without_refresh(
    rollout_server_module: Any, tmp_path: Path, digits_models: Any
) -> None:
    from tfserve_nb import serve

    base = digits_models.make_base_path(tmp_path, versions=(1,))
    with serve(base, backend="embedded") as server:
        board = dashboard(server, poll_interval=0.1)
        try:
            wait_until(lambda: board.monitor.served == (1,), what="v1 served")
            digits_models.add_version(base, 2)  # latest policy: the server moves to v2 itself
            wait_until(lambda: board.monitor.served == (2,), what="v2 served, seen by polling")

            def states() -> dict[int, str]:
                return {s.version: s.state for s in board.monitor.statuses}

            # v1 may still be UNLOADING when v2 is served; the table must settle, still polled
            wait_until(lambda: states() == {2: "AVAILABLE", 1: "END"}, what="v1 ended, seen")
            assert board.status.versions_table.value.count("AVAILABLE") == 1
            assert "END" in board.status.versions_table.value
        finally:
            board.close()


def test_refresh_button_polls_now(dash: Dashboard, rollout_server: Any) -> None:
    dash.monitor.stop()
    assert "polling stopped" in dash.status.footer.value
    dash.status.refresh_button.click()
    wait_until(lambda: dash.monitor.polling, what="polling resumed")


# ------------------------------------------------------------------ switching


def test_pin_button_loads_the_selected_versions(dash: Dashboard, rollout_server: Any) -> None:
    assert [v for v, t in dash.switch.version_buttons.items() if t.value] == [1]
    choose_versions(dash.switch, {1, 2})
    outcome = click_and_wait(dash.switch, dash.switch.pin_button)

    assert outcome.ok, outcome
    assert outcome.message == "Now serving versions 1 and 2."
    assert served(rollout_server) == [1, 2]
    assert rollout_server.models["digits"].version_policy == Specific((1, 2))
    assert dash.monitor.served == (1, 2)
    assert dash.switch.selected_versions == (1, 2)
    assert "Now serving versions 1 and 2." in dash.switch.message.value
    wait_until(lambda: dash.predictions.shown_versions == (1, 2), what="v2 column")


def test_follow_latest_button_serves_the_newest_version(
    dash: Dashboard, rollout_server: Any
) -> None:
    outcome = click_and_wait(dash.switch, dash.switch.follow_button)

    assert outcome.ok, outcome
    assert served(rollout_server) == [2]
    assert rollout_server.models["digits"].version_policy == Latest(1)
    assert {s.version: s.state for s in rollout_server.status()} == {2: "AVAILABLE", 1: "END"}
    assert dash.monitor.served == (2,)
    assert "latest { num_versions: 1 }" in dash.status.summary.value


def test_move_label_to_an_unloaded_version_is_refused_and_explained(
    dash: Dashboard, rollout_server: Any
) -> None:
    picker = dash.switch.label_pickers["canary"]
    assert dict(picker.options)["v2 — not loaded"] == 2
    picker.value = 2
    outcome = click_and_wait(dash.switch, dash.switch.move_buttons["canary"])

    assert not outcome.ok
    assert "Version 2 is not loaded" in outcome.message
    assert "pin it together with the version(s) you serve now" in outcome.message
    assert outcome.upstream == (
        "[FAILED_PRECONDITION] Request to assign label to version 2 of model digits, "
        "which is not currently available for inference"
    )
    message = dash.switch.message.value
    assert "Version 2 is not loaded" in message and "the server said:" in message
    assert rollout_server.models["digits"].labels == {}
    with pytest.raises(ServingError, match="Unrecognized servable version label: canary"):
        rollout_server.predict(np.zeros((1, 64)), label="canary")


def test_move_buttons_point_labels_and_requests_follow(
    dash: Dashboard, rollout_server: Any
) -> None:
    assert dash.pin([1, 2]).ok
    for label, version in (("stable", 1), ("canary", 2)):
        dash.switch.label_pickers[label].value = version
        outcome = click_and_wait(dash.switch, dash.switch.move_buttons[label])
        assert outcome.ok, outcome

    assert rollout_server.models["digits"].labels == {"stable": 1, "canary": 2}
    x = np.zeros((1, 64), np.float32)
    assert rollout_server.predict_detailed(x, label="stable").version == 1
    assert rollout_server.predict_detailed(x, label="canary").version == 2
    assert dash.monitor.labels == {"stable": 1, "canary": 2}
    assert "canary" in dash.status.versions_table.value
    wait_until(
        lambda: "v2 " in dash.predictions.view.value and "canary" in dash.predictions.view.value,
        what="label pills on the prediction columns",
    )

    dash.switch.label_pickers["canary"].value = -1  # "(remove)"
    assert click_and_wait(dash.switch, dash.switch.move_buttons["canary"]).ok
    assert rollout_server.models["digits"].labels == {"stable": 1}


def test_python_twins_promote_and_roll_back(dash: Dashboard, rollout_server: Any) -> None:
    assert not dash.move_label("canary", 2).ok
    assert dash.pin([1, 2]).ok
    assert dash.move_label("stable", 1).ok and dash.move_label("canary", 2).ok
    assert dash.move_label("stable", 2).ok  # promote
    assert rollout_server.models["digits"].labels == {"stable": 2, "canary": 2}
    assert dash.move_label("stable", 1).ok  # roll back
    assert dash.switch.label_pickers["stable"].value == 1
    assert dash.move_label("canary", None).ok
    assert rollout_server.models["digits"].labels == {"stable": 1}


def test_pin_does_not_strand_a_label(dash: Dashboard, rollout_server: Any) -> None:
    assert dash.pin([1, 2]).ok and dash.move_label("stable", 1).ok
    outcome = dash.pin(2)
    assert not outcome.ok
    assert "Label stable → 1 points at a version this change would unload" in outcome.message
    assert rollout_server.models["digits"].version_policy == Specific((1, 2))
    assert served(rollout_server) == [1, 2]
    assert not dash.follow_latest().ok  # would unload v1 too


def test_pin_of_a_version_not_on_disk_is_refused(dash: Dashboard, rollout_server: Any) -> None:
    outcome = dash.pin([1, 7])
    assert not outcome.ok and "Version 7 is not on disk" in outcome.message
    assert rollout_server.models["digits"].version_policy == Specific((1,))


def test_buttons_are_disabled_while_busy(dash: Dashboard) -> None:
    release = threading.Event()
    dash.monitor.runner.submit(release.wait, lambda _: None)  # occupy the action thread
    choose_versions(dash.switch, {1, 2})
    dash.switch.pin_button.click()
    assert dash.switch.busy and dash.switch.follow_button.disabled
    assert "working" in dash.switch.message.value
    release.set()
    wait_until(lambda: not dash.switch.busy, timeout=120, what="the pin to finish")
    assert not dash.switch.follow_button.disabled


# ------------------------------------------------------------------ predictions


def test_predictions_side_by_side_with_accuracy_and_disagreements(
    dash: Dashboard, rollout_server: Any, digits_data: Any
) -> None:
    assert dash.pin([1, 2]).ok
    wait_until(lambda: dash.predictions.shown_versions == (1, 2), what="both columns")
    x, y = digits_data.x_test[:60], digits_data.y_test[:60]
    answers = {v: rollout_server.predict(x, version=v).argmax(axis=1) for v in (1, 2)}
    assert dash.predictions.accuracy == pytest.approx(
        {v: float((a == y).mean()) for v, a in answers.items()}
    )
    assert dash.predictions.disagreements == int((answers[1] != answers[2]).sum()) > 0
    view = dash.predictions.view.value
    assert view.count("data:image/png;base64,") == 8  # max_rows images, 8x8 digits as PNG
    assert f"<b>{dash.predictions.disagreements}</b> where versions disagree" in view
    assert "rgba(212, 167, 44, 0.22)" in view  # disagreement rows highlighted
    assert f"{dash.predictions.accuracy[2]:.1%}" in view


def test_tabular_examples_are_a_table(half_plus_two_base: Path) -> None:
    from tfserve_nb import serve

    with serve(half_plus_two_base, backend="embedded") as server:
        board = dashboard(server, [[1.0], [2.0]], [2.5, 3.0], poll_interval=0.1)
        try:
            wait_until(lambda: board.predictions.shown_versions == (1,), what="predictions")
            view = board.predictions.view.value
            assert "data:image" not in view
            assert "<b>2.5</b>" in view and "MAE 0" in view  # y = 0.5 x + 2
        finally:
            board.close()


def test_versions_with_other_input_names_are_compared(tmp_path: Path, sequential_models: Any):
    """``keras.Sequential`` versions built without ``keras.Input`` name their input differently
    (``keras_tensor_<n>``); each column is asked with its own version's signature."""
    from tfserve_nb import serve

    base = sequential_models.make_base_path(tmp_path, versions=(1, 2))
    with serve(base, backend="embedded", version_policy=[1, 2]) as server:
        board = dashboard(server, [[1.0, 2.0, 3.0]], [7.0], poll_interval=0.1)
        try:
            wait_until(lambda: board.predictions.shown_versions == (1, 2), what="both columns")
            assert board.predictions.errors == {}
            view = board.predictions.view.value  # v1 answers sum + 1 = 7, v2 sum + 2 = 8
            assert "<b>MAE 0</b>" in view and "<b>MAE 1</b>" in view
        finally:
            board.close()


# ------------------------------------------------------------------ traffic


def test_traffic_toggle_slider_and_target_through_a_promotion(
    dash: Dashboard, rollout_server: Any
) -> None:
    assert dash.pin([1, 2]).ok and dash.move_label("stable", 1).ok
    traffic = dash.traffic
    traffic.rate_slider.value = 80
    traffic.picker.value = "label:stable"
    assert (traffic.rate, traffic.target) == (80, "label:stable")
    traffic.toggle.value = True
    assert traffic.sending and traffic.toggle.description == "Stop traffic"
    wait_until(lambda: traffic.answered.get(1, 0) >= 10, what="v1 answering stable")

    assert dash.move_label("stable", 2).ok
    wait_until(lambda: traffic.answered.get(2, 0) >= 10, what="v2 answering after the promotion")
    traffic.toggle.value = False
    assert not traffic.sending and traffic.toggle.description == "Send traffic"

    assert traffic.failed == 0, traffic.last_error
    assert traffic.succeeded == sum(traffic.answered.values())
    chart = traffic.chart.value
    assert chart.count("<svg") == 2 and "p95" in chart and ">v2</text>" in chart
    assert PALETTE[0] in chart and PALETTE[1] in chart and BAD not in chart  # v1 then v2, no red
    assert "errors: <b>0</b>" in traffic.counters.value


def test_traffic_twins_count_errors(dash: Dashboard) -> None:
    dash.start_traffic(rate=50, target="nolabel")
    wait_until(lambda: dash.traffic.failed >= 3, what="failed requests counted")
    dash.stop_traffic()
    assert dash.traffic.answered == {}
    assert "Unrecognized servable version label: nolabel" in dash.traffic.last_error
    assert "errors: <b>" in dash.traffic.counters.value


# ------------------------------------------------------------------ teaching


def test_teaching_snippets_send_the_same_request(
    dash: Dashboard, rollout_server: Any, digits_data: Any
) -> None:
    assert dash.pin([1, 2]).ok and dash.move_label("canary", 2).ok
    dash.teaching.picker.value = "label:canary"
    assert dash.traffic.target == "label:canary"  # the two pickers are linked
    expected = rollout_server.predict(digits_data.x_test[:1], label="canary")

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(dash.teaching.python, {})
    assert out.getvalue().startswith("answered by version 2\noutput_0 [[")

    curl = dash.teaching.curl
    assert "/v1/models/digits/labels/canary:predict" in curl
    if shutil.which("curl"):
        reply = subprocess.run(["bash", "-c", curl], capture_output=True, check=True, text=True)
        answer = json.loads(reply.stdout)
    else:
        words = shlex.split(curl.replace("\\\n", " "))
        request = urllib.request.Request(words[4], data=words[-1].encode(), method="POST")
        with urllib.request.urlopen(request) as response:
            answer = json.loads(response.read())
    np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-4)

    dash.teaching.picker.value = "version:1"
    assert "/versions/1:predict" in dash.teaching.curl
    assert "request.model_spec.version.value = 1" in dash.teaching.python


# ------------------------------------------------------------------ lifecycle


def test_waiting_for_answers_instead_of_sleeping(dash: Dashboard) -> None:
    with pytest.raises(InvalidArgumentError, match="call start_traffic"):
        dash.wait_for_answers(version=1, count=1)
    dash.start_traffic(rate=100, target=1)
    try:
        first = dash.wait_for_answers(version=1, count=5)
        assert first >= 5
        assert dash.wait_for_answers(version=1, count=5) >= first + 5
        with pytest.raises(ServerTimeoutError, match=r"version 2 answered 0 of the 1 requests"):
            dash.wait_for_answers(version=2, count=1, timeout=0.3)
    finally:
        dash.stop_traffic()


def test_a_wait_for_answers_ends_when_the_traffic_stops(dash: Dashboard) -> None:
    dash.start_traffic(rate=100, target=1)
    stopper = threading.Timer(0.2, dash.stop_traffic)
    stopper.start()
    try:
        with pytest.raises(TrafficStoppedError, match=r"version 2 answered 0 .* traffic stopped"):
            dash.wait_for_answers(version=2, count=1, timeout=30)
    finally:
        stopper.cancel()
        dash.stop_traffic()


def test_traffic_split_sends_a_canary_share(dash: Dashboard) -> None:
    assert dash.pin([1, 2]).ok
    assert dash.move_label("stable", 1).ok and dash.move_label("canary", 2).ok
    dash.start_traffic(rate=100, split={"stable": 80, "canary": 20})
    try:
        assert dash.traffic.picker.disabled  # the split decides, not the dropdown
        canary = dash.wait_for_answers(version=2, count=10)
        stable = dash.wait_for_answers(version=1, count=0)  # v1's count at about that moment
        assert abs(stable - 4 * canary) <= 5, (stable, canary)  # 80/20, give or take one turn
        wait_until(lambda: "split: label stable 80 %" in dash.traffic.counters.value, what="shown")
        dash.start_traffic(target=1)  # a target ends the split
        assert dash.traffic.split is None and not dash.traffic.picker.disabled
        assert dash.traffic.target == "version:1"
    finally:
        dash.stop_traffic()
    assert dash.traffic.failed == 0


def test_a_version_that_fails_to_load_shows_its_error(half_plus_two_base: Path) -> None:
    """A broken export in another cell: the table shows its END state and the server's error,
    live, while the previous version keeps serving."""
    from tfserve_nb import serve

    server = serve(
        half_plus_two_base,
        backend="embedded",
        extra_args=["--file_system_poll_wait_seconds=1", "--max_num_load_retries=0"],
    )
    board = dashboard(server, poll_interval=0.1)
    try:
        wait_until(lambda: board.monitor.served == (1,), what="v1 served")
        staging = half_plus_two_base / ".tmp-broken"
        staging.mkdir()
        (staging / "saved_model.pb").write_bytes(b"not a protobuf")
        staging.rename(half_plus_two_base / "2")
        failed = wait_until(
            lambda: next((s for s in server.status() if s.version == 2 and s.state == "END"), None),
            what="v2 END on the server",
        )
        assert failed.error_message
        table = board.status.versions_table
        shown = f"{failed.error_code}: {failed.error_message}"
        wait_until(lambda: shown in html.unescape(table.value), what="the load error shown")
        assert server.predict_detailed([[1.0]]).version == 1
    finally:
        board.close()
        server.stop()


def test_server_stop_stops_polling_and_traffic(half_plus_two_base: Path) -> None:
    from tfserve_nb import serve

    server = serve(half_plus_two_base, backend="embedded")
    board = dashboard(server, poll_interval=0.1)
    try:
        wait_until(lambda: board.monitor.input_spec is not None, what="the signature")
        board.start_traffic(rate=20)
        wait_until(lambda: board.traffic.succeeded > 0, what="traffic answered")
        server.stop()
        wait_until(lambda: not board.monitor.alive, what="the monitor to notice the stop")
        assert not board.monitor.polling and not board.traffic.sending
        assert "the server has stopped" in board.status.footer.value
    finally:
        board.close()
        server.stop()


def test_close_ends_every_background_thread(dash: Dashboard) -> None:
    dash.start_traffic(rate=20)
    wait_until(lambda: dash.traffic.succeeded > 0, what="traffic answered")
    dash.close()
    assert not dash.monitor.polling and not dash.traffic.sending

    def ours() -> list[str]:
        return [
            t.name
            for t in threading.enumerate()
            if t.name.startswith(("tfserve-nb-status", "tfserve-nb-traffic"))
        ]

    wait_until(lambda: not ours(), timeout=10, what="dashboard threads to end")


def test_a_new_dashboard_for_the_same_server_closes_the_last(rollout_server: Any) -> None:
    """Re-running a notebook cell must not leave the earlier dashboard polling."""
    first = dashboard(rollout_server, poll_interval=0.1)
    second = dashboard(rollout_server, poll_interval=0.1)
    try:
        assert not first.monitor.polling and not first._parts
        wait_until(lambda: second.monitor.served == (1,), what="the new dashboard polling")
        assert second.monitor.polling
    finally:
        second.close()
    assert not second.monitor.polling


def test_bare_client_is_read_only_unless_given_configs(
    rollout_server: Any, rollout_base: Path
) -> None:
    client = ServingClient(
        rollout_server.grpc_address, rollout_server.rest_url, model_name="digits"
    )
    board = dashboard(client, poll_interval=0.1)
    try:
        assert board.switch.pin_button.disabled and board.switch.follow_button.disabled
        assert "Read-only" in board.switch.message.value
        wait_until(lambda: board.monitor.served == (1,), what="status through the client")
        assert "remote" in board.status.summary.value
        assert not board.pin([1, 2]).ok
    finally:
        board.close()

    board = Dashboard(client, configs=list(rollout_server.models.values()), poll_interval=0.1)
    try:
        assert not board.switch.pin_button.disabled
        assert board.pin([1, 2]).ok
        assert served(rollout_server) == [1, 2]
    finally:
        board.close()
        client.close()
