"""What a stream of requests got back: latency percentiles, successes and errors per second, and
requests answered per version (:class:`TrafficStats`, read as a :class:`TrafficSnapshot`)."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["WINDOW_SECONDS", "TrafficSnapshot", "TrafficStats"]

WINDOW_SECONDS = 60
"""How many seconds of per-second history are kept (and shown by the dashboard's charts)."""


@dataclass(frozen=True)
class TrafficSnapshot:
    """Traffic so far: per-second buckets over the last :data:`WINDOW_SECONDS` (``seconds`` are
    whole-second offsets from the start; ``p50_ms``/``p95_ms`` are ``None`` for a second without
    an answer), the seconds another version started answering most requests (``switches``),
    requests answered per version (``answered``, ascending by version) and totals since the
    start."""

    seconds: tuple[float, ...] = ()
    p50_ms: tuple[float | None, ...] = ()
    p95_ms: tuple[float | None, ...] = ()
    ok: tuple[int, ...] = ()
    errors: tuple[int, ...] = ()
    switches: tuple[tuple[float, int], ...] = ()
    answered: tuple[tuple[int, int], ...] = ()
    total_ok: int = 0
    total_errors: int = 0
    last_error: str = ""


class TrafficStats:
    """A record of requests (latency, answering version or error) in 1-s buckets.

    Thread-safe: :meth:`record` and :meth:`snapshot` may be called from any threads at once.
    Bounded: only the buckets of the last :data:`WINDOW_SECONDS` seconds are kept (older ones are
    dropped on the next :meth:`record`), plus one counter per answering version; a bucket holds
    one latency per request recorded in its second. ``clock`` (monotonic seconds) is for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._buckets: dict[int, tuple[list[float], collections.Counter[int], int]] = {}
        self._answered: collections.Counter[int] = collections.Counter()
        self._total_errors = 0
        self._last_error = ""

    def record(self, latency: float, version: int | None, error: str = "") -> None:
        """Add one request that took ``latency`` seconds: answered by ``version`` (``None``:
        answered, version not reported) or, with a non-empty ``error``, failed with that text."""
        second = int(self._clock() - self._start)
        with self._lock:
            latencies, versions, errors = self._buckets.get(second, ([], collections.Counter(), 0))
            if error:
                errors += 1
                self._total_errors += 1
                self._last_error = error
            else:
                latencies.append(latency)
                if version is not None:
                    versions[version] += 1
                    self._answered[version] += 1
            self._buckets[second] = (latencies, versions, errors)
            for old in [s for s in self._buckets if s < second - WINDOW_SECONDS]:
                del self._buckets[old]

    def snapshot(self) -> TrafficSnapshot:
        """A copy of the numbers, with empty seconds filled in (at most ``WINDOW_SECONDS + 1``
        of them)."""
        now = int(self._clock() - self._start)
        with self._lock:
            seconds = list(range(max(0, now - WINDOW_SECONDS), now + 1))
            p50: list[float | None] = []
            p95: list[float | None] = []
            ok, errors, switches = [], [], []
            previous = None
            for second in seconds:
                latencies, versions, failed = self._buckets.get(
                    second, ([], collections.Counter(), 0)
                )
                if latencies:
                    ms = np.asarray(latencies) * 1000.0
                    p50.append(float(np.percentile(ms, 50)))
                    p95.append(float(np.percentile(ms, 95)))
                else:
                    p50.append(None)
                    p95.append(None)
                ok.append(len(latencies))
                errors.append(failed)
                if versions:
                    top = versions.most_common(1)[0][0]
                    if previous is not None and top != previous:
                        switches.append((float(second), top))
                    previous = top
            return TrafficSnapshot(
                seconds=tuple(float(s) for s in seconds),
                p50_ms=tuple(p50),
                p95_ms=tuple(p95),
                ok=tuple(ok),
                errors=tuple(errors),
                switches=tuple(switches),
                answered=tuple(sorted(self._answered.items())),
                total_ok=sum(self._answered.values()),
                total_errors=self._total_errors,
                last_error=self._last_error,
            )
