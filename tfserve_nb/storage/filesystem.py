"""Opening a base path in object storage, and what its libraries raise as :class:`StorageError`.

:func:`open_store` turns ``s3://bucket/prefix`` (s3fs) or ``gs://bucket/prefix`` (gcsfs) into an
:class:`ObjectStore`: the fsspec file system and the base path's fsspec path. Credentials,
region and endpoint are the library's own: for S3 botocore's chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``~/.aws/credentials``,
``~/.aws/config``, ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` for an S3-compatible server,
``AWS_DEFAULT_REGION``), for GCS google-auth's application default credentials.
``storage_options`` go to the file system's constructor unchanged (``endpoint_url=...``,
``anon=True``, ``profile=...``), except that listings are never cached: every listing here
asks the store.

:func:`storage_errors` is where what those libraries raise becomes the package's
:class:`~tfserve_nb.errors.StorageError`, naming what was wrong and where it comes from.
"""

from __future__ import annotations

import contextlib
import importlib
import posixpath
import sys
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import StorageError, TfServeNbError

__all__ = [
    "SCHEMES",
    "ObjectStore",
    "Scheme",
    "is_remote",
    "missing_bucket",
    "open_store",
    "storage_errors",
]


@dataclass(frozen=True)
class Scheme:
    """A URI scheme: the fsspec protocol serving it, its library and the pip extra bringing it."""

    protocol: str
    package: str
    extra: str


SCHEMES: Mapping[str, Scheme] = {
    "s3": Scheme("s3", "s3fs", "s3"),
    "gs": Scheme("gcs", "gcsfs", "gcs"),
}
"""The object stores a model repository may live in, by URI scheme."""

