"""A steady stream of requests in a background thread, recorded in :class:`TrafficStats`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import TfServeNbError
from .statistics import TrafficSnapshot, TrafficStats

__all__ = ["TICK_SECONDS", "RequestChooser", "SendOne", "TrafficSender"]

TICK_SECONDS = 0.5
"""How often the sender hands fresh numbers to ``on_tick``."""

MIN_RATE = 0.1
"""Requests per second the sender never goes below (a wait between requests is at most 10 s)."""

MAX_CATCH_UP_SECONDS = 0.5
"""How far behind schedule the sender may be before it gives up catching up: it never sends
more than this many seconds' worth of requests back to back."""

SendOne = Callable[[int | None, str | None], int | None]
"""Sends one request to ``(version, label)`` (neither: the latest) and returns the version that
answered (``None`` if not reported); raises on failure."""


class RequestChooser(Protocol):
    """Where each next request goes: a fixed target or a
    :class:`~tfserve_nb.traffic.split.TrafficSplit`. Called from the sender's thread."""

    def next(self) -> tuple[int | None, str | None]:
        """``(version, label)`` for the next request; at most one of them is set."""
        ...


class TrafficSender:
    """Calls ``send(version, label)`` one request at a time, at about ``rate`` per second, in a
    daemon thread, and records each in :attr:`stats`.

    ``request_target`` chooses each request's version or label. ``rate`` and ``request_target``
    may be reassigned from any thread while running; the next request uses them. A request that
    raises :class:`~tfserve_nb.errors.TfServeNbError` (a refusal, no connection, a client
    closed by ``ModelServer.stop()``) is recorded as an error with its text; anything else ends
    the thread.

    Bounds: the thread sends at most ``rate`` requests per second (never below
    :data:`MIN_RATE`), never bursts more than :data:`MAX_CATCH_UP_SECONDS` to catch up, and runs
    until :meth:`stop` or until ``on_tick`` returns ``False``. Every :data:`TICK_SECONDS` (checked
    after each request) it passes ``stats.snapshot()`` to ``on_tick`` from its own thread.
    """

    def __init__(
        self,
        send: SendOne,
        request_target: RequestChooser,
        rate: float,
        on_tick: Callable[[TrafficSnapshot], bool],
    ) -> None:
        self.request_target = request_target
        self.rate = rate
        self.stats = TrafficStats()
        self._send = send
        self._on_tick = on_tick
        self._next_at = time.monotonic()
        self._last_tick = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tfserve-nb-traffic", daemon=True)

    def start(self) -> None:
        """Start sending (once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and pass the last numbers to ``on_tick`` in the calling thread. Returns at
        once: a request in flight still completes in the sender's thread, recorded in
        :attr:`stats`, and may still pass a snapshot to ``on_tick`` if one is due."""
        self._stop.set()
        self._on_tick(self.stats.snapshot())

    @property
    def running(self) -> bool:
        """Whether the thread is still sending (started, not stopped, not finished)."""
        return self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.wait(max(self._next_at - time.monotonic(), 0.0)):
            if not self._step():
                break
        self._stop.set()

    def _step(self) -> bool:
        now = time.monotonic()
        self._next_at = max(
            self._next_at + 1.0 / max(self.rate, MIN_RATE), now - MAX_CATCH_UP_SECONDS
        )
        version, label = self.request_target.next()
        began = time.perf_counter()
        try:
            answered = self._send(version, label)
            self.stats.record(time.perf_counter() - began, answered)
        except TfServeNbError as exc:
            self.stats.record(time.perf_counter() - began, None, str(exc))
        if time.monotonic() - self._last_tick >= TICK_SECONDS:
            self._last_tick = time.monotonic()
            return self._on_tick(self.stats.snapshot())
        return True
