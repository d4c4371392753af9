"""The manager with fake loaders: states, availability preservation, retries, quiescing."""

from __future__ import annotations

import threading

import pytest

from tests.helpers.core_fakes import FakeLoader
from tfserve_nb.core.aspired_versions_manager import AspiredVersionsManager
from tfserve_nb.core.servable_id import ServableData, ServableId
from tfserve_nb.core.servable_state import ManagerState
from tfserve_nb.core.servable_state_monitor import ServableStateMonitor
from tfserve_nb.core.status import Code, ServingStatusError

WAIT = 30


@pytest.fixture
def monitor():
    return ServableStateMonitor()


@pytest.fixture
def manager(monitor):
    m = AspiredVersionsManager(monitor, max_num_load_retries=0, load_retry_interval=0.01)
    yield m
    m.stop()


def aspire(manager, name, loaders):
    manager.set_aspired_versions(name, [ServableData(loader.id, loader) for loader in loaders])


def loader(version, **kw):
    return FakeLoader(ServableId("m", version), f"/m/{version}", **kw)


def wait_state(monitor, version, state, name="m"):
    assert monitor.wait_until(
        lambda: (s := monitor.versions(name).get(version)) is not None and s.state is state, WAIT
    ), monitor.versions(name)


def test_load_serve_and_record_states(manager, monitor):
    seen = []
    monitor.add_listener(lambda s: seen.append((s.id.version, s.state)))
    aspire(manager, "m", [loader(1)])
    wait_state(monitor, 1, ManagerState.AVAILABLE)
    assert seen == [(1, ManagerState.START), (1, ManagerState.LOADING), (1, ManagerState.AVAILABLE)]
    with manager.servable_handle("m") as (version, servable):
        assert version == 1 and servable.scale == 1.0


def test_unknown_servable_messages(manager):
    with pytest.raises(ServingStatusError) as exc, manager.servable_handle("nope"):
        pass
    assert exc.value.code is Code.NOT_FOUND
    assert exc.value.message == "Servable not found for request: Latest(nope)"
    with pytest.raises(ServingStatusError) as exc, manager.servable_handle("nope", 3):
        pass
    assert exc.value.message == "Servable not found for request: Specific(nope, 3)"


def test_switch_keeps_old_version_serving_until_new_is_available(manager, monitor):
    aspire(manager, "m", [loader(1)])
    wait_state(monitor, 1, ManagerState.AVAILABLE)
    gate = threading.Event()
    v2 = loader(2, gate=gate)
    aspire(manager, "m", [v2])  # v1 no longer aspired, v2 held in LOADING
    wait_state(monitor, 2, ManagerState.LOADING)
    with manager.servable_handle("m") as (version, _):
        assert version == 1  # still served: availability preserved
    assert monitor.versions("m")[1].state is ManagerState.AVAILABLE
    gate.set()
    wait_state(monitor, 1, ManagerState.END)
    with manager.servable_handle("m") as (version, _):
        assert version == 2


def test_unload_waits_for_in_flight_requests(manager, monitor):
    first = loader(1)
    aspire(manager, "m", [first])
    wait_state(monitor, 1, ManagerState.AVAILABLE)
    with manager.servable_handle("m") as (_, servable):
        aspire(manager, "m", [])  # unaspire everything: v1 must go, but we hold it
        wait_state(monitor, 1, ManagerState.UNLOADING)
        assert first.unloads == 0 and servable.scale == 1.0
    wait_state(monitor, 1, ManagerState.END)
    assert first.unloads == 1


def test_failed_load_ends_with_error_and_is_not_retried_on_every_poll(manager, monitor):
    bad = loader(1, fail_times=99)
    aspire(manager, "m", [bad])
    wait_state(monitor, 1, ManagerState.END)
    state = monitor.versions("m")[1]
    assert state.code is Code.UNKNOWN and "injected failure 1" in state.message
    aspire(manager, "m", [loader(1)])  # the source re-emits the same version
    aspire(manager, "m", [loader(1)])
    assert bad.loads == 1


def test_retries_then_succeeds(monitor):
    manager = AspiredVersionsManager(monitor, max_num_load_retries=2, load_retry_interval=0.01)
    try:
        flaky = loader(1, fail_times=2)
        aspire(manager, "m", [flaky])
        wait_state(monitor, 1, ManagerState.AVAILABLE)
        assert flaky.loads == 3
    finally:
        manager.stop()


def test_failed_new_version_leaves_previous_serving(manager, monitor):
    aspire(manager, "m", [loader(1)])
    wait_state(monitor, 1, ManagerState.AVAILABLE)
    aspire(manager, "m", [loader(2, fail_times=99)])
    wait_state(monitor, 2, ManagerState.END)
    with manager.servable_handle("m") as (version, _):
        assert version == 1


def test_specific_version_handles(manager, monitor):
    aspire(manager, "m", [loader(1), loader(2)])
    wait_state(monitor, 1, ManagerState.AVAILABLE)
    wait_state(monitor, 2, ManagerState.AVAILABLE)
    assert manager.available_versions("m") == [2, 1]
    with manager.servable_handle("m", 1) as (version, servable):
        assert (version, servable.scale) == (1, 1.0)
