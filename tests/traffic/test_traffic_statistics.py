"""TrafficStats: per-second buckets, percentiles, version switches and the window bound."""

from __future__ import annotations

import threading

import pytest

from tfserve_nb.traffic.statistics import WINDOW_SECONDS, TrafficSnapshot, TrafficStats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_percentiles_counts_and_version_switches() -> None:
    clock = Clock()
    stats = TrafficStats(clock)
    for i in range(1, 101):
        stats.record(i / 1000.0, 1)
    clock.now += 1
    stats.record(0.001, 2)
    stats.record(0.5, None, "boom")
    snap = stats.snapshot()
    assert snap.seconds == (0.0, 1.0)
    assert snap.p50_ms[0] == pytest.approx(50.5) and snap.p95_ms[0] == pytest.approx(95.05)
    assert snap.ok == (100, 1) and snap.errors == (0, 1)
    assert snap.switches == ((1.0, 2),)
    assert snap.answered == ((1, 100), (2, 1))
    assert (snap.total_ok, snap.total_errors, snap.last_error) == (101, 1, "boom")


def test_empty_seconds_are_filled_and_old_ones_leave_the_window() -> None:
    clock = Clock()
    stats = TrafficStats(clock)
    assert stats.snapshot() == TrafficSnapshot(
        seconds=(0.0,), p50_ms=(None,), p95_ms=(None,), ok=(0,), errors=(0,)
    )
    stats.record(0.01, 1)
    clock.now += 3
    snap = stats.snapshot()
    assert snap.ok == (1, 0, 0, 0) and snap.p50_ms[1:] == (None, None, None)
    clock.now += 120
    stats.record(0.01, 1)
    snap = stats.snapshot()
    assert len(snap.seconds) == WINDOW_SECONDS + 1 and sum(snap.ok) == 1
    assert snap.answered == ((1, 2),)  # totals keep counting beyond the window


def test_records_from_many_threads_all_count() -> None:
    stats = TrafficStats()

    def worker(version: int) -> None:
        for _ in range(2000):
            stats.record(0.001, version)
        stats.record(0.001, None, f"error from {version}")

    threads = [threading.Thread(target=worker, args=(v,)) for v in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = stats.snapshot()
    assert snap.answered == ((1, 2000), (2, 2000), (3, 2000), (4, 2000))
    assert snap.total_ok == 8000 and snap.total_errors == 4
