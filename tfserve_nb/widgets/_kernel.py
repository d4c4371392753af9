"""Threads that talk to the server, and the one thread that touches widgets.

Widgets are not thread-safe: every trait change sends a comm message, and ipykernel 6 and 7 expect
those from the kernel's own event loop. So the dashboard splits its work in two:

- background threads (:class:`Repeater`, :class:`ActionRunner`, the traffic sender) only do network
  I/O and compute plain data;
- they hand that data to :class:`UiDispatcher`, which runs the update on the kernel's event loop
  (``loop.call_soon_threadsafe``), or directly when there is no running loop (plain Python, tests).

Nothing here writes to an ``Output`` widget.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_log = logging.getLogger(__name__)


class UiDispatcher:
    """Runs UI updates on the thread that owns the widgets.

    Construct it on that thread (in a notebook: in a cell). If an asyncio loop is running there
    (the kernel's loop, for ipykernel 6 and 7), updates from other threads are scheduled on it with
    ``call_soon_threadsafe`` and run in order; updates from the loop's thread run at once. Without a
    running loop, updates run at once in the caller's thread, serialised by a lock.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._loop = loop
        self._loop_thread = threading.get_ident() if loop is not None else None
        self._lock = threading.RLock()

    @property
    def has_loop(self) -> bool:
        """Whether updates go through an event loop (a kernel) rather than run in place."""
        return self._loop is not None

    def run(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` on the widget thread, now or soon.

        Returns ``False`` if the event loop is closed (the kernel is going away): the caller's
        background thread should then stop.
        """
        if self._loop is None or threading.get_ident() == self._loop_thread:
            with self._lock:
                fn(*args)
            return True
        if self._loop.is_closed():
            return False
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed between the check and the call
            return False
        return True


class Repeater:
    """Calls ``step()`` in a daemon thread every ``interval`` seconds until stopped.

    ``step`` returns ``False`` to stop the thread itself. ``interval`` may change while running.
    ``stop()`` is idempotent and returns at once; the thread ends after its current step.
    """

    def __init__(self, name: str, step: Callable[[], bool], interval: float) -> None:
        self.interval = interval
        self._step = step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        """Whether the thread is still going (started, not stopped, not finished)."""
        return self._thread.is_alive() and not self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; ``True`` if stopped meanwhile (for use inside ``step``)."""
        return self._stop.wait(seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._step():
                break
            if self._stop.wait(self.interval):
                break
        self._stop.set()


class ActionRunner:
    """Runs blocking actions (reloads, predictions) one at a time off the widget thread.

    ``submit(work, done)`` runs ``work()`` in a worker thread, then ``done(result)`` on the widget
    thread through the dispatcher. ``work`` should turn expected failures into its result; an
    unexpected exception is logged and ``done`` is not called.
    """

    def __init__(self, dispatcher: UiDispatcher, name: str) -> None:
        self._dispatcher = dispatcher
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closed = False

    def submit(self, work: Callable[[], T], done: Callable[[T], None]) -> Future[None] | None:
        """Queue ``work``; ``None`` once closed."""
        if self._closed:
            return None

        def job() -> None:
            try:
                result = work()
            except Exception:
                _log.exception("dashboard action failed")
                return
            self._dispatcher.run(done, result)

        return self._pool.submit(job)

    def close(self) -> None:
        """Drop queued actions; one already running finishes in the background."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
