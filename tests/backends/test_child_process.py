"""ChildProcess (a server child with its log file, stopped gracefully), last_lines and
wait_until: the plumbing the backends share."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tfserve_nb.backends.child_process import ChildProcess, last_lines
from tfserve_nb.errors import ServerTimeoutError
from tfserve_nb.waiting import wait_until


def test_last_lines_counts_alike_everywhere() -> None:
    text = "a\nb\nc\n"
    assert last_lines(text, None) == text
    assert last_lines(text, 2) == "b\nc"
    assert last_lines(text, 0) == ""
    assert last_lines(text, 10) == "a\nb\nc"


def run(workdir: Path, code: str, **options: bool) -> ChildProcess:
    return ChildProcess.start([sys.executable, "-c", code], workdir, **options)


def test_output_goes_to_the_log_and_stays_readable_after_stop(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    child = run(workdir, "import sys, time; print('one\\ntwo', flush=True); time.sleep(60)")
    wait_until(lambda: "two" in child.logs(), 30, timed_out=lambda: AssertionError(child.logs()))
    assert child.alive() and child.logs(tail=1) == "two"
    child.stop()
    assert not child.alive() and child.returncode is not None
    assert not workdir.exists()
    assert child.logs() == "one\ntwo\n" and child.logs(tail=0) == ""
    child.stop()  # idempotent


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    child = run(tmp_path, code)
    wait_until(lambda: "ready" in child.logs(), 30, timed_out=lambda: AssertionError(child.logs()))
    started = time.monotonic()
    child.stop(grace=0.5)
    assert 0.4 < time.monotonic() - started < 10
    assert child.returncode == -9


def test_a_pipe_on_stdin_is_closed_by_stop(tmp_path: Path) -> None:
    child = run(tmp_path, "import sys; sys.stdin.read(); print('eof', flush=True)", stdin_pipe=True)
    assert child.popen.stdin is not None
    child.stop(grace=0)
    assert child.popen.stdin.closed


def test_wait_until_returns_the_first_answer() -> None:
    answers = iter([None, False, 0, 7])
    assert wait_until(lambda: next(answers), 10, timed_out=AssertionError, interval=0) == 0


def test_wait_until_raises_what_timed_out_builds() -> None:
    seen: list[int] = []

    def never() -> None:
        seen.append(1)

    with pytest.raises(ServerTimeoutError, match="after 2 looks"):
        wait_until(
            never,
            0.1,
            timed_out=lambda: ServerTimeoutError(f"after {min(len(seen), 2)} looks"),
            interval=0.05,
        )
    assert len(seen) >= 2
