"""The notebook display of a backend's progress: a label for a start-up, a bar for a pull."""

from __future__ import annotations

import sys
import types

import pytest

from tfserve_nb import notebook_progress as progress
from tfserve_nb.backends.docker.image import pull_image
from tfserve_nb.backends.progress import STARTING, ProgressEvent, StartupProgress
from tfserve_nb.notebook_progress import NotebookProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_start_up_is_one_label_changing_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    displayed: list = []
    monkeypatch.setattr("IPython.display.display", displayed.append)
    clock = Clock()
    shown = StartupProgress("the server", NotebookProgress(), quiet=0.0, clock=clock)
    shown.update(lambda: "")
    clock.now += 5
    shown.update(lambda: "loading")
    shown.finish(ok=False)
    (label,) = displayed
    assert label.value == "Could not start the server after 5.0 s"


class FakeApi:
    def pull(self, image: str, stream: bool, decode: bool):
        yield {"status": "Downloading", "progressDetail": {"current": 1, "total": 4}, "id": "a"}
        yield {"status": "Pull complete", "progressDetail": {}, "id": "a"}


class FakeClient:
    api = FakeApi()


def test_a_pull_is_a_progress_bar_that_ends_green(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    pull_image(FakeClient(), "tensorflow/serving:2.21.0", NotebookProgress())  # type: ignore[arg-type]
    ((bar, label),) = [box.children for box in shown]
    assert bar.value == 1.0 and bar.bar_style == "success"
    assert label.value == "Pulling tensorflow/serving:2.21.0: 100% of 0.0 MB"


def test_each_work_gets_its_own_widget(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    display = NotebookProgress()
    display(ProgressEvent("Pulling", "Pulling x: 50%", 0.5))
    display(ProgressEvent("Pulling", "Pulling x: 100%", 1.0, final=True, ok=False))
    display(ProgressEvent(STARTING, "Starting x: 3 s"))
    box, label = shown
    bar, _ = box.children
    assert bar.bar_style == "danger" and label.value == "Starting x: 3 s"


def test_a_notebook_is_an_ipython_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel_shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel_shell)
    )
    assert progress.in_notebook()
    assert isinstance(progress.notebook_progress(), NotebookProgress)
    terminal_shell = types.SimpleNamespace()
    monkeypatch.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal_shell)
    )
    assert not progress.in_notebook()
    assert progress.notebook_progress() is None
