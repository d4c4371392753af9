"""A model repository in object storage: its versions, and the objects pushes keep beside them.

Under a base path ``<uri>/`` (the package docstring tells when each appears):

- ``<version>/`` — a version: its objects, complete once ``<version>/saved_model.pb`` exists
  (:data:`COMMIT_FILE`). A child whose name parses as a version (``3``, ``0003``: the one parser,
  :func:`~tfserve_nb.core.servable_id.parse_version_number`, as TF Serving's source) names that
  version, complete or not; a child file of such a name is a version that is not complete.
- ``.tmp-push-<version>-<random>/`` — one push's staging area: ``owner.json`` (its
  :class:`PushOwner`, written first) and ``files/<relative path>`` for every file of the version
  but ``saved_model.pb``.
- ``.push-claim-<version>`` — a :class:`PushOwner` record created with the store's atomic
  create: the one push allowed to publish that version.

Neither hidden name parses as a version, so TF Serving's file-system source skips them.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import json
import os
import posixpath
import re
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from ..core.servable_id import parse_version_number
from ..processes import namespace_tag, process_alive, process_start_token
from .filesystem import ObjectStore, missing_bucket, storage_errors

__all__ = [
    "CLAIM_PREFIX",
    "COMMIT_FILE",
    "STAGING_FILES",
    "STAGING_OWNER",
    "STAGING_PREFIX",
    "Listing",
    "PushOwner",
    "RemoteRepository",
    "RemoteVersion",
]

COMMIT_FILE = "saved_model.pb"
"""The file whose presence makes a version complete: written last, by an atomic create."""
STAGING_PREFIX = ".tmp-push-"
"""Prefix of a push's staging area (never a version name)."""
STAGING_OWNER = "owner.json"
"""The :class:`PushOwner` record inside a staging area."""
STAGING_FILES = "files"
"""The folder of a staging area holding the version's files."""
CLAIM_PREFIX = ".push-claim-"
"""Prefix of the object claiming a version for one push."""

_STAGING_NAME = re.compile(rf"{re.escape(STAGING_PREFIX)}(?P<version>[0-9]+)-[0-9a-f]+")
_CLAIM_NAME = re.compile(rf"{re.escape(CLAIM_PREFIX)}(?P<version>[0-9]+)")


@dataclass(frozen=True)
class PushOwner:
    """The process of a push, recorded in its staging area and its claim.

    A push is *abandoned* when it ran in this host, boot and pid namespace
    (:func:`~tfserve_nb.processes.namespace_tag`) and its process, named by pid and start time,
    no longer runs. A push of another machine or container is never judged abandoned: whether
    it still runs cannot be told from here.
    """

    host: str
    namespace: str
    pid: int
    start: str
    user: str
    started: str
    staging: str = ""

    @classmethod
    def current(cls, staging: str = "") -> PushOwner:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = ""
        return cls(
            socket.gethostname(),
            namespace_tag(),
            os.getpid(),
            process_start_token(os.getpid()),
            user,
            datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            staging,
        )

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PushOwner | None:
        """The record in ``data``, or ``None`` if it is not one."""
        try:
            owner = cls(**json.loads(data))
        except (ValueError, TypeError):  # not JSON, not an object, other fields
            return None
        text = (owner.host, owner.namespace, owner.start, owner.user, owner.started, owner.staging)
        valid = isinstance(owner.pid, int) and all(isinstance(value, str) for value in text)
        return owner if valid else None

    def here(self) -> bool:
        """Whether the push ran in this host, boot and pid namespace."""
        return self.namespace == namespace_tag()

    def abandoned(self) -> bool:
        return self.here() and not process_alive(self.pid, self.start)

    def describe(self) -> str:
        """Who and when, and whether it still runs, for messages."""
        who = f"process {self.pid} of {self.user or 'an unknown user'} on {self.host}"
        if not self.here():
            state = "another machine or container: whether it still runs is unknown here"
        elif process_alive(self.pid, self.start):
            state = "still running"
        else:
            state = "no longer running"
        return f"{who}, started {self.started} ({state})"


@dataclass(frozen=True)
class RemoteVersion:
    """A version in the repository: ``paths`` are the children naming it (``3``, ``0003``),
    ``complete`` whether one of them holds :data:`COMMIT_FILE`."""

    number: int
    paths: tuple[str, ...]
    complete: bool


@dataclass(frozen=True)
class Listing:
    """What the base path held when listed: versions, claims (version → claim's path) and
    staging areas (path → the version it stages)."""

    versions: Mapping[int, RemoteVersion] = field(default_factory=dict)
    claims: Mapping[int, str] = field(default_factory=dict)
    staging: Mapping[str, int] = field(default_factory=dict)

    def numbers(self) -> set[int]:
        """Every version named: published (complete or not), claimed or being staged."""
        return {*self.versions, *self.claims, *self.staging.values()}


