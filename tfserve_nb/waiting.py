"""Waiting on a condition with a deadline: the one poll loop (no sleeps as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    *,
    timed_out: Callable[[], BaseException],
    interval: float = 0.05,
) -> T:
    """Call ``condition()`` until it returns something other than ``None`` or ``False``;
    return that.

    ``condition`` is called at once and then every ``interval`` seconds; it may raise to give
    up early (its exception propagates). Once ``timeout`` seconds have passed and the last call
    still found nothing, raises ``timed_out()`` — built then, so it can describe the last state
    seen. Runs in the calling thread.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise timed_out()
        time.sleep(interval)
