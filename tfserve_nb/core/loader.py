"""How one servable version is loaded and unloaded (``Loader``)."""

from __future__ import annotations

import abc
from typing import Any


class Loader(abc.ABC):
    """Loads one version. The manager calls ``load`` at most once at a time, then ``unload``
    after the last request using the servable has finished; never both concurrently.

    Creating a loader must be cheap: sources create them on every poll, and the manager
    discards the ones for versions it already manages.
    """

    @abc.abstractmethod
    def load(self) -> None:
        """Load the servable; raise on failure (the manager records the error and may retry)."""

    @abc.abstractmethod
    def unload(self) -> None:
        """Release what ``load`` acquired. Only called after a successful ``load``."""

    @abc.abstractmethod
    def servable(self) -> Any:
        """The loaded object requests use. Only valid between ``load`` and ``unload``."""