class RemoteRepository:
    """A base path in object storage read as a model repository. Every method asks the store
    (nothing is cached) and raises :class:`~tfserve_nb.errors.StorageError` as
    :func:`~tfserve_nb.storage.filesystem.storage_errors` maps them."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @property
    def name(self) -> str:
        """The base path's last component: the model's name by default."""
        return posixpath.basename(self.store.root)

    def version_path(self, number: int) -> str:
        return self.store.path(str(number))

    def claim_path(self, number: int) -> str:
        return self.store.path(f"{CLAIM_PREFIX}{number}")

    def new_staging_path(self, number: int) -> str:
        return self.store.path(f"{STAGING_PREFIX}{number}-{secrets.token_hex(6)}")

    def scan(self) -> Listing:
        """List the base path: its versions (each checked for :data:`COMMIT_FILE`), claims and
        staging areas. An empty or missing base path is an empty repository; a missing bucket
        raises."""
        doing = f"Listing {self.store.uri}"
        fs = self.store.fs
        with storage_errors(self.store, doing):
            try:
                entries = fs.ls(self.store.root, detail=True)
            except FileNotFoundError:
                if not fs.exists(self.store.bucket):
                    raise missing_bucket(self.store, doing) from None
                entries = []
            found: dict[int, list[tuple[str, bool]]] = {}
            claims: dict[int, str] = {}
            staging: dict[str, int] = {}
            for entry in entries:
                path = str(entry["name"]).rstrip("/")
                child = posixpath.basename(path)
                is_dir = entry.get("type") == "directory"
                number = parse_version_number(child)
                if number is not None:
                    complete = is_dir and fs.exists(posixpath.join(path, COMMIT_FILE))
                    found.setdefault(number, []).append((path, complete))
                elif is_dir and (match := _STAGING_NAME.fullmatch(child)):
                    staging[path] = int(match["version"])
                elif not is_dir and (match := _CLAIM_NAME.fullmatch(child)):
                    claims[int(match["version"])] = path
        versions = {
            number: RemoteVersion(
                number, tuple(path for path, _ in named), any(c for _, c in named)
            )
            for number, named in found.items()
        }
        return Listing(versions, claims, staging)

    def next_version(self, listing: Listing) -> int:
        """One more than the highest version ``listing`` names (complete, partial, claimed or
        staged), or 1."""
        return max([0, *listing.numbers()]) + 1

    def read(self, path: str) -> bytes | None:
        """The bytes of object ``path``, or ``None`` if there is none."""
        with storage_errors(self.store, f"Reading {self.store.uri_of(path)}"):
            try:
                return bytes(self.store.fs.cat_file(path))
            except FileNotFoundError:
                return None

    def owner_at(self, path: str) -> PushOwner | None:
        """The :class:`PushOwner` recorded at ``path``; ``None`` if there is none."""
        data = self.read(path)
        return None if data is None else PushOwner.from_json(data)

    def create(self, path: str, data: bytes | None = None, *, local: str | None = None) -> bool:
        """Create the object ``path`` from ``data`` or the local file ``local``, only if it does
        not exist: the store's atomic create (S3 ``If-None-Match: *``, GCS
        ``ifGenerationMatch=0``). ``False`` when it existed (or a concurrent create of it was in
        flight: S3's ``409 ConditionalRequestConflict``)."""
        fs = self.store.fs
        with storage_errors(self.store, f"Creating {self.store.uri_of(path)}"):
            try:
                if local is None:
                    fs.pipe_file(path, data or b"", mode="create")
                else:
                    fs.put_file(local, path, mode="create")
            except FileExistsError:
                return False
            except OSError as exc:
                if _conflict(exc):
                    return False
                raise
        return True

    def remove(self, paths: Iterable[str], *, recursive: bool = False) -> None:
        """Delete ``paths`` (folders with everything in them if ``recursive``); those already
        gone are no error."""
        listed = list(paths)
        if not listed:
            return
        more = f" and {len(listed) - 1} more" if len(listed) > 1 else ""
        doing = f"Deleting {self.store.uri_of(listed[0])}{more}"
        with storage_errors(self.store, doing), contextlib.suppress(FileNotFoundError):
            self.store.fs.rm(listed, recursive=recursive)

    def remove_abandoned(self, listing: Listing) -> list[str]:
        """Remove what interrupted pushes left that no push needs any more; return the paths.

        - a staging area whose owner is abandoned (:meth:`PushOwner.abandoned`), or that has no
          ``owner.json`` (written first, so only a half-removed area lacks it);
        - a claim of a complete version (its push was stopped after publishing), and a claim of
          an abandoned owner whose version has no object at all.

        Never touched: a version's objects (complete or partial), anything whose record is not
        a :class:`PushOwner`, and everything of a push that may still run (alive here, or of
        another machine or container). Reading a record and deleting its object are two
        requests: a sweep stopped between them for as long as another push takes to stage a
        version could delete that push's new claim of the same version.
        """
        removed: list[str] = []
        for path in listing.staging:
            data = self.read(posixpath.join(path, STAGING_OWNER))
            owner = None if data is None else PushOwner.from_json(data)
            if data is None or (owner is not None and owner.abandoned()):
                self.remove([path], recursive=True)
                removed.append(path)
        for number, path in listing.claims.items():
            version = listing.versions.get(number)
            if version is not None:
                stale = version.complete
            else:
                owner = self.owner_at(path)
                stale = owner is not None and owner.abandoned()
            if stale:
                self.remove([path])
                removed.append(path)
        return removed


def _conflict(exc: OSError) -> bool:
    """S3's answer to a conditional write racing another one on the same key."""
    response = getattr(exc.__cause__, "response", None)
    return isinstance(response, dict) and (
        response.get("Error", {}).get("Code") == "ConditionalRequestConflict"
    )
