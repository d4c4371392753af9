"""The manager: acts on aspired versions and hands out loaded servables.

Sources call :meth:`AspiredVersionsManager.set_aspired_versions` with the complete list of
versions each stream should have. A management thread compares that with what is loaded and asks
the :mod:`aspired version policy <.aspired_version_policy>` for the next action per stream; loads
and unloads run on a small pool of worker threads. Requests take a servable with
:meth:`servable_handle`; a version is unloaded only after its last handle is released, so no
request fails because of a version switch.

Thread-safety: every public method may be called from any thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .aspired_version_policy import (
    Action,
    AspiredVersionPolicy,
    AvailabilityPreservingPolicy,
    HarnessState,
    VersionSnapshot,
)
from .loader import Loader
from .servable_id import ServableData, ServableId
from .servable_state import ManagerState, ServableState
from .servable_state_monitor import ServableStateMonitor
from .status import Code, ServingStatusError, not_found

log = logging.getLogger(__name__)


@dataclass
class _Harness:
    """One version inside the manager (``LoaderHarness``)."""

    id: ServableId
    loader: Loader
    state: HarnessState = HarnessState.NEW
    is_aspired: bool = True
    in_flight: bool = False
    handles: int = 0
    error: ServingStatusError | None = None
    servable: Any = field(default=None, repr=False)


class AspiredVersionsManager:
    """Loads what sources aspire, unloads what they no longer do, and serves handles.

    ``max_num_load_retries`` further attempts follow a failed load, ``load_retry_interval``
    seconds apart (abandoned if the version stops being aspired); a version whose load failed
    for good stays failed (END with its error) until a source stops aspiring it.
    """

    def __init__(
        self,
        monitor: ServableStateMonitor,
        *,
        policy: AspiredVersionPolicy | None = None,
        num_load_threads: int = 2,
        max_num_load_retries: int = 5,
        load_retry_interval: float = 60.0,
    ) -> None:
        self._monitor = monitor
        self._policy = policy or AvailabilityPreservingPolicy()
        self._max_retries = max_num_load_retries
        self._retry_interval = load_retry_interval
        self._cond = threading.Condition()
        self._streams: dict[str, dict[int, _Harness]] = {}
        self._dirty = False
        self._stopped = False
        self._workers = ThreadPoolExecutor(num_load_threads, thread_name_prefix="servable-load")
        self._thread = threading.Thread(target=self._manage, name="manager", daemon=True)
        self._thread.start()

    # ---- source side -------------------------------------------------------------------------

    def set_aspired_versions(self, name: str, versions: Sequence[ServableData[Loader]]) -> None:
        """Make ``versions`` the complete aspired set of stream ``name``."""
        started = []
        with self._cond:
            stream = self._streams.setdefault(name, {})
            aspired = {v.id.version for v in versions}
            for harness in stream.values():
                harness.is_aspired = harness.id.version in aspired
            for v in versions:
                if v.id.version not in stream:
                    stream[v.id.version] = _Harness(v.id, v.data)
                    started.append(v.id)
            self._drop_finished(name)
            self._dirty = True
            self._cond.notify_all()
        for servable_id in started:
            self._monitor.notify(ServableState(servable_id, ManagerState.START))

    # ---- request side ------------------------------------------------------------------------

    @contextlib.contextmanager
    def servable_handle(self, name: str, version: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(version, servable)`` for the given version, or the highest AVAILABLE one.

        Raises NOT_FOUND ``Servable not found for request: Latest(name)`` /
        ``Specific(name, v)`` when no such version is available.
        """
        with self._cond:
            harness = self._find_ready(name, version)
            harness.handles += 1
        try:
            yield harness.id.version, harness.servable
        finally:
            with self._cond:
                harness.handles -= 1
                # Only an unload waits for the last handle; waking the manager thread on
                # every request would cost each one a thread switch.
                if harness.handles == 0 and harness.state is HarnessState.UNLOADING:
                    self._cond.notify_all()

    def available_versions(self, name: str) -> list[int]:
        """AVAILABLE versions of ``name``, highest first."""
        with self._cond:
            stream = self._streams.get(name, {})
            return sorted(
                (v for v, h in stream.items() if h.state is HarnessState.READY), reverse=True
            )

    def stop(self) -> None:
        """Stop managing and unload every loaded version (waiting for in-flight requests)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()
        self._workers.shutdown(wait=True)
        for stream in list(self._streams.values()):
            for harness in list(stream.values()):
                if harness.state is HarnessState.READY:
                    self._unload(harness)

    # ---- internals ---------------------------------------------------------------------------

    def _find_ready(self, name: str, version: int | None) -> _Harness:
        stream = self._streams.get(name, {})
        if version is None:
            ready = [h for h in stream.values() if h.state is HarnessState.READY]
            if ready:
                return max(ready, key=lambda h: h.id.version)
            raise not_found(f"Servable not found for request: Latest({name})")
        harness = stream.get(version)
        if harness is None or harness.state is not HarnessState.READY:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return harness

    def _drop_finished(self, name: str) -> None:
        """Forget harnesses that are done and no longer aspired (caller holds the lock)."""
        stream = self._streams[name]
        for version, harness in list(stream.items()):
            if (
                not harness.is_aspired
                and not harness.in_flight
                and harness.state
                in (
                    HarnessState.DISABLED,
                    HarnessState.ERROR,
                    HarnessState.NEW,
                )
            ):
                del stream[version]

    def _manage(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                self._dirty = False
                for name, stream in self._streams.items():
                    self._drop_finished(name)
                    snapshot = [
                        VersionSnapshot(
                            h.id,
                            HarnessState.LOADING
                            if h.in_flight and h.state is HarnessState.NEW
                            else h.state,
                            h.is_aspired,
                        )
                        for h in sorted(stream.values(), key=lambda h: h.id.version)
                    ]
                    action = self._policy.next_action(snapshot)
                    if action is None:
                        continue
                    harness = stream[action.id.version]
                    if harness.in_flight:
                        continue
                    harness.in_flight = True
                    job = self._load if action.action is Action.LOAD else self._unload
                    self._workers.submit(self._run, job, harness)

    def _run(self, job: Any, harness: _Harness) -> None:
        try:
            job(harness)
        except Exception:  # a bug here must not stop the manager
            log.exception("Unexpected error managing %s", harness.id)
        finally:
            with self._cond:
                harness.in_flight = False
                self._dirty = True
                self._cond.notify_all()

    def _load(self, harness: _Harness) -> None:
        self._set_state(harness, HarnessState.LOADING, ManagerState.LOADING)
        attempt = 0
        while True:
            try:
                harness.loader.load()
                harness.servable = harness.loader.servable()
                break
            except Exception as exc:  # any load failure is recorded, not raised
                error = (
                    exc
                    if isinstance(exc, ServingStatusError)
                    else ServingStatusError(Code.UNKNOWN, str(exc) or type(exc).__name__)
                )
                name = error.code.name
                log.error("Loading servable: %s failed: %s: %s", harness.id, name, error.message)
                attempt += 1
                if attempt > self._max_retries:
                    log.info(
                        "Retrying of Loading servable: %s exhausted max_num_retries: %d",
                        harness.id,
                        self._max_retries,
                    )
                if attempt > self._max_retries or not self._wait_before_retry(harness):
                    harness.error = error
                    self._set_state(
                        harness, HarnessState.ERROR, ManagerState.END, error.code, error.message
                    )
                    return
                log.info("Retrying of Loading servable: %s retry: %d", harness.id, attempt)
        self._set_state(harness, HarnessState.READY, ManagerState.AVAILABLE)
        log.info("Successfully loaded servable version %s", harness.id)

    def _wait_before_retry(self, harness: _Harness) -> bool:
        """Wait the retry interval; False if the version stopped being aspired or we stop."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._stopped or not harness.is_aspired, timeout=self._retry_interval
            )
            return harness.is_aspired and not self._stopped

    def _unload(self, harness: _Harness) -> None:
        self._set_state(harness, HarnessState.UNLOADING, ManagerState.UNLOADING)
        with self._cond:  # quiesce: no new handles (state is not READY), wait for the old ones
            self._cond.wait_for(lambda: harness.handles == 0)
            harness.servable = None
        harness.loader.unload()
        self._set_state(harness, HarnessState.DISABLED, ManagerState.END)
        log.info("Done unloading servable version %s", harness.id)

    def _set_state(
        self,
        harness: _Harness,
        state: HarnessState,
        reported: ManagerState,
        code: Code = Code.OK,
        message: str = "",
    ) -> None:
        with self._cond:
            harness.state = state
            self._cond.notify_all()
        self._monitor.notify(ServableState(harness.id, reported, code, message))
