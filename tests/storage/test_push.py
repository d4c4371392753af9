"""push against a real S3-compatible server (moto's, tests/helpers/s3_server.py): round trips,
never overwriting, concurrent pushes, what a listing reads."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.s3_server import S3Server, fake_version, local_snapshot, snapshot
from tfserve_nb.errors import StorageError, VersionExistsError
from tfserve_nb.storage import push
from tfserve_nb.storage.push import open_repository
from tfserve_nb.storage.repository import PushOwner


def hidden(fs: Any, path: str) -> list[str]:
    """The push bookkeeping (staging areas, claims) under ``path``."""
    return [key for key in fs.find(path) if "/.tmp-push-" in key or "/.push-claim-" in key]


def test_push_uploads_every_version_byte_for_byte(
    s3_server: S3Server, s3_bucket: str, half_plus_two_base: Path, half_plus_two_models: Any
) -> None:
    half_plus_two_models.add_version(half_plus_two_base, 2)
    uri = f"s3://{s3_bucket}/models/half_plus_two"

    pushed = push(half_plus_two_base, uri)

    assert pushed == {1: f"{uri}/1", 2: f"{uri}/2"}
    fs = s3_server.filesystem()
    root = f"{s3_bucket}/models/half_plus_two"
    assert sorted(fs.ls(root, detail=False)) == [f"{root}/1", f"{root}/2"]  # nothing hidden left
    for version in ("1", "2"):
        assert snapshot(fs, f"{root}/{version}") == local_snapshot(half_plus_two_base / version)


def test_a_complete_version_is_refused_and_left_untouched(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    base = tmp_path / "digits"
    fake_version(base / "1", seed=1)
    uri = f"s3://{s3_bucket}/digits"
    push(base, uri)
    fs = s3_server.filesystem()
    before = snapshot(fs, s3_bucket)
    fake_version(base / "2", seed=2)

    with pytest.raises(VersionExistsError) as refused:
        push(base, uri)  # 1 is there: nothing is uploaded, 2 neither

    assert (refused.value.version, refused.value.state, refused.value.uri) == (
        1,
        "complete",
        f"{uri}/1",
    )
    assert str(refused.value) == (
        f"Version 1 already exists at {uri}/1: versions in object storage are never "
        "overwritten. Push it as another version (the next free one is 2). Nothing was uploaded."
    )
    assert snapshot(fs, s3_bucket) == before
    assert push(base, uri, versions=[2]) == {2: f"{uri}/2"}


def test_a_partial_version_is_refused_and_left_untouched(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    """Objects under 3/ without saved_model.pb (another writer's): 3 is taken, not complete."""
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_bucket}/digits/3/variables/variables.index", b"someone else's")
    before = snapshot(fs, s3_bucket)
    base = tmp_path / "digits"
    fake_version(base / "3")
    uri = f"s3://{s3_bucket}/digits"

    with pytest.raises(VersionExistsError) as refused:
        push(base, uri)

    assert refused.value.state == "partial"
    assert str(refused.value) == (
        f"Version 3 at {uri}/3 is partial: it has objects but no saved_model.pb (an interrupted "
        "push, or another writer). Nothing of it was touched. Push as another version (the next "
        f"free one is 4), or, once nothing writes it any more, delete it (aws s3 rm --recursive "
        f"{uri}/3/) and push again. Nothing was uploaded."
    )
    assert snapshot(fs, s3_bucket) == before


