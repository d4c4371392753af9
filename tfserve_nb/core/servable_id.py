"""A servable's identity: its stream name and version (``ServableId``), and which directories
under a base path are versions."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_VERSION_NAME = re.compile(r"\s*[+-]?[0-9]+\s*")  # what TF Serving's safe_strto64 accepts
_INT64 = range(-(2**63), 2**63)


def parse_version_number(name: str) -> int | None:
    """The version a directory called ``name`` holds, or ``None`` if it names none.

    As upstream's ``safe_strto64``: ASCII digits with an optional sign and surrounding
    whitespace, within int64 (``"1"``, ``"0001"`` and ``" +1"`` all name version 1; ``"1a"``,
    ``"²"`` and ``"v1"`` name none).
    """
    if not _VERSION_NAME.fullmatch(name):
        return None
    version = int(name)
    return version if version in _INT64 else None


def list_versions(base_path: str) -> dict[int, str]:
    """Numeric version directories under ``base_path`` (version → path). Raises ``OSError``
    when ``base_path`` cannot be listed."""
    versions: dict[int, str] = {}
    with os.scandir(base_path) as entries:
        for entry in entries:
            version = parse_version_number(entry.name)
            if version is not None and entry.is_dir():
                versions.setdefault(version, entry.path)
    return versions


def local_versions(base_path: str) -> list[int] | None:
    """The numeric version directories under ``base_path``, ascending; ``None`` when it is not a
    local directory (a ``gs://`` or ``s3://`` path, or one only a container sees)."""
    if not os.path.isdir(base_path):
        return None
    return sorted(list_versions(base_path))


@dataclass(frozen=True, order=True)
class ServableId:
    """One version of one servable stream."""

    name: str
    version: int

    def __str__(self) -> str:
        return f"{{name: {self.name} version: {self.version}}}"


@dataclass(frozen=True)
class ServableData(Generic[T]):
    """A servable id with the data a source emits for it (a path, then a loader)."""

    id: ServableId
    data: T
