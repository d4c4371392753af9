"""What a stream of requests got back: per second and per answering version, how many requests
were answered and how fast, how many failed (:class:`TrafficStats`, read as a
:class:`TrafficSnapshot` holding one :class:`VersionTraffic` per version)."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["WINDOW_SECONDS", "TrafficSnapshot", "TrafficStats", "VersionTraffic"]

WINDOW_SECONDS = 60
"""How many seconds of per-second history are kept (and shown by the dashboard's charts)."""


@dataclass(frozen=True)
class VersionTraffic:
    """What one version answered in the window of a :class:`TrafficSnapshot`.

    ``requests``, ``p50_ms`` and ``p95_ms`` are aligned with the snapshot's ``seconds``: requests
    this version answered in each second, and their latency percentiles in milliseconds (``None``
    in a second it answered none). ``window_p50_ms``/``window_p95_ms`` are over all its answers
    in the window. ``version`` is ``None`` for requests answered by a server that did not report
    which version answered (e.g. REST predict responses carry no version).
    """

    version: int | None
    requests: tuple[int, ...]
    p50_ms: tuple[float | None, ...]
    p95_ms: tuple[float | None, ...]
    window_p50_ms: float
    window_p95_ms: float


@dataclass(frozen=True)
class TrafficSnapshot:
    """Traffic so far: per-second buckets over the last :data:`WINDOW_SECONDS` (``seconds`` are
    whole-second offsets from the start) with answered (``ok``) and failed (``errors``) requests;
    ``by_version`` splits the answered ones by the version that answered (ascending, the
    unreported version ``None`` last; only versions that answered in the window), so that in
    every second ``sum(v.requests[i] for v in by_version) == ok[i]``; the seconds another version
    started answering most requests (``switches``); requests answered per version since the start
    (``answered``, ascending by version, unreported versions not included) and totals since the
    start (``total_ok`` counts every answered request)."""

    seconds: tuple[float, ...] = ()
    ok: tuple[int, ...] = ()
    errors: tuple[int, ...] = ()
    by_version: tuple[VersionTraffic, ...] = ()
    switches: tuple[tuple[float, int], ...] = ()
    answered: tuple[tuple[int, int], ...] = ()
    total_ok: int = 0
    total_errors: int = 0
    last_error: str = ""


@dataclass
class _Second:
    """One second's requests: latencies of the answered ones by answering version (``None``:
    not reported; in the order versions first answered in that second) and a count of failures."""

    latencies: dict[int | None, list[float]] = field(default_factory=dict)
    errors: int = 0


class TrafficStats:
    """A record of requests (latency, answering version or error) in 1-s buckets.

    Thread-safe: :meth:`record` and :meth:`snapshot` may be called from any threads at once.
    Bounded: only the buckets of the last :data:`WINDOW_SECONDS` seconds are kept (older ones are
    dropped on the next :meth:`record`), plus one counter per answering version; a bucket holds
    one latency per request answered in its second, filed under the version that answered.
    ``clock`` (monotonic seconds) is for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._buckets: dict[int, _Second] = {}
        self._answered: collections.Counter[int] = collections.Counter()
        self._total_ok = 0
        self._total_errors = 0
        self._last_error = ""

    def record(self, latency: float, version: int | None, error: str = "") -> None:
        """Add one request that took ``latency`` seconds: answered by ``version`` (``None``:
        answered, version not reported) or, with a non-empty ``error``, failed with that text."""
        second = int(self._clock() - self._start)
        with self._lock:
            bucket = self._buckets.setdefault(second, _Second())
            if error:
                bucket.errors += 1
                self._total_errors += 1
                self._last_error = error
            else:
                bucket.latencies.setdefault(version, []).append(latency)
                self._total_ok += 1
                if version is not None:
                    self._answered[version] += 1
            for old in [s for s in self._buckets if s < second - WINDOW_SECONDS]:
                del self._buckets[old]

    def snapshot(self) -> TrafficSnapshot:
        """A copy of the numbers, with empty seconds filled in (at most ``WINDOW_SECONDS + 1``
        of them)."""
        now = int(self._clock() - self._start)
        with self._lock:
            seconds = range(max(0, now - WINDOW_SECONDS), now + 1)
            buckets = [self._buckets.get(s, _Second()) for s in seconds]
            per_second = [{v: list(ls) for v, ls in b.latencies.items()} for b in buckets]
            errors = tuple(b.errors for b in buckets)
            answered = tuple(sorted(self._answered.items()))
            totals = (self._total_ok, self._total_errors, self._last_error)
        versions = {v for latencies in per_second for v in latencies}
        return TrafficSnapshot(
            seconds=tuple(float(s) for s in seconds),
            ok=tuple(sum(map(len, latencies.values())) for latencies in per_second),
            errors=errors,
            by_version=tuple(
                _version_traffic(v, [latencies.get(v, []) for latencies in per_second])
                for v in sorted(versions, key=lambda v: (v is None, v or 0))
            ),
            switches=_switches(seconds, per_second),
            answered=answered,
            total_ok=totals[0],
            total_errors=totals[1],
            last_error=totals[2],
        )


def _version_traffic(version: int | None, per_second: Sequence[list[float]]) -> VersionTraffic:
    """One version's numbers from its latencies (seconds) in each second of the window."""
    p50 = tuple(_percentile_ms(ls, 50) if ls else None for ls in per_second)
    p95 = tuple(_percentile_ms(ls, 95) if ls else None for ls in per_second)
    everything = [latency for ls in per_second for latency in ls]
    return VersionTraffic(
        version=version,
        requests=tuple(len(ls) for ls in per_second),
        p50_ms=p50,
        p95_ms=p95,
        window_p50_ms=_percentile_ms(everything, 50),
        window_p95_ms=_percentile_ms(everything, 95),
    )


def _percentile_ms(latencies: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(latencies) * 1000.0, q))


def _switches(
    seconds: Sequence[int], per_second: Sequence[dict[int | None, list[float]]]
) -> tuple[tuple[float, int], ...]:
    """The seconds whose most-answering reported version (the first of equals) differs from the
    previous such second's."""
    switches: list[tuple[float, int]] = []
    previous = None
    for second, latencies in zip(seconds, per_second, strict=True):
        reported = {v: len(ls) for v, ls in latencies.items() if v is not None}
        if not reported:
            continue
        top = max(reported, key=lambda v: reported[v])
        if previous is not None and top != previous:
            switches.append((float(second), top))
        previous = top
    return tuple(switches)
