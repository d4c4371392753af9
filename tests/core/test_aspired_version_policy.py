from tfserve_nb.core.aspired_version_policy import (
    Action,
    AvailabilityPreservingPolicy,
    HarnessState,
    ResourcePreservingPolicy,
    ServableAction,
    VersionSnapshot,
)
from tfserve_nb.core.servable_id import ServableId

READY, NEW, LOADING = HarnessState.READY, HarnessState.NEW, HarnessState.LOADING


def snap(version: int, state: HarnessState, aspired: bool) -> VersionSnapshot:
    return VersionSnapshot(ServableId("m", version), state, aspired)


def test_availability_preserving_loads_new_before_unloading_old():
    policy = AvailabilityPreservingPolicy()
    # v1 serving but no longer aspired, v2 new: load v2 first, keep v1.
    assert policy.next_action([snap(1, READY, False), snap(2, NEW, True)]) == ServableAction(
        Action.LOAD, ServableId("m", 2)
    )
    # v2 still loading: nothing to do, v1 keeps serving.
    assert policy.next_action([snap(1, READY, False), snap(2, LOADING, True)]) is None
    # v2 ready: now unload v1.
    assert policy.next_action([snap(1, READY, False), snap(2, READY, True)]) == ServableAction(
        Action.UNLOAD, ServableId("m", 1)
    )


def test_availability_preserving_unloads_when_nothing_is_aspired():
    policy = AvailabilityPreservingPolicy()
    assert policy.next_action([snap(1, READY, False)]).action is Action.UNLOAD


def test_availability_preserving_loads_highest_new_first():
    policy = AvailabilityPreservingPolicy()
    action = policy.next_action([snap(1, NEW, True), snap(3, NEW, True), snap(2, NEW, True)])
    assert action == ServableAction(Action.LOAD, ServableId("m", 3))


def test_resource_preserving_unloads_first():
    policy = ResourcePreservingPolicy()
    assert policy.next_action([snap(1, READY, False), snap(2, NEW, True)]) == ServableAction(
        Action.UNLOAD, ServableId("m", 1)
    )
    assert policy.next_action([snap(1, HarnessState.UNLOADING, False), snap(2, NEW, True)]) is None
