"""A real S3-compatible server for tests: moto's, as a child process on 127.0.0.1, and the
pytest fixtures around it.

:class:`S3Server` runs ``python -m moto.server -H 127.0.0.1 -p 0`` (an ephemeral port, read back
from its log) and stops it; its state lives in that process only. :meth:`S3Server.env` is the
environment every client needs to reach it with fake credentials: botocore/s3fs/boto3
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...), KServe's storage code (the same, plus
``S3_VERIFY_SSL``) and TensorFlow's S3 file system (``S3_ENDPOINT``, ``S3_USE_HTTPS``,
``AWS_REGION``). With ``authenticate=True`` moto checks credentials against its (empty) IAM, so
every key is refused: the server for "bad credentials".

Fixtures (import them into a ``conftest.py``: ``from tests.helpers.s3_server import s3_server,
s3_env, s3_bucket``):

- ``s3_server`` (session): the running server;
- ``s3_env`` (function): :meth:`S3Server.env` set in ``os.environ`` for the test only, config
  files pointed at nothing (a developer's ``~/.aws`` never leaks in), the instance metadata
  lookup off (no request leaves 127.0.0.1); returns the variables;
- ``s3_bucket`` (function, with ``s3_env``): a new bucket of the test's own; returns its name.

And what tests of object storage share: :func:`fake_version` (a version folder of given files,
no TensorFlow needed), :func:`snapshot` (every object under a path, by digest) and
:func:`local_snapshot` (the same of a local folder).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tfserve_nb.processes import stop_process

from .waiting import wait_until

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"

_RUNNING = re.compile(r"Running on http://127\.0\.0\.1:(?P<port>[0-9]+)")
_BUCKETS = itertools.count(1)


class S3Server:
    """moto's S3 server in a child process on 127.0.0.1 (see the module docstring). Not
    thread-safe: it belongs to the fixture or test that started it, which stops it."""

    def __init__(self, *, authenticate: bool = False) -> None:
        self.authenticate = authenticate
        self.port = 0
        self._dir = Path(tempfile.mkdtemp(prefix="tfserve-nb-s3-server-"))
        self.log_path = self._dir / "moto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> S3Server:
        """Start the server and wait (at most ``timeout`` seconds) until it listens."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        if self.authenticate:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        process = self._process

        def listening() -> int | None:
            if process.poll() is not None:
                raise AssertionError(f"moto's server exited: {self.log_path.read_text()[-2000:]}")
            match = _RUNNING.search(self.log_path.read_text(errors="replace"))
            return int(match["port"]) if match else None

        self.port = wait_until(listening, "moto's S3 server to listen", timeout=timeout)
        return self

    def stop(self) -> None:
        """Stop the server and remove its log."""
        if self._process is not None:
            stop_process(self._process, grace=5.0)
            self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The environment of a client of this server (module docstring)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "S3_ENDPOINT": f"127.0.0.1:{self.port}",
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "0",
        }

    def filesystem(self) -> Any:
        """An s3fs file system on this server with the fake credentials given explicitly (so it
        works whatever the environment), listings uncached."""
        import s3fs

        return s3fs.S3FileSystem(
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            endpoint_url=self.endpoint,
            use_listings_cache=False,
            skip_instance_cache=True,
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (default: a new name) and return its name."""
        bucket = name or f"bucket-{os.getpid()}-{next(_BUCKETS)}"
        self.filesystem().mkdir(bucket)
        return bucket


def fake_version(folder: Path, files: int = 3, size: int = 1000, seed: int = 0) -> Path:
    """Write a version folder shaped like a SavedModel — ``saved_model.pb`` and ``files``
    files of ``size`` random bytes under ``variables/`` — with content fixed by ``seed``;
    return ``folder``. Storage never parses a SavedModel, so these need no TensorFlow."""
    rng = random.Random(seed)
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(rng.randbytes(size))
    for i in range(files):
        (folder / "variables" / f"variables.data-{i:05d}-of-{files:05d}").write_bytes(
            rng.randbytes(size)
        )
    return folder


def snapshot(fs: Any, path: str) -> dict[str, str]:
    """Every object under the fsspec ``path`` (relative key → SHA-256 of its bytes)."""
    prefix = path.rstrip("/") + "/"
    found = fs.find(path)
    contents = fs.cat(found, on_error="raise") if found else {}  # concurrent GETs
    return {
        key.removeprefix(prefix): hashlib.sha256(contents[key]).hexdigest() for key in sorted(found)
    }


def local_snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative ``/`` path → SHA-256), as :func:`snapshot`."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    env = s3_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return env


@pytest.fixture
def s3_bucket(s3_server: S3Server, s3_env: dict[str, str]) -> str:
    return s3_server.create_bucket()
