"""Servable version policies: which versions of a stream are aspired.

Mirrors ``FileSystemStoragePathSourceConfig.ServableVersionPolicy``: ``latest {num_versions}``
(the default, with one version; 0 counts as 1), ``all {}`` and ``specific {versions}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Latest:
    """The ``num_versions`` highest versions present."""

    num_versions: int = 1

    def select(self, versions: Iterable[int]) -> set[int]:
        n = max(1, self.num_versions)
        return set(sorted(set(versions), reverse=True)[:n])

    def __str__(self) -> str:
        return f"latest {{ num_versions: {max(1, self.num_versions)} }}"


@dataclass(frozen=True)
class All:
    """Every version present."""

    def select(self, versions: Iterable[int]) -> set[int]:
        return set(versions)

    def __str__(self) -> str:
        return "all {}"


@dataclass(frozen=True)
class Specific:
    """Exactly the listed versions, those of them that are present."""

    versions: tuple[int, ...]

    def select(self, versions: Iterable[int]) -> set[int]:
        return set(versions) & set(self.versions)

    def __str__(self) -> str:
        return "specific { " + " ".join(f"versions: {v}" for v in self.versions) + " }"


VersionPolicy = Latest | All | Specific