def test_of_two_concurrent_pushes_of_one_version_one_wins_with_its_bytes_intact(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    """Two repositories with different bytes for version 1, pushed at the same moment."""
    bases = [tmp_path / name / "model" for name in ("a", "b")]
    for seed, base in enumerate(bases):
        fake_version(base / "1", files=20, size=20_000, seed=seed)
    uri = f"s3://{s3_bucket}/model"
    start = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def run(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = push(bases[i], uri)
        except Exception as exc:  # the loser's refusal, or a failure the assertions show
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    winners = [i for i, outcome in outcomes.items() if outcome == {1: f"{uri}/1"}]
    assert len(winners) == 1, outcomes
    loser = outcomes[1 - winners[0]]
    assert isinstance(loser, VersionExistsError), loser
    assert loser.version == 1 and loser.state in ("being pushed", "complete"), loser
    fs = s3_server.filesystem()
    assert snapshot(fs, f"{s3_bucket}/model/1") == local_snapshot(bases[winners[0]] / "1")
    assert hidden(fs, s3_bucket) == []


def test_a_claim_is_won_by_exactly_one_of_simultaneous_creates(
    s3_bucket: str, s3_env: dict[str, str]
) -> None:
    """The store's atomic create, as push uses it for claims and saved_model.pb."""
    repository = open_repository(f"s3://{s3_bucket}/model")
    claim = repository.claim_path(1)
    start = threading.Barrier(8)
    won: list[bool] = []

    def create(i: int) -> None:
        start.wait()
        won.append(repository.create(claim, f"writer {i}".encode()))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(won) == [False] * 7 + [True]
    assert repository.read(claim) in {f"writer {i}".encode() for i in range(8)}


def test_a_listing_reads_versions_as_tf_serving_does_and_the_pushes_bookkeeping(
    s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    fs = s3_server.filesystem()
    root = f"{s3_bucket}/model"
    fs.pipe_file(f"{root}/1/saved_model.pb", b"complete")
    fs.pipe_file(f"{root}/0002/saved_model.pb", b"0002 names version 2")
    fs.pipe_file(f"{root}/3/variables/variables.index", b"partial")
    fs.pipe_file(f"{root}/4", b"a file: no version folder")
    fs.pipe_file(f"{root}/v5/saved_model.pb", b"not a version name")
    fs.pipe_file(f"{root}/.push-claim-7", PushOwner.current().to_json())
    fs.pipe_file(f"{root}/.tmp-push-8-0a1b/owner.json", PushOwner.current().to_json())
    repository = open_repository(f"s3://{s3_bucket}/model")

    listing = repository.scan()

    assert {v: (r.paths, r.complete) for v, r in listing.versions.items()} == {
        1: ((f"{root}/1",), True),
        2: ((f"{root}/0002",), True),
        3: ((f"{root}/3",), False),
        4: ((f"{root}/4",), False),
    }
    assert listing.claims == {7: f"{root}/.push-claim-7"}
    assert listing.staging == {f"{root}/.tmp-push-8-0a1b": 8}
    assert repository.next_version(listing) == 9
    assert repository.remove_abandoned(listing) == []  # this process runs: nothing is abandoned
    assert open_repository(f"s3://{s3_bucket}/empty").scan().versions == {}


def test_a_missing_bucket_is_named(s3_env: dict[str, str], tmp_path: Path) -> None:
    fake_version(tmp_path / "model" / "1")
    with pytest.raises(StorageError) as error:
        push(tmp_path / "model", "s3://no-such-bucket-here/model")
    assert str(error.value) == (
        "Listing s3://no-such-bucket-here/model failed: bucket 'no-such-bucket-here' does not "
        "exist. Create it first (tfserve-nb creates no buckets), or correct the URI."
    )


def test_a_claim_stands_in_the_way_while_its_push_may_still_run(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    """A claim of this (running) process, and one of another machine, refuse the version; a
    claim whose process here is gone is removed by the next push."""
    fs = s3_server.filesystem()
    base = tmp_path / "model"
    fake_version(base / "1")
    uri = f"s3://{s3_bucket}/model"
    claim = f"{s3_bucket}/model/.push-claim-1"
    running = PushOwner.current()
    elsewhere = dataclasses.replace(running, host="build-agent-7", namespace="0badc0de")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    finished = dataclasses.replace(running, pid=int(gone.stdout))

    for owner, state in (
        (running, "still running"),
        (elsewhere, "whether it still runs is unknown here"),
    ):
        fs.pipe_file(claim, owner.to_json())
        with pytest.raises(VersionExistsError) as refused:
            push(base, uri)
        assert refused.value.state == "being pushed"
        assert str(refused.value).startswith(
            f"Version 1 at {uri}/1 is being pushed by process {owner.pid} of {owner.user} on "
            f"{owner.host}, started {owner.started} ("
        )
        assert f"{state}); its claim is s3://{claim}. If that push is gone, delete" in str(
            refused.value
        )

    fs.pipe_file(claim, finished.to_json())
    assert push(base, uri) == {1: f"{uri}/1"}
    assert hidden(fs, s3_bucket) == []
