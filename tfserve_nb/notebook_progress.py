"""Long start-up work shown in the notebook: the display behind a backend's progress callback.

It sits beside the handle, not among the dashboard's widgets: :func:`~tfserve_nb.handle.serve`
uses it, and the handle is on a floor below ``widgets/`` (``tests/test_layers.py``).

Backends report :class:`~tfserve_nb.backends.progress.ProgressEvent` values;
:class:`NotebookProgress` shows each piece of work once, in place: a label for a server starting,
a progress bar with a label for work that reports fractions (an image pull), green or red when it
ends. :func:`notebook_progress` is what ``serve()`` passes: this display in a notebook, else
``None`` (the backend then prints to standard error).
"""

from __future__ import annotations

import sys
from typing import Any

from .backends.progress import ProgressCallback, ProgressEvent

__all__ = ["NotebookProgress", "in_notebook", "notebook_progress"]


def in_notebook() -> bool:
    """Whether this runs in an IPython kernel with ipywidgets importable."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


class NotebookProgress:
    """A :data:`~tfserve_nb.backends.progress.ProgressCallback` drawing widgets in the output of
    the running cell. Each work (:attr:`~tfserve_nb.backends.progress.ProgressEvent.work`) gets
    its widget at its first event: a bar when that event has a fraction, else a label. Not
    thread-safe: call it from the thread doing the work."""

    def __init__(self) -> None:
        self._shown: dict[str, tuple[Any, Any]] = {}
        """work → (bar or ``None``, label)."""

    def __call__(self, event: ProgressEvent) -> None:
        if event.work not in self._shown:
            self._shown[event.work] = self._display(event)
        bar, label = self._shown[event.work]
        label.value = event.message
        if bar is not None:
            bar.value = event.fraction or 0.0
            if event.final:
                bar.bar_style = "success" if event.ok else "danger"

    @staticmethod
    def _display(event: ProgressEvent) -> tuple[Any, Any]:
        import ipywidgets
        from IPython.display import display

        label = ipywidgets.Label(event.message)
        if event.fraction is None:
            display(label)
            return None, label
        bar = ipywidgets.FloatProgress(min=0.0, max=1.0, description=event.work)
        display(ipywidgets.HBox([bar, label]))
        return bar, label


def notebook_progress() -> ProgressCallback | None:
    """A new :class:`NotebookProgress` when running in a notebook, else ``None``."""
    return NotebookProgress() if in_notebook() else None
