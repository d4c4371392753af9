"""Progress of long start-up work (a server loading its models, an image pull), as a callback.

A backend reports :class:`ProgressEvent` values to a :data:`ProgressCallback` — the notebook's
display (:mod:`tfserve_nb.notebook_progress`) or, by default, :func:`print_progress` on standard
error. Nothing here draws widgets.

A server opens its ports only once its models are AVAILABLE (as ``tensorflow_model_server``
does), so while it loads there is no protocol to ask; what it is doing is in its log.
:class:`StartupProgress` reports, once start-up has taken longer than a few seconds, how long it
has been and the last step in the server's log (``Loading servable version {name: digits version:
1}``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "STARTING",
    "ProgressCallback",
    "ProgressEvent",
    "StartupProgress",
    "latest_step",
    "print_progress",
]


@dataclass(frozen=True)
class ProgressEvent:
    """One report of one piece of long work; the last one of that work has ``final`` set."""

    work: str
    """Which work this is, in a word shown beside a progress bar, the same in all its events:
    :data:`STARTING` for a server start-up, ``"Pulling"`` for an image pull."""
    message: str
    """The line to show now."""
    fraction: float | None = None
    """The share done (0 to 1) for work that can measure it (image pulls), else ``None``."""
    final: bool = False
    """The work has ended; ``ok`` says how."""
    ok: bool = True


ProgressCallback = Callable[[ProgressEvent], None]
"""Called with each event in the thread doing the work (the one that called ``start``); it must
not raise. Events come at most a few times a second."""


def print_progress(event: ProgressEvent) -> None:
    """Show ``event`` on standard error: on a terminal one line rewritten in place, otherwise
    (a log file, CI) a line for each event."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{event.message}" + ("\n" if event.final else ""))
    else:
        sys.stderr.write(f"{event.message}\n")
    sys.stderr.flush()


STARTING = "Starting"
"""The :attr:`ProgressEvent.work` of a server start-up's events."""

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
    """Call :meth:`update` from a start-up wait loop and :meth:`finish` when it ends; they
    report to ``report``.

    Nothing is reported for the first ``quiet`` seconds (most starts end before), then at most
    every ``every`` seconds, and a final event if anything was reported. Not thread-safe: one
    wait loop owns it.
    """

    def __init__(
        self,
        what: str,
        report: ProgressCallback,
        *,
        quiet: float = 3.0,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self._report = report
        self._quiet = quiet
        self._every = every
        self._clock = clock
        self._start = clock()
        self._shown_at: float | None = None

    def update(self, logs: Callable[[], str]) -> None:
        """Report the time so far and :func:`latest_step` of ``logs()`` (read only when
        reported)."""
        now = self._clock()
        if now - self._start < self._quiet:
            return
        if self._shown_at is not None and now - self._shown_at < self._every:
            return
        self._shown_at = now
        last = latest_step(logs())
        text = f"Starting {self.what}: {now - self._start:.0f} s"
        self._report(ProgressEvent(STARTING, f"{text} — {last}" if last else text))

    def finish(self, ok: bool) -> None:
        """Report how start-up ended, if anything was reported."""
        if self._shown_at is None:
            return
        elapsed = self._clock() - self._start
        verb = "Started" if ok else "Could not start"
        message = f"{verb} {self.what} after {elapsed:.1f} s"
        self._report(ProgressEvent(STARTING, message, final=True, ok=ok))
