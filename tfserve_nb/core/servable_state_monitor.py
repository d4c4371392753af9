"""Remembers the latest state of every servable version the manager has seen.

``GetModelStatus`` answers from here: versions newest first, END entries kept, failed loads with
their error. Thread-safe: the manager notifies from its worker threads while request threads read
and wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .servable_state import ManagerState, ServableState

Listener = Callable[[ServableState], None]


class ServableStateMonitor:
    """Latest :class:`ServableState` per (name, version), with waiting and listeners."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._states: dict[str, dict[int, ServableState]] = {}
        self._seq: dict[str, dict[int, int]] = {}
        self._counter = 0
        self._listeners: list[Listener] = []

    def notify(self, state: ServableState) -> None:
        """Record ``state`` (replacing the version's previous one) and tell the listeners."""
        with self._cond:
            self._states.setdefault(state.id.name, {})[state.id.version] = state
            self._counter += 1
            self._seq.setdefault(state.id.name, {})[state.id.version] = self._counter
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            listener(state)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every future state, from the notifying thread."""
        with self._cond:
            self._listeners.append(listener)

    def versions(self, name: str) -> dict[int, ServableState]:
        """The known versions of stream ``name`` (empty if never seen)."""
        with self._cond:
            return dict(self._states.get(name, {}))

    def sequence(self) -> int:
        """A number that grows with every notification; pass it to :meth:`latest_settled_since`."""
        with self._cond:
            return self._counter

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``predicate()`` (evaluated under the monitor's lock after each change) holds
        or ``timeout`` seconds pass; returns whether it holds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wake_waiters(self) -> None:
        """Evaluate every waiting :meth:`wait_until` predicate again now, for a predicate that
        also reads something outside the monitor which just changed (a shutdown flag)."""
        with self._cond:
            self._cond.notify_all()

    def latest_settled_since(self, name: str, since: int) -> ServableState | None:
        """The state of the highest known version of ``name`` if it became AVAILABLE or END
        after sequence number ``since``, else ``None`` (``ServableRequest::Latest`` waiting).
        Call from inside :meth:`wait_until`'s predicate or on its own."""
        with self._cond:
            states = self._states.get(name)
            if not states:
                return None
            latest = max(states)
            state = states[latest]
            if self._seq[name][latest] <= since or state.state not in (
                ManagerState.AVAILABLE,
                ManagerState.END,
            ):
                return None
            return state
