"""A servable's identity: its stream name and version (``ServableId``)."""

from __future__ import annotations

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
