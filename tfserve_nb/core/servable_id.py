"""A servable's identity: its stream name and version (``ServableId``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


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
