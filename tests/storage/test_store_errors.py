"""A store that cannot be used says why, as :class:`StorageError`: the endpoint unreachable, the
credentials refused or missing (the missing bucket: test_push.py; the missing library:
test_storage_uris.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.s3_server import S3Server, fake_version
from tests.helpers.server_process import free_port
from tfserve_nb.errors import StorageError
from tfserve_nb.storage import push


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return fake_version(tmp_path / "model" / "1").parent


def test_an_unreachable_endpoint_is_named(
    base: Path, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's retries, standard config
    with pytest.raises(StorageError) as error:
        push(base, "s3://bucket/model")
    message = str(error.value)
    assert message.startswith(
        f"Listing s3://bucket/model failed: cannot reach the s3:// endpoint (Could not connect to "
        f'the endpoint URL: "{endpoint}/bucket'
    ), message
    assert "AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or endpoint_url in ~/.aws/config" in message


def test_refused_credentials_are_named(
    base: Path, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto checking credentials against its IAM, where no key exists."""
    with S3Server(authenticate=True) as checking:
        monkeypatch.setenv("AWS_ENDPOINT_URL", checking.endpoint)
        with pytest.raises(StorageError) as error:
            push(base, "s3://bucket/model")
    assert str(error.value).startswith(
        "Listing s3://bucket/model failed: access refused (InvalidAccessKeyId: The AWS Access "
        "Key Id you provided does not exist in our records.). Credentials come from "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    ), error.value


def test_missing_credentials_are_named(
    base: Path, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key in the environment nor in the (emptied) config files; no instance metadata."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError) as error:
        push(base, "s3://bucket/model")
    assert str(error.value).startswith(
        "Listing s3://bucket/model failed: no credentials found (Unable to locate credentials). "
        "Credentials come from AWS_ACCESS_KEY_ID"
    ), error.value
