"""A weighted split of requests over versions and labels, done by the caller.

TF Serving routes each request to the version or label its ``ModelSpec`` names and has no
weighted routing of its own (users ask for it on its issue tracker). A canary share is therefore
the client choosing, request by request, which label or version to ask for: :class:`TrafficSplit`
makes that choice, and ``ServingClient.predict(..., split=...)``, ``ModelServer.predict(...,
split=...)`` and the dashboard's ``start_traffic(split=...)`` use it. Nothing changes on the
server, so it works the same against every backend.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..errors import InvalidArgumentError

__all__ = ["SplitLike", "TrafficSplit"]

TargetName = int | str
"""A version number, or a label."""


class TrafficSplit:
    """Which version or label each next request asks for, in proportion to ``weights``.

    ``weights`` maps labels (``str``) and versions (``int``) to non-negative numbers, e.g.
    ``{"stable": 90, "canary": 10}`` or ``{1: 3, 2: 1}``; at least one must be positive.
    Targets are taken by smooth weighted round robin: deterministic and evenly spread, so that
    among any ``n`` consecutive requests a target with share ``s`` gets ``n * s`` of them, give or
    take one. Thread-safe.
    """

    def __init__(self, weights: Mapping[TargetName, float]) -> None:
        if not weights:
            raise InvalidArgumentError("a traffic split needs at least one label or version")
        for name, weight in weights.items():
            if isinstance(name, bool) or not isinstance(name, int | str) or name == "":
                raise InvalidArgumentError(
                    f"traffic split target {name!r}: use a label (str) or a version (int)"
                )
            if not weight >= 0:
                raise InvalidArgumentError(
                    f"traffic split weight of {name!r} is {weight!r}; must be >= 0"
                )
        total = float(sum(weights.values()))
        if total <= 0:
            raise InvalidArgumentError(f"traffic split weights {dict(weights)} add up to 0")
        self.weights: dict[TargetName, float] = dict(weights)
        self._total = total
        self._current = dict.fromkeys(self.weights, 0.0)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, split: SplitLike) -> TrafficSplit:
        """``split`` itself, or a new split with those weights."""
        return split if isinstance(split, TrafficSplit) else cls(split)

    @property
    def shares(self) -> dict[TargetName, float]:
        """Each target's share of the requests (they add up to 1)."""
        return {name: weight / self._total for name, weight in self.weights.items()}

    def next(self) -> tuple[int | None, str | None]:
        """``(version, label)`` for the next request: one of them is set."""
        with self._lock:
            for name, weight in self.weights.items():
                self._current[name] += weight
            chosen = max(self._current, key=self._current.__getitem__)
            self._current[chosen] -= self._total
        return (chosen, None) if isinstance(chosen, int) else (None, chosen)

    def describe(self) -> str:
        """Human form, e.g. ``label stable 90 % · label canary 10 %``."""
        return " · ".join(
            f"{'version' if isinstance(name, int) else 'label'} {name} {100 * share:.0f} %"
            for name, share in self.shares.items()
        )

    def __repr__(self) -> str:
        return f"TrafficSplit({self.weights!r})"


SplitLike = TrafficSplit | Mapping[TargetName, float]
"""A split, or the weights to make one of (:meth:`TrafficSplit.of`)."""
