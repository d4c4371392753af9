"""CPU seconds that processes spent, read with ``psutil``: how the benchmark charges a request's
cost to the server and to the clients."""

from __future__ import annotations

from collections.abc import Iterable


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` so far, with those of their children
    that have ended and been waited for (a process that is gone counts 0)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def with_descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a server that forks workers is charged for them)."""
    import psutil

    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []
