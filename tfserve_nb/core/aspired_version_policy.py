"""In which order the manager loads and unloads versions of one stream.

A policy looks at a snapshot of every version the manager holds for a stream and returns the
single next action, or ``None``. The manager asks again after each action completes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .servable_id import ServableId


class HarnessState(enum.Enum):
    """Where a version is inside the manager (a simplified ``LoaderHarness::State``)."""

    NEW = "new"
    LOADING = "loading"
    READY = "ready"
    UNLOADING = "unloading"
    DISABLED = "disabled"
    ERROR = "error"


class Action(enum.Enum):
    LOAD = "load"
    UNLOAD = "unload"


@dataclass(frozen=True)
class VersionSnapshot:
    id: ServableId
    state: HarnessState
    is_aspired: bool


@dataclass(frozen=True)
class ServableAction:
    action: Action
    id: ServableId


def _highest_new_aspired(versions: Sequence[VersionSnapshot]) -> ServableId | None:
    new = [v.id for v in versions if v.is_aspired and v.state is HarnessState.NEW]
    return max(new, key=lambda i: i.version) if new else None


class AvailabilityPreservingPolicy:
    """Never leave a stream with nothing serving if avoidable: load the new version first, and
    unload an unaspired one only once an aspired version is READY (or when nothing is aspired,
    or more than one unaspired version is READY). This is what ``tensorflow_model_server`` uses.
    """

    def next_action(self, versions: Sequence[VersionSnapshot]) -> ServableAction | None:
        has_aspired = any(v.is_aspired for v in versions)
        has_aspired_ready = any(v.is_aspired and v.state is HarnessState.READY for v in versions)
        unaspired_ready = [
            v for v in versions if not v.is_aspired and v.state is HarnessState.READY
        ]
        if unaspired_ready and (not has_aspired or has_aspired_ready or len(unaspired_ready) > 1):
            return ServableAction(Action.UNLOAD, unaspired_ready[0].id)
        load = _highest_new_aspired(versions)
        return ServableAction(Action.LOAD, load) if load else None


class ResourcePreservingPolicy:
    """Keep at most the aspired versions in memory: unload unaspired versions first, then load
    the highest new aspired one (a brief outage during a switch)."""

    def next_action(self, versions: Sequence[VersionSnapshot]) -> ServableAction | None:
        for v in versions:
            if not v.is_aspired and v.state is HarnessState.READY:
                return ServableAction(Action.UNLOAD, v.id)
        if any(
            not v.is_aspired and v.state in (HarnessState.LOADING, HarnessState.UNLOADING)
            for v in versions
        ):
            return None
        load = _highest_new_aspired(versions)
        return ServableAction(Action.LOAD, load) if load else None


AspiredVersionPolicy = AvailabilityPreservingPolicy | ResourcePreservingPolicy
