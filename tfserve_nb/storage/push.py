"""Pushing a local repository's versions to object storage: :func:`push`, and
:func:`push_version` for one version (what ``export_model(model, "s3://...")`` calls).

The steps of one version, and what each leaves if the push stops there, are in the package
docstring; :func:`refusal` is the one place that words why a version cannot be pushed.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.servable_id import list_versions
from ..errors import InvalidArgumentError, StorageError, VersionExistsError
from .filesystem import open_store, storage_errors
from .repository import (
    COMMIT_FILE,
    STAGING_FILES,
    STAGING_OWNER,
    Listing,
    PushOwner,
    RemoteRepository,
)

__all__ = [
    "listing_for_push",
    "local_versions",
    "open_repository",
    "push",
    "push_version",
    "refusal",
]

log = logging.getLogger(__name__)


def push(
    base_path: str | os.PathLike[str],
    uri: str,
    *,
    versions: Iterable[int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[int, str]:
    """Upload the numeric version folders of the local ``base_path`` to ``uri/<version>/``.

    ``uri`` is ``s3://bucket/prefix`` (or ``gs://bucket/prefix``): the model's base path in
    object storage, as TF Serving and KServe's ``storageUri`` take it. ``versions`` picks
    versions (default: every version folder; ``0003`` is pushed as ``3``). Each version must
    hold ``saved_model.pb``. ``storage_options`` go to the fsspec file system
    (:func:`~tfserve_nb.storage.filesystem.open_store`); credentials and endpoint otherwise come
    from the store's standard environment and config files.

    Before uploading anything, leftovers of interrupted pushes that no running push needs are
    removed (:meth:`~tfserve_nb.storage.repository.RemoteRepository.remove_abandoned`) and
    every chosen version is checked: one already in the repository, complete or partial, or
    claimed by another push, is refused with :class:`~tfserve_nb.errors.VersionExistsError`
    (the lowest such version; the message names the others) and nothing is uploaded. Versions
    are then pushed one at a time in increasing order (:func:`push_version`); if one fails, those
    before it stay pushed. Returns version → its URI.

    Raises :class:`~tfserve_nb.errors.InvalidArgumentError` for a missing ``base_path``, a
    version it does not hold or one without ``saved_model.pb``, and
    :class:`~tfserve_nb.errors.StorageError` when the store cannot be used (library missing,
    endpoint unreachable, bucket missing, credentials missing or refused).
    """
    local = local_versions(base_path, versions)
    repository = open_repository(uri, storage_options)
    listing = listing_for_push(repository)
    refused = [error for number in local if (error := refusal(repository, listing, number))]
    if refused:
        others = ", ".join(str(error.version) for error in refused[1:])
        also = f" (version {others} refused too)" if others else ""
        raise VersionExistsError(
            f"{refused[0]} Nothing was uploaded{also}.",
            uri=refused[0].uri,
            version=refused[0].version,
            state=refused[0].state,
        )
    return {number: push_version(repository, number, path) for number, path in local.items()}


def open_repository(uri: str, storage_options: Mapping[str, Any] | None = None) -> RemoteRepository:
    """The :class:`~tfserve_nb.storage.repository.RemoteRepository` at ``uri`` (no request
    sent)."""
    return RemoteRepository(open_store(uri, storage_options))


def listing_for_push(repository: RemoteRepository) -> Listing:
    """What ``repository`` holds once the leftovers no push needs are removed
    (:meth:`~tfserve_nb.storage.repository.RemoteRepository.remove_abandoned`)."""
    repository.remove_abandoned(repository.scan())
    return repository.scan()


def local_versions(
    base_path: str | os.PathLike[str], versions: Iterable[int] | None = None
) -> dict[int, Path]:
    """Version → folder of the local repository ``base_path``, in increasing order: all its
    version folders, or those of ``versions``. :class:`~tfserve_nb.errors.InvalidArgumentError`
    if ``base_path`` is no folder, holds no version (or not one asked for), or a chosen version
    lacks ``saved_model.pb``."""
    base = Path(os.path.abspath(os.path.expanduser(os.fspath(base_path))))
    if not base.is_dir():
        raise InvalidArgumentError(
            f"base_path {base} is not a directory: pass the local model repository holding the "
            "numbered version folders (what export_model writes)."
        )
    found = {number: Path(path) for number, path in sorted(list_versions(str(base)).items())}
    if versions is None:
        chosen = found
    else:
        wanted = [_version_number(v) for v in versions]
        missing = sorted({v for v in wanted if v not in found})
        if missing:
            raise InvalidArgumentError(
                f"{base} has no version {', '.join(map(str, missing))} (it has "
                f"{sorted(found) or 'none'})."
            )
        chosen = {v: found[v] for v in sorted(set(wanted))}
    if not chosen:
        raise InvalidArgumentError(f"{base} holds no version folder (1/, 2/, ...) to push.")
    for number, folder in chosen.items():
        if not (folder / COMMIT_FILE).is_file():
            raise InvalidArgumentError(
                f"Version {number} at {folder} has no {COMMIT_FILE}: it is not a complete "
                "SavedModel, and a version without it is never pushed."
            )
    return chosen


def _version_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"versions must be positive integers; got {value!r}.")
    return value


def refusal(
    repository: RemoteRepository, listing: Listing, number: int
) -> VersionExistsError | None:
    """Why version ``number`` cannot be pushed into ``repository`` as ``listing`` shows it,
    or ``None`` if nothing there stands in its way (staging areas never do)."""
    store = repository.store
    uri = store.uri_of(repository.version_path(number))
    version = listing.versions.get(number)
    claim = listing.claims.get(number)
    owner = repository.owner_at(claim) if claim is not None else None
    next_free = repository.next_version(listing)
    if version is not None and version.complete:
        return VersionExistsError(
            f"Version {number} already exists at {store.uri_of(version.paths[0])}: versions in "
            f"object storage are never overwritten. Push it as another version (the next free "
            f"one is {next_free}).",
            uri=uri,
            version=number,
            state="complete",
        )
    if claim is not None and owner is not None and owner.here() and not owner.abandoned():
        return _being_pushed(store.uri_of(claim), uri, number, owner)  # publishing, maybe
    if version is not None:
        left_by = f" It was claimed by {owner.describe()}." if owner is not None else ""
        return VersionExistsError(
            f"Version {number} at {store.uri_of(version.paths[0])} is partial: it has objects "
            f"but no {COMMIT_FILE} (an interrupted push, or another writer).{left_by} Nothing of "
            f"it was touched. Push as another version (the next free one is {next_free}), or, "
            f"once nothing writes it any more, delete it "
            f"({_delete_command(store.uri_of(version.paths[0]))}) and push again.",
            uri=uri,
            version=number,
            state="partial",
        )
    if claim is not None:
        return _being_pushed(store.uri_of(claim), uri, number, owner)
    return None


def _delete_command(uri: str) -> str:
    """The command line deleting everything under ``uri``."""
    if uri.startswith("s3://"):
        return f"aws s3 rm --recursive {uri}/"
    return f"gcloud storage rm --recursive {uri}/"


def _being_pushed(
    claim_uri: str, uri: str, number: int, owner: PushOwner | None
) -> VersionExistsError:
    who = owner.describe() if owner is not None else "another push"
    return VersionExistsError(
        f"Version {number} at {uri} is being pushed by {who}; its claim is {claim_uri}. If that "
        f"push is gone, delete the claim and push again.",
        uri=uri,
        version=number,
        state="being pushed",
    )


def push_version(repository: RemoteRepository, number: int, folder: str | os.PathLike[str]) -> str:
    """Push the version in local ``folder`` as version ``number`` of ``repository``; return its
    URI. The steps are the package docstring's: stage, claim, check, publish, commit, clean up.

    Raises :class:`~tfserve_nb.errors.VersionExistsError` if the version is (or becomes)
    present or claimed before this push claims it; on any error, what this push created is
    removed (except a staging area or claim whose removal itself failed: the next push removes
    them once this process is gone).
    """
    store = repository.store
    fs = store.fs
    files = _relative_files(Path(folder))
    rest = [name for name in files if name != COMMIT_FILE]
    staging = repository.new_staging_path(number)
    target = repository.version_path(number)
    claim = repository.claim_path(number)
    owner = PushOwner.current(staging)
    uri = store.uri_of(target)
    claimed = committed = False
    published: list[str] = []
    try:
        with storage_errors(store, f"Uploading version {number} to {store.uri_of(staging)}"):
            fs.pipe_file(posixpath.join(staging, STAGING_OWNER), owner.to_json())
            if rest:
                fs.put(
                    [os.path.join(folder, name) for name in rest],
                    [posixpath.join(staging, STAGING_FILES, name) for name in rest],
                )
        claimed = repository.create(claim, owner.to_json())
        listing = repository.scan()
        if not claimed:
            raise refusal(repository, listing, number) or _being_pushed(
                store.uri_of(claim), uri, number, None
            )
        unclaimed = Listing(versions=listing.versions, staging=listing.staging)  # ours aside
        if (refused := refusal(repository, unclaimed, number)) is not None:
            raise refused
        published = [posixpath.join(target, name) for name in rest]
        with storage_errors(store, f"Publishing version {number} at {uri}"):
            if rest:
                fs.copy(
                    [posixpath.join(staging, STAGING_FILES, name) for name in rest],
                    published,
                    on_error="raise",
                )
        if not repository.create(
            posixpath.join(target, COMMIT_FILE), local=os.path.join(folder, COMMIT_FILE)
        ):
            published = []  # someone else's saved_model.pb now names these objects
            raise StorageError(
                f"{COMMIT_FILE} appeared at {uri} while this push published it, though it held "
                f"the claim: a writer that ignores claims wrote there. Check the version's "
                "objects before serving it."
            )
        committed = True
    finally:
        _clean_up(repository, [] if committed else published, staging, claim if claimed else None)
    return uri


def _relative_files(folder: Path) -> list[str]:
    """Every file below ``folder``, as ``/``-separated paths relative to it, sorted."""
    return sorted(
        path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()
    )


def _clean_up(
    repository: RemoteRepository, published: list[str], staging: str, claim: str | None
) -> None:
    """Remove a failed publish's objects, the staging area and the claim, in that order (a
    claim outliving its version's objects is removed by the next push); a failure to remove is
    logged, not raised."""
    steps: list[tuple[list[str], bool]] = [(published, False), ([staging], True)]
    if claim is not None:
        steps.append(([claim], False))
    for paths, recursive in steps:
        try:
            repository.remove(paths, recursive=recursive)
        except StorageError as exc:
            log.warning("could not clean up after pushing: %s", exc)
