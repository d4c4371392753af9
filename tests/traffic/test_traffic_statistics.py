"""TrafficStats: per-second buckets per answering version, percentiles, version switches and
the window bound."""

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
    v1, v2 = snap.by_version
    assert v1.p50_ms[0] == pytest.approx(50.5) and v1.p95_ms[0] == pytest.approx(95.05)
    assert (v1.window_p50_ms, v1.window_p95_ms) == (pytest.approx(50.5), pytest.approx(95.05))
    assert v1.p50_ms[1] is None and v2.p50_ms == (None, pytest.approx(1.0))
    assert snap.ok == (100, 1) and snap.errors == (0, 1)
    assert snap.switches == ((1.0, 2),)
    assert snap.answered == ((1, 100), (2, 1))
    assert (snap.total_ok, snap.total_errors, snap.last_error) == (101, 1, "boom")


def test_a_promotion_under_traffic_per_version_and_second() -> None:
    """v1 answers for 3 s, both in the 4th, v2 for 3 s, then a second with failures too."""
    clock = Clock()
    stats = TrafficStats(clock)
    plan = [{1: 4}] * 3 + [{1: 2, 2: 3}] + [{2: 5}] * 3 + [{2: 1}]
    for second, answers in enumerate(plan):
        clock.now = 100.0 + second + 0.5
        for version, count in answers.items():
            for i in range(count):
                stats.record((version + i) / 1000.0, version)
    stats.record(0.03, None, "[UNAVAILABLE] connection refused")
    stats.record(0.03, None, "[UNAVAILABLE] connection refused")
    snap = stats.snapshot()

    assert snap.seconds == tuple(float(s) for s in range(8))
    assert [v.version for v in snap.by_version] == [1, 2]
    v1, v2 = snap.by_version
    assert v1.requests == (4, 4, 4, 2, 0, 0, 0, 0)
    assert v2.requests == (0, 0, 0, 3, 5, 5, 5, 1)
    assert snap.ok == (4, 4, 4, 5, 5, 5, 5, 1)
    assert snap.errors == (0,) * 7 + (2,)  # failures count under no version
    assert v1.p50_ms[:4] == pytest.approx((2.5, 2.5, 2.5, 1.5))
    assert v1.p50_ms[4:] == (None,) * 4 and v2.p50_ms[:3] == (None,) * 3
    assert v2.p50_ms[3:] == pytest.approx((3.0, 4.0, 4.0, 4.0, 2.0))
    assert v2.window_p50_ms == pytest.approx(4.0)  # 2,3,4 then 2..6 three times, then 2
    assert snap.switches == ((3.0, 2),)  # v2 answered most in the mixed second
    assert snap.answered == ((1, 14), (2, 19))
    assert (snap.total_ok, snap.total_errors) == (33, 2)


def test_requests_without_a_reported_version_have_their_own_share() -> None:
    clock = Clock()
    stats = TrafficStats(clock)
    stats.record(0.002, None)
    stats.record(0.004, 3)
    clock.now += 1
    stats.record(0.006, None)
    snap = stats.snapshot()
    assert [v.version for v in snap.by_version] == [3, None]  # the unreported share last
    assert snap.by_version[1].requests == (1, 1) and snap.ok == (2, 1)
    assert snap.by_version[1].p50_ms == (pytest.approx(2.0), pytest.approx(6.0))
    assert snap.answered == ((3, 1),) and snap.total_ok == 3
    assert snap.switches == ()


def test_empty_seconds_are_filled_and_old_ones_leave_the_window() -> None:
    clock = Clock()
    stats = TrafficStats(clock)
    assert stats.snapshot() == TrafficSnapshot(seconds=(0.0,), ok=(0,), errors=(0,))
    stats.record(0.01, 1)
    clock.now += 3
    snap = stats.snapshot()
    assert snap.ok == (1, 0, 0, 0) and snap.by_version[0].p50_ms[1:] == (None, None, None)
    clock.now += 120
    stats.record(0.01, 2)
    snap = stats.snapshot()
    assert len(snap.seconds) == WINDOW_SECONDS + 1 and sum(snap.ok) == 1
    assert [v.version for v in snap.by_version] == [2]  # version 1 left the window with its second
    assert snap.answered == ((1, 1), (2, 1))  # totals keep counting beyond the window


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
