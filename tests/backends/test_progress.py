"""StartupProgress: what a slow start-up shows, in a notebook and on stderr."""

from __future__ import annotations

import io
import sys
import types

import pytest

from tfserve_nb.backends import progress
from tfserve_nb.backends.progress import StartupProgress

LOG = (
    "2026-12-01 12:00:00.000: I tfserve_nb] Loading servable version {name: m version: 1}\n"
    "I0000 00:00:1796156768.457345   11236 cudart_stub.cc:31] Could not find cuda drivers\n\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quiet_at_first_then_the_time_and_last_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    clock = Clock()
    shown = StartupProgress("the server", quiet=3.0, every=1.0, clock=clock)
    reads: list[int] = []

    def logs() -> str:
        reads.append(1)
        return LOG

    clock.now += 2.9
    shown.update(logs)
    assert err.getvalue() == "" and not reads  # most starts end before anything is shown
    clock.now += 0.2
    shown.update(logs)
    clock.now += 0.5
    shown.update(logs)  # less than a second later: not again
    clock.now += 0.6
    shown.update(logs)
    shown.finish(ok=True)
    assert err.getvalue().splitlines() == [
        "Starting the server: 3 s — Loading servable version {name: m version: 1}",
        "Starting the server: 4 s — Loading servable version {name: m version: 1}",
        "Started the server after 4.2 s",
    ]
    assert len(reads) == 2


def test_the_latest_step_is_the_last_line_about_loading_models() -> None:
    from tfserve_nb.backends.progress import latest_step

    upstream = (
        "I0000 00:00:1700000000.1 7 loader_harness.cc:74] Loading servable version "
        "{name: hp2 version: 1}\n"
        "I0000 00:00:1700000000.2 7 reader.cc:83] Reading SavedModel from: /models/hp2/1\n"
        "I0000 00:00:1700000000.3 7 cpu_feature_guard.cc:210] This TensorFlow binary is ...\n"
    )
    assert latest_step(upstream) == "Reading SavedModel from: /models/hp2/1"
    assert latest_step("WARNING: All log messages before absl::InitializeLog()\n") == ""


def test_a_quick_start_shows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    shown = StartupProgress("the server", clock=Clock())
    shown.update(lambda: LOG)
    shown.finish(ok=False)
    assert err.getvalue() == "" and shown.text == ""


def test_in_a_notebook_one_label_changes_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    displayed: list = []
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", displayed.append)
    clock = Clock()
    shown = StartupProgress("the server", quiet=0.0, clock=clock)
    shown.update(lambda: "")
    clock.now += 5
    shown.update(lambda: "loading")
    shown.finish(ok=False)
    (label,) = displayed
    assert label.value == "Could not start the server after 5.0 s"


def test_a_notebook_is_an_ipython_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel_shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel_shell)
    )
    assert progress.in_notebook()
    terminal_shell = types.SimpleNamespace()
    monkeypatch.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal_shell)
    )
    assert not progress.in_notebook()