_UNCACHED = {"use_listings_cache": False, "skip_instance_cache": True}
"""Options every file system is opened with: a push decides on what the store holds *now*."""


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a URI (``scheme://...``) rather than a local path. A ``PathLike``
    never is (``pathlib`` folds ``//``)."""
    return isinstance(path, str) and "://" in path


@dataclass(frozen=True)
class ObjectStore:
    """A base path in object storage, opened.

    ``uri`` is the base path as given, without a trailing ``/``; ``root`` its fsspec path
    (``bucket/prefix``); ``fs`` the fsspec file system. Paths below are fsspec paths
    (:meth:`path`), shown to people as URIs (:meth:`uri_of`).
    """

    uri: str
    scheme: str
    bucket: str
    root: str
    fs: Any

    def path(self, *parts: str) -> str:
        """The fsspec path of ``parts`` below the base path."""
        return posixpath.join(self.root, *parts)

    def uri_of(self, path: str) -> str:
        """The URI of fsspec path ``path``."""
        return f"{self.scheme}://{path}"


def open_store(uri: str, storage_options: Mapping[str, Any] | None = None) -> ObjectStore:
    """The :class:`ObjectStore` of ``uri`` (``s3://bucket[/prefix]`` or ``gs://...``).

    Raises :class:`~tfserve_nb.errors.StorageError` for an unsupported scheme, a URI with an
    empty bucket, an empty, ``.`` or ``..`` path component, a query or a fragment, and when the
    scheme's library is not installed (naming the pip extra). Sends no request.
    """
    parts = urllib.parse.urlsplit(uri)
    scheme = SCHEMES.get(parts.scheme)
    if scheme is None:
        raise StorageError(
            f"Unsupported storage URI {uri!r}: a model repository in object storage is "
            f"{' or '.join(f'{name}://bucket/prefix' for name in SCHEMES)}."
        )
    prefix = parts.path.removeprefix("/").removesuffix("/")
    components = prefix.split("/") if prefix else []
    if (
        not parts.netloc
        or parts.query
        or parts.fragment
        or any(c in ("", ".", "..") for c in components)
    ):
        raise StorageError(
            f"Not a usable storage URI: {uri!r}. Write {parts.scheme}://<bucket>/<prefix>, with "
            "no empty, '.' or '..' path component and no '?' or '#'."
        )
    try:
        fsspec = importlib.import_module("fsspec")
        fs_class = fsspec.get_filesystem_class(scheme.protocol)
    except ImportError as exc:
        raise StorageError(
            f"{parts.scheme}:// storage needs the {scheme.package} package: "
            f"pip install 'tfserve-nb[{scheme.extra}]' ({exc})"
        ) from exc
    fs = fs_class(**{**(storage_options or {}), **_UNCACHED})
    root = posixpath.join(parts.netloc, prefix) if prefix else parts.netloc
    return ObjectStore(f"{parts.scheme}://{root}", parts.scheme, parts.netloc, root, fs)


@contextlib.contextmanager
def storage_errors(store: ObjectStore, doing: str) -> Iterator[None]:
    """Run requests to ``store`` (``doing`` says what for: "listing s3://b/m") and raise what
    the library raised as :class:`~tfserve_nb.errors.StorageError`.

    Recognised: no credentials found; the endpoint unreachable; access refused (bad or expired
    credentials, no permission); the bucket missing; any other ``OSError`` (the store's answer,
    with its code). The package's own errors and anything else pass unchanged.
    """
    try:
        yield
    except TfServeNbError:
        raise
    except Exception as exc:
        mapped = _mapped(exc, store, doing)
        if mapped is None:
            raise
        raise mapped from exc


def _mapped(exc: Exception, store: ObjectStore, doing: str) -> StorageError | None:
    where = f"{doing} failed"
    if _is(exc, "botocore.exceptions", "NoCredentialsError") or _is(
        exc, "google.auth.exceptions", "DefaultCredentialsError"
    ):
        return StorageError(f"{where}: no credentials found ({exc}). {_credentials_hint(store)}")
    if _unreachable(exc):
        return StorageError(
            f"{where}: cannot reach the {store.scheme}:// endpoint ({exc}). {_endpoint_hint(store)}"
        )
    code, message = _error_code(exc)
    if isinstance(exc, PermissionError):
        return StorageError(
            f"{where}: access refused ({code or 'Forbidden'}: {message}). "
            f"{_credentials_hint(store)}"
        )
    if isinstance(exc, FileNotFoundError) and code == "NoSuchBucket":
        return missing_bucket(store, doing)
    if isinstance(exc, OSError):
        return StorageError(f"{where}: {type(exc).__name__}: {code + ': ' if code else ''}{exc}")
    return None


def missing_bucket(store: ObjectStore, doing: str) -> StorageError:
    """The error for ``store``'s bucket not existing."""
    return StorageError(
        f"{doing} failed: bucket {store.bucket!r} does not exist. Create it first (tfserve-nb "
        "creates no buckets), or correct the URI."
    )


def _is(exc: BaseException, module: str, name: str) -> bool:
    """Whether ``exc`` is ``module.name``, looked up only if that library is loaded."""
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def _unreachable(exc: BaseException) -> bool:
    """No connection to the endpoint: botocore's connection errors, aiohttp's (gcsfs), or the
    OS's refused or reset connection."""
    return (
        _is(exc, "botocore.exceptions", "EndpointConnectionError")
        or _is(exc, "botocore.exceptions", "ConnectTimeoutError")
        or _is(exc, "aiohttp", "ClientConnectionError")
        or isinstance(exc, ConnectionError)
    )


def _error_code(exc: BaseException) -> tuple[str, str]:
    """The store's error code and message behind ``exc`` (s3fs keeps botocore's
    ``ClientError`` as the cause), or ``("", str(exc))``."""
    cause = exc.__cause__
    error = getattr(cause, "response", None)
    if isinstance(error, dict) and isinstance(error.get("Error"), dict):
        return str(error["Error"].get("Code", "")), str(error["Error"].get("Message", exc))
    return "", str(exc)


def _credentials_hint(store: ObjectStore) -> str:
    if store.scheme == "s3":
        return (
            "Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
            "AWS_SESSION_TOKEN), AWS_PROFILE and ~/.aws/credentials; tfserve-nb stores none. For "
            "a public bucket pass storage_options={'anon': True}."
        )
    return (
        "Credentials come from GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth "
        "application-default login`; tfserve-nb stores none."
    )


def _endpoint_hint(store: ObjectStore) -> str:
    if store.scheme == "s3":
        return (
            "An S3-compatible server's URL comes from storage_options={'endpoint_url': ...}, "
            "AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or endpoint_url in ~/.aws/config; without "
            "one it is AWS's. Check that it runs and that the URL is right."
        )
    return "Check the network and STORAGE_EMULATOR_HOST if you use an emulator."
