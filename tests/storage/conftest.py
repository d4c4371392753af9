"""Object storage tests run against moto's S3 server (tests/helpers/s3_server.py): one per
session, a bucket and fake credentials per test."""

from __future__ import annotations

from tests.helpers.s3_server import s3_bucket, s3_env, s3_server

__all__ = ["s3_bucket", "s3_env", "s3_server"]
