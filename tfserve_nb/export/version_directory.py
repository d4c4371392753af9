"""Where an export writes: the base path, its numbered version directories, and the atomic
move of a staged version into place.

:func:`version_dirs` reads the versions there with the one version-name parser
(:func:`~tfserve_nb.core.servable_id.parse_version_number`), so a directory is a version to the
export exactly when it is one to the server. Staged versions live in ``.tmp-export-*``
siblings; :func:`move_into_place` renames one in, keeping a replaced version until the new one
is there and putting it back if that fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.servable_id import parse_version_number
from ..errors import ExportError

TEMP_PREFIX = ".tmp-export-"
"""Prefix of a staged version's directory (never an integer, so no server loads it)."""
_REPLACED_PREFIX = ".tmp-replaced-"


def check_version(version: Any) -> int | None:
    """``version`` as an int (``None`` stays ``None``); non-integers and values < 1 are refused."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int | np.integer):
        raise ExportError(
            f"version must be a positive integer or None (next free version); got {version!r} "
            f"of type {type(version).__name__}."
        )
    if version < 1:
        raise ExportError(
            f"version must be a positive integer (TF Serving versions start at 1); got {version}."
        )
    return int(version)


def prepare_base_path(base_path: str | os.PathLike[str]) -> Path:
    """The absolute base path, created if missing; :class:`ExportError` if it is not a directory."""
    base = Path(os.path.abspath(os.path.expanduser(os.fspath(base_path))))
    if base.exists() and not base.is_dir():
        raise ExportError(
            f"base_path {base} is a file, not a directory. Pass the directory that holds (or "
            f"will hold) the numbered version folders; it is created if missing."
        )
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Could not create base_path {base}: {exc}") from exc
    return base


def version_dirs(base: Path) -> dict[int, list[Path]]:
    """Version number → the directories under ``base`` naming it (``1`` and ``0001`` both do)."""
    versions: dict[int, list[Path]] = {}
    for child in sorted(base.iterdir()):
        version = parse_version_number(child.name)
        if version is not None and child.is_dir():
            versions.setdefault(version, []).append(child)
    return versions


def umask() -> int:
    """This process's umask, read without changing it where Linux tells it (``os.umask`` sets
    it, for a moment, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def move_into_place(staged: Path, target: Path, replaced: Sequence[Path]) -> None:
    """Rename ``staged`` to ``target`` after moving each of ``replaced`` aside, then delete those.

    If the final rename fails, the moved directories are renamed back before the error
    propagates.
    """
    aside: list[tuple[Path, Path]] = []
    try:
        for old in replaced:
            hidden = old.with_name(f"{_REPLACED_PREFIX}{old.name}-{secrets.token_hex(4)}")
            os.rename(old, hidden)
            aside.append((old, hidden))
        if target.exists():
            raise ExportError(
                f"{target} appeared while exporting (another export into the same base path?). "
                f"Export again, or pass an explicit version."
            )
        os.rename(staged, target)
    except BaseException:
        for old, hidden in reversed(aside):
            os.rename(hidden, old)
        raise
    for _, hidden in aside:
        shutil.rmtree(hidden, ignore_errors=True)
