"""What a client remembers of served signatures, per version, so that a request is built for
the version that will answer it without a metadata round trip in the steady state.
"""

from __future__ import annotations

import threading

from .protocol.signature import Signature

Target = tuple[str, int | None, str | None]
"""A request target: model name, and a version or a label or neither (the latest)."""


class SignatureCache:
    """What a client knows of served signatures (see :mod:`tfserve_nb.client`). Thread-safe.

    ``_of_version[(model, version)]`` holds a version's signature map; ``_resolved[target]``
    the version a latest or label target last resolved to (a version target is that version).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._of_version: dict[tuple[str, int], dict[str, Signature]] = {}
        self._resolved: dict[Target, int] = {}

    def lookup(self, target: Target) -> tuple[int, dict[str, Signature]] | None:
        """The version ``target`` last resolved to and its signatures, if both are known."""
        name, version, _ = target
        with self._lock:
            resolved = version if version is not None else self._resolved.get(target)
            if resolved is None:
                return None
            signatures = self._of_version.get((name, resolved))
        return None if signatures is None else (resolved, signatures)

    def learn(self, target: Target, version: int, signatures: dict[str, Signature]) -> None:
        """``GetModelMetadata`` for ``target`` described ``version`` with ``signatures``."""
        with self._lock:
            self._of_version[(target[0], version)] = signatures
            self._resolved[target] = version

    def answered(self, target: Target, version: int) -> None:
        """``version`` answered a request for ``target``."""
        with self._lock:
            self._resolved[target] = version

    def clear(self) -> None:
        with self._lock:
            self._of_version.clear()
            self._resolved.clear()
