"""A push killed with SIGKILL in the middle, against moto's S3 server: what it leaves is what the
design says, no complete version appears, and the next push reports or cleans up as designed.

The pushing process is a child (``python -c``) given a version of 100 files, so that staging
(most of a second here) and publishing (over a second: one copy request per file) are long next to
the 20 ms poll that decides when to kill it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.s3_server import S3Server, fake_version, local_snapshot, snapshot
from tests.helpers.waiting import wait_until
from tfserve_nb.errors import VersionExistsError
from tfserve_nb.storage import push
from tfserve_nb.storage.push import open_repository

ROOT = Path(__file__).resolve().parents[2]
PUSH = "import sys\nfrom tfserve_nb.storage import push\npush(sys.argv[1], sys.argv[2])\n"


def large_version(folder: Path) -> Path:
    return fake_version(folder, files=100, size=2000, seed=3)


def push_killed_when(
    base: Path, uri: str, condition: Callable[[], bool], what: str, log: Path
) -> int:
    """Push ``base`` to ``uri`` from a child process and SIGKILL it as soon as ``condition``
    holds; return its pid. Fails if the push ended first."""
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", PUSH, str(base), uri],
            cwd=ROOT,
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: child.poll() is not None or condition(), what, timeout=120)
        assert child.poll() is None, f"the push ended before {what}: {log.read_text()}"
        child.kill()
        assert child.wait(30) == -9
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    return child.pid


def keys(fs: Any, root: str, part: str) -> list[str]:
    """The objects under ``root`` whose keys contain ``part``."""
    return [key for key in fs.find(root) if part in key]


def listed(fs: Any, path: str) -> list[str]:
    """The children of ``path`` (one listing request, cheap to poll); none if it is absent."""
    try:
        return list(fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def staged_file(fs: Any, root: str) -> bool:
    """Whether a staging area under ``root`` holds a file of the version yet."""
    areas = [child for child in listed(fs, root) if "/.tmp-push-" in child]
    return any(listed(fs, f"{area}/files") for area in areas)


def untouched(objects: dict[str, str]) -> dict[str, str]:
    """The objects of versions 1 and 2 among ``objects``."""
    return {key: digest for key, digest in objects.items() if key.startswith(("1/", "2/"))}


def test_a_push_killed_while_staging_leaves_no_version_and_the_next_push_cleans_up(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    fs = s3_server.filesystem()
    root, uri = f"{s3_bucket}/model", f"s3://{s3_bucket}/model"
    earlier, base = tmp_path / "earlier" / "model", tmp_path / "later" / "model"
    fake_version(earlier / "1", seed=1)
    fake_version(earlier / "2", seed=2)
    push(earlier, uri)
    before = snapshot(fs, root)
    large_version(base / "3")

    push_killed_when(
        base,
        uri,
        lambda: staged_file(fs, root),
        "its first staged file",
        tmp_path / "push.log",
    )

    after = snapshot(fs, root)
    assert [key for key in after if key.startswith("3")] == []  # no version 3, complete or not
    assert [key for key in after if ".push-claim-" in key] == []
    assert untouched(after) == before  # versions 1 and 2
    leftover = {key.partition("/")[0] for key in after} - {"1", "2"}
    assert len(leftover) == 1 and leftover.pop().startswith(".tmp-push-3-")  # its staging area

    assert push(base, uri) == {3: f"{uri}/3"}  # and removes the leftover (its owner is gone)

    assert snapshot(fs, f"{root}/3") == local_snapshot(base / "3")
    assert sorted(fs.ls(root, detail=False)) == [f"{root}/{v}" for v in (1, 2, 3)]
    assert untouched(snapshot(fs, root)) == before


def test_a_push_killed_while_publishing_leaves_a_partial_version_that_is_refused(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    fs = s3_server.filesystem()
    root, uri = f"{s3_bucket}/model", f"s3://{s3_bucket}/model"
    base = tmp_path / "model"
    large_version(base / "3")

    pid = push_killed_when(
        base,
        uri,
        lambda: bool(listed(fs, f"{root}/3")),
        "its first published object",
        tmp_path / "push.log",
    )

    assert keys(fs, root, "saved_model.pb") == []  # never complete
    assert keys(fs, root, f"{root}/.push-claim-3") == [f"{root}/.push-claim-3"]
    partial = snapshot(fs, f"{root}/3")
    assert partial  # published in part

    with pytest.raises(VersionExistsError) as refused:
        push(base, uri)

    assert refused.value.state == "partial"
    message = str(refused.value)
    assert message.startswith(f"Version 3 at {uri}/3 is partial: it has objects but no ")
    assert f" It was claimed by process {pid} of " in message
    assert "(no longer running). Nothing of it was touched." in message
    assert snapshot(fs, f"{root}/3") == partial
    assert keys(fs, root, "/.tmp-push-") == []  # its staging area was removed: owner gone
    repository = open_repository(uri)
    assert repository.next_version(repository.scan()) == 4  # where export_model goes next

    fs.rm(f"{root}/3", recursive=True)  # what the message says to do
    assert push(base, uri) == {3: f"{uri}/3"}  # the claim of the gone push is removed
    assert snapshot(fs, f"{root}/3") == local_snapshot(base / "3")
    assert sorted(fs.ls(root, detail=False)) == [f"{root}/3"]
