"""What is checked before any request: the URI, the library for its scheme, the local versions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.s3_server import fake_version
from tfserve_nb.errors import InvalidArgumentError, StorageError
from tfserve_nb.storage import is_remote
from tfserve_nb.storage.filesystem import open_store
from tfserve_nb.storage.push import local_versions


def test_uris_are_remote_and_paths_are_not() -> None:
    assert is_remote("s3://bucket/models/digits")
    assert is_remote("gs://bucket/digits")
    assert not is_remote("/models/digits")
    assert not is_remote(Path("s3://bucket/digits"))  # pathlib folds the //: a local path


def test_a_uri_opens_as_its_bucket_and_fsspec_path() -> None:
    store = open_store("s3://my-bucket/models/digits/")
    assert (store.uri, store.bucket, store.root) == (
        "s3://my-bucket/models/digits",
        "my-bucket",
        "my-bucket/models/digits",
    )
    assert store.path("3", "saved_model.pb") == "my-bucket/models/digits/3/saved_model.pb"
    assert store.uri_of(store.path("3")) == "s3://my-bucket/models/digits/3"
    assert open_store("s3://my-bucket").root == "my-bucket"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("hdfs://cluster/models", "Unsupported storage URI 'hdfs://cluster/models'"),
        ("s3:///models", "Not a usable storage URI: 's3:///models'"),
        ("s3://bucket//models", "no empty, '.' or '..' path component"),
        ("s3://bucket/models/../other", "no empty, '.' or '..' path component"),
        ("s3://bucket/models?versionId=3", "no '?' or '#'"),
    ],
)
def test_unusable_uris_are_refused_naming_them(uri: str, expected: str) -> None:
    with pytest.raises(StorageError, match=re.escape(expected)):
        open_store(uri)


def test_a_missing_library_names_the_pip_extra(tmp_path: Path) -> None:
    """s3fs made unimportable in a fresh interpreter, as where the extra was never installed."""
    fake_version(tmp_path / "digits" / "1")
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from tfserve_nb.errors import StorageError\n"
        "from tfserve_nb.storage import push\n"
        "try:\n"
        "    push(sys.argv[1], 's3://bucket/models/digits')\n"
        "except StorageError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "digits")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.startswith(
        "s3:// storage needs the s3fs package: pip install 'tfserve-nb[s3]'"
    ), out.stdout + out.stderr


def test_local_versions_are_the_numbered_folders_with_a_saved_model(tmp_path: Path) -> None:
    fake_version(tmp_path / "1")
    fake_version(tmp_path / "0003")
    (tmp_path / "v2").mkdir()
    (tmp_path / ".tmp-export-4-x").mkdir()
    assert local_versions(tmp_path) == {1: tmp_path / "1", 3: tmp_path / "0003"}
    assert local_versions(tmp_path, [3]) == {3: tmp_path / "0003"}
    with pytest.raises(InvalidArgumentError, match=r"has no version 2 \(it has \[1, 3\]\)"):
        local_versions(tmp_path, [1, 2])
    with pytest.raises(InvalidArgumentError, match="versions must be positive integers"):
        local_versions(tmp_path, [True])
    (tmp_path / "5").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"Version 5 at .*/5 has no saved_model\.pb"):
        local_versions(tmp_path)
    with pytest.raises(InvalidArgumentError, match="is not a directory"):
        local_versions(tmp_path / "missing")
    with pytest.raises(InvalidArgumentError, match="holds no version folder"):
        local_versions(tmp_path / "v2")
