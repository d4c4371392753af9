"""Showing long start-up work as it happens: in a notebook a live line, elsewhere stderr.

A server opens its ports only once its models are AVAILABLE (as ``tensorflow_model_server``
does), so while it loads there is no protocol to ask; what it is doing is in its log.
:class:`StartupProgress` shows, once start-up has taken longer than a few seconds, how long it has
been and the last step in the server's log (``Loading servable version {name: digits version:
1}``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["StartupProgress", "in_notebook"]


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


STEP_MARKERS = ("servable", "SavedModel", "saved_model", "warmup", "Warmup")
"""What the log lines about loading models mention, in TF Serving's log and ours (the rest of a
start-up log is mostly TensorFlow's own notices about CPUs and GPUs)."""


def latest_step(logs: str) -> str:
    """The last log line about loading models, without its logger prefix (``... loader.cc:74]``,
    ``... I tfserve_nb.core...]``); "" if there is none yet."""
    for line in reversed(logs.splitlines()):
        if any(marker in line for marker in STEP_MARKERS):
            prefix_end = line.find("] ", 0, 160)
            step = line[prefix_end + 2 :] if prefix_end >= 0 else line
            return step.strip()[:160]
    return ""


class StartupProgress:
    """Call :meth:`update` from a start-up wait loop and :meth:`finish` when it ends.

    Nothing is shown for the first ``quiet`` seconds (most starts end before). Then, at most
    every ``every`` seconds: in a notebook, one label that changes in place; on a terminal, one
    line rewritten with ``\\r``; otherwise (a log file, CI) a line each time. Not thread-safe:
    one wait loop owns it.
    """

    def __init__(
        self,
        what: str,
        *,
        quiet: float = 3.0,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self._quiet = quiet
        self._every = every
        self._clock = clock
        self._start = clock()
        self._shown_at: float | None = None
        self._label: Any = None
        self.text = ""
        """The last line shown ("" while nothing has been)."""

    def update(self, logs: Callable[[], str]) -> None:
        """Show the time so far and :func:`latest_step` of ``logs()`` (read only when shown)."""
        now = self._clock()
        if now - self._start < self._quiet:
            return
        if self._shown_at is not None and now - self._shown_at < self._every:
            return
        self._shown_at = now
        last = latest_step(logs())
        text = f"Starting {self.what}: {now - self._start:.0f} s"
        self._show(f"{text} — {last}" if last else text)

    def finish(self, ok: bool) -> None:
        """Say how start-up ended, if anything was shown."""
        if self._shown_at is None:
            return
        elapsed = self._clock() - self._start
        verb = "Started" if ok else "Could not start"
        self._show(f"{verb} {self.what} after {elapsed:.1f} s", final=True)

    def _show(self, text: str, *, final: bool = False) -> None:
        self.text = text
        if self._label is None and in_notebook():
            import ipywidgets
            from IPython.display import display

            self._label = ipywidgets.Label(text)
            display(self._label)
        if self._label is not None:
            self._label.value = text
        elif sys.stderr.isatty():
            sys.stderr.write(f"\r\033[K{text}" + ("\n" if final else ""))
            sys.stderr.flush()
        else:
            sys.stderr.write(f"{text}\n")
            sys.stderr.flush()
