"""StartupProgress: what a slow start-up reports, and print_progress on standard error."""

from __future__ import annotations

import io
import sys

import pytest

from tfserve_nb.backends.progress import (
    ProgressEvent,
    StartupProgress,
    latest_step,
    print_progress,
)

LOG = (
    "2026-12-01 12:00:00.000: I tfserve_nb] Loading servable version {name: m version: 1}\n"
    "I0000 00:00:1796156768.457345   11236 cudart_stub.cc:31] Could not find cuda drivers\n\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quiet_at_first_then_the_time_and_last_log_line() -> None:
    events: list[ProgressEvent] = []
    clock = Clock()
    shown = StartupProgress("the server", events.append, quiet=3.0, every=1.0, clock=clock)
    reads: list[int] = []

    def logs() -> str:
        reads.append(1)
        return LOG

    clock.now += 2.9
    shown.update(logs)
    assert not events and not reads  # most starts end before anything is shown
    clock.now += 0.2
    shown.update(logs)
    clock.now += 0.5
    shown.update(logs)  # less than a second later: not again
    clock.now += 0.6
    shown.update(logs)
    shown.finish(ok=True)
    assert [e.message for e in events] == [
        "Starting the server: 3 s — Loading servable version {name: m version: 1}",
        "Starting the server: 4 s — Loading servable version {name: m version: 1}",
        "Started the server after 4.2 s",
    ]
    assert [(e.final, e.ok, e.fraction) for e in events] == [
        (False, True, None),
        (False, True, None),
        (True, True, None),
    ]
    assert len({e.work for e in events}) == 1
    assert len(reads) == 2


def test_the_latest_step_is_the_last_line_about_loading_models() -> None:
    upstream = (
        "I0000 00:00:1700000000.1 7 loader_harness.cc:74] Loading servable version "
        "{name: hp2 version: 1}\n"
        "I0000 00:00:1700000000.2 7 reader.cc:83] Reading SavedModel from: /models/hp2/1\n"
        "I0000 00:00:1700000000.3 7 cpu_feature_guard.cc:210] This TensorFlow binary is ...\n"
    )
    assert latest_step(upstream) == "Reading SavedModel from: /models/hp2/1"
    assert latest_step("WARNING: All log messages before absl::InitializeLog()\n") == ""


def test_a_quick_start_reports_nothing() -> None:
    events: list[ProgressEvent] = []
    shown = StartupProgress("the server", events.append, clock=Clock())
    shown.update(lambda: LOG)
    shown.finish(ok=False)
    assert events == []


def test_a_failed_start_says_so_at_the_end() -> None:
    events: list[ProgressEvent] = []
    clock = Clock()
    shown = StartupProgress("the server", events.append, quiet=0.0, clock=clock)
    shown.update(lambda: "")
    clock.now += 5
    shown.finish(ok=False)
    assert events[-1] == ProgressEvent(
        events[0].work, "Could not start the server after 5.0 s", final=True, ok=False
    )


def test_stderr_gets_a_line_per_event_outside_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    print_progress(ProgressEvent("Starting", "Starting it: 3 s"))
    print_progress(ProgressEvent("Starting", "Started it after 3.5 s", final=True))
    assert err.getvalue() == "Starting it: 3 s\nStarted it after 3.5 s\n"


def test_a_terminal_gets_one_line_rewritten_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    print_progress(ProgressEvent("Starting", "Starting it: 3 s"))
    print_progress(ProgressEvent("Starting", "Started it after 3.5 s", final=True))
    assert err.getvalue() == "\r\033[KStarting it: 3 s\r\033[KStarted it after 3.5 s\n"
