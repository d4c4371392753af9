"""The panels as views over a fake target: what they send, refuse and show, without a server.

``FakeTarget`` (``tests/helpers/fake_target.py``) plays the server behind the panels' ``Target``
interface; the monitor polls it only when a test says so (``start=False``), so every state is
exact. The same panels against a real embedded server are in ``test_dashboard.py``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.fake_target import FakeTarget
from tests.helpers.waiting import wait_until
from tfserve_nb.core.version_policy import Latest, Specific
from tfserve_nb.errors import InvalidArgumentError
from tfserve_nb.widgets import (
    PredictionPanel,
    ServerMonitor,
    StatusPanel,
    SwitchPanel,
    TrafficPanel,
)
from tfserve_nb.widgets._render import BAD, PALETTE

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fake() -> FakeTarget:
    """Versions 1 and 2 on disk, version 1 pinned, no labels."""
    return FakeTarget()


@pytest.fixture
def monitor(fake: FakeTarget) -> Iterator[ServerMonitor]:
    """A monitor of ``fake`` that has polled once and polls again only when asked."""
    monitor = ServerMonitor(fake, start=False)
    poll(monitor)
    yield monitor
    monitor.close()


@pytest.fixture
def switch(monitor: ServerMonitor) -> Iterator[SwitchPanel]:
    panel = SwitchPanel(monitor)
    yield panel
    panel.close()


def poll(monitor: ServerMonitor) -> None:
    monitor.apply(monitor.fetch())


def test_a_target_is_used_as_it_is(fake: FakeTarget) -> None:
    monitor = ServerMonitor(fake, start=False)
    assert monitor.target is fake and not monitor.polling
    with pytest.raises(InvalidArgumentError, match="not a Target"):
        ServerMonitor(fake, model_name="digits", start=False)
    monitor.close()


# ------------------------------------------------------------------ Switch


def test_pin_refused_because_a_label_would_be_stranded(
    fake: FakeTarget, monitor: ServerMonitor, switch: SwitchPanel
) -> None:
    assert switch.pin([1, 2]).ok and switch.move_label("stable", 1).ok
    sent = list(fake.calls)

    outcome = switch.pin(2)
    assert not outcome.ok and outcome.upstream == ""
    assert outcome.message == (
        "Label stable → 1 points at a version this change would unload; the server would "
        "accept it and then answer NOT_FOUND for the label. Move the label to a version that "
        "stays (or remove it) first."
    )
    assert switch.outcome is outcome
    assert "points at a version this change would unload" in switch.message.value
    assert not switch.follow_latest().ok  # latest is version 2: would unload version 1 too
    assert fake.calls == sent  # nothing was sent
    assert fake.config().version_policy == Specific((1, 2))  # type: ignore[union-attr]


def test_pin_and_follow_latest_change_the_policy_and_the_view(
    fake: FakeTarget, monitor: ServerMonitor, switch: SwitchPanel
) -> None:
    assert switch.selected_versions == (1,)
    switch.version_buttons[2].value = True
    outcome = switch.pin(switch.selected_versions)
    assert outcome.ok and outcome.message == "Now serving versions 1 and 2."
    assert fake.calls == [("set_policy", Specific((1, 2)))]
    assert monitor.served == (1, 2) and switch.selected_versions == (1, 2)
    assert "✔ pin versions 1 and 2" in switch.message.value

    outcome = switch.follow_latest()
    assert outcome.ok and outcome.message == "Now serving version 2."
    assert fake.calls[-1] == ("set_policy", Latest(1))
    assert monitor.served == (2,) and monitor.policy == "latest { num_versions: 1 }"


def test_pin_of_a_version_not_on_disk_is_refused(fake: FakeTarget, switch: SwitchPanel) -> None:
    outcome = switch.pin([1, 7])
    assert not outcome.ok
    assert outcome.message == (
        "Version 7 is not on disk under the model's base path; export it first."
    )
    assert not switch.pin([]).ok and fake.calls == []


def test_label_moved_by_its_button_and_removed(
    fake: FakeTarget, monitor: ServerMonitor, switch: SwitchPanel
) -> None:
    assert switch.pin([1, 2]).ok
    picker = switch.label_pickers["canary"]
    assert dict(picker.options) == {"(remove)": -1, "v2": 2, "v1": 1}
    picker.value = 2
    switch.move_buttons["canary"].click()  # runs in the panel's action thread
    wait_until(lambda: not switch.busy, what="the move to finish")

    assert switch.outcome.ok and switch.outcome.action == "move canary → 2"
    assert switch.outcome.message == "Requests for label canary now go to version 2."
    assert fake.calls[-1] == ("set_labels", {"canary": 2})
    assert monitor.labels == {"canary": 2} and picker.value == 2

    assert switch.move_label("canary", None).ok
    assert fake.calls[-1] == ("set_labels", {})
    assert picker.value == -1


def test_label_move_to_a_version_not_loaded_shows_the_servers_refusal_explained(
    fake: FakeTarget, switch: SwitchPanel
) -> None:
    outcome = switch.move_label("canary", 2)
    assert not outcome.ok
    assert outcome.message.startswith("Version 2 is not loaded, and TF Serving lets a label")
    assert outcome.upstream == (
        "[FAILED_PRECONDITION] Request to assign label to version 2 of model digits, "
        "which is not currently available for inference"
    )
    assert "the server said:" in switch.message.value
    assert fake.config().labels == {}  # type: ignore[union-attr]


def test_label_move_to_a_version_being_unloaded_is_refused(
    fake: FakeTarget, monitor: ServerMonitor, switch: SwitchPanel
) -> None:
    assert switch.pin([1, 2]).ok
    assert switch.pin(2, wait=False).ok  # version 1 is still AVAILABLE, on its way out
    outcome = switch.move_label("stable", 1)
    assert not outcome.ok
    assert outcome.message.startswith(
        "Label stable → 1 points at a version the version policy specific { versions: 2 } unloads"
    )
    assert fake.calls[-1] == ("set_policy", Specific((2,)))  # the move was not sent


def test_read_only_target_disables_the_controls(fake: FakeTarget) -> None:
    fake.can_switch = False
    monitor = ServerMonitor(fake, start=False)
    switch = SwitchPanel(monitor)
    try:
        assert switch.follow_button.disabled and switch.pin_button.disabled
        assert "Read-only" in switch.message.value
        outcome = switch.pin(1)
        assert not outcome.ok and outcome.message.startswith("Read-only")
        assert fake.calls == []
    finally:
        switch.close()
        monitor.close()


# ------------------------------------------------------------------ Traffic


@pytest.fixture
def traffic(monitor: ServerMonitor) -> Iterator[TrafficPanel]:
    panel = TrafficPanel(monitor, example=np.zeros(4, np.float32))
    yield panel
    panel.close()


def test_traffic_counts_are_shown_per_version(
    fake: FakeTarget, monitor: ServerMonitor, switch: SwitchPanel, traffic: TrafficPanel
) -> None:
    assert switch.pin([1, 2]).ok
    assert switch.move_label("stable", 1).ok and switch.move_label("canary", 2).ok
    traffic.start_traffic(rate=200, split={"stable": 3, "canary": 1})
    assert traffic.sending and traffic.picker.disabled
    traffic.wait_for_answers(2, 5)
    traffic.stop_traffic()

    assert not traffic.sending and traffic.toggle.description == "Send traffic"
    assert traffic.answered[1] >= 15 and traffic.answered[2] >= 5
    assert traffic.succeeded == sum(traffic.answered.values()) and traffic.failed == 0
    counters = traffic.counters.value
    assert f"v1: <b>{traffic.answered[1]}</b>" in counters
    assert f"v2: <b>{traffic.answered[2]}</b>" in counters
    assert "split: label stable 75 % · label canary 25 %" in counters
    chart = traffic.chart.value  # v1 and v2 in their colours, errors (red) nowhere
    assert chart.count("<svg") == 2 and PALETTE[0] in chart and PALETTE[1] in chart
    assert BAD not in chart and ">v1</text>" in chart and ">v2</text>" in chart


def test_traffic_charts_are_saved_as_svg_and_png(traffic: TrafficPanel, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"no traffic charted yet"):
        traffic.save_chart(tmp_path / "chart.svg")
    traffic.start_traffic(rate=100)
    traffic.wait_for_answers(1, 5)
    traffic.stop_traffic()
    with pytest.raises(ValueError, match=r"'chart\.pdf'.* must end in \.svg or \.png"):
        traffic.save_chart(tmp_path / "chart.pdf")

    svg = traffic.save_chart(str(tmp_path / "chart.svg"))
    assert svg == tmp_path / "chart.svg"
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and PALETTE[0] in svg.read_text()

    png = traffic.save_chart(tmp_path / "chart.PNG")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert (pixels == [int(PALETTE[0][i : i + 2], 16) for i in (1, 3, 5)]).all(axis=1).any()


def test_traffic_errors_are_counted_and_the_last_one_shown(traffic: TrafficPanel) -> None:
    traffic.start_traffic(rate=100, target="missing")
    wait_until(lambda: traffic.failed >= 3, what="three failed requests")
    traffic.stop_traffic()
    assert traffic.last_error == "[INVALID_ARGUMENT] Unrecognized servable version label: missing"
    assert f"errors: <b>{traffic.failed}</b>" in traffic.counters.value
    assert "last error: [INVALID_ARGUMENT] Unrecognized" in traffic.counters.value


def test_traffic_stops_when_the_server_does(
    fake: FakeTarget, monitor: ServerMonitor, traffic: TrafficPanel
) -> None:
    traffic.start_traffic(rate=50)
    traffic.wait_for_answers(1, 2)
    fake.stop()
    poll(monitor)
    assert not monitor.alive and not traffic.sending


# ------------------------------------------------------------------ Status and Predictions


def test_status_panel_shows_policy_states_and_labels(
    fake: FakeTarget, monitor: ServerMonitor, switch: SwitchPanel
) -> None:
    status = StatusPanel(monitor)
    try:
        assert "fake" in status.summary.value and "specific { versions: 1 }" in status.summary.value
        table = status.versions_table.value
        assert "AVAILABLE" in table and "on disk · not asked for by the policy" in table
        assert switch.pin([1, 2]).ok and switch.move_label("stable", 2).ok
        assert "not asked for" not in status.versions_table.value
        assert "stable" in status.versions_table.value
        assert "polling stopped" in status.footer.value
    finally:
        status.close()


def test_predictions_panel_compares_the_served_versions(
    fake: FakeTarget, monitor: ServerMonitor, switch: SwitchPanel
) -> None:
    predictions = PredictionPanel(monitor, np.zeros((3, 4), np.float32), image_shape=())
    try:
        wait_until(lambda: predictions.shown_versions == (1,), what="version 1's answers")
        assert switch.pin([1, 2]).ok
        wait_until(lambda: predictions.shown_versions == (1, 2), what="both versions' answers")
        assert predictions.disagreements == 3 and predictions.errors == {}
    finally:
        predictions.close()
