"""The tests' wait on a condition: the package's one deadline-poll loop
(:func:`tfserve_nb.waiting.wait_until`), failing the test with what it waited for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfserve_nb import waiting


def wait_until(
    condition: Callable[[], Any], what: str, timeout: float = 60.0, interval: float = 0.02
) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); after ``timeout``
    seconds fail with an ``AssertionError`` naming ``what``."""
    return waiting.wait_until(
        lambda: condition() or None,
        timeout,
        timed_out=lambda: AssertionError(f"timed out after {timeout:g} s waiting for {what}"),
        interval=interval,
    )
