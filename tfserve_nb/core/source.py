"""Sources emit aspired versions; source adapters turn what they emit into loaders.

An *aspired versions callback* takes a servable name and the complete list of versions that
should be loaded for it (``ServableData`` each). Omitting a version that was aspired before means
it should be unloaded; an empty list unloads the whole stream. Callbacks may be called from any
thread, repeatedly with the same list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .loader import Loader
from .servable_id import ServableData, ServableId

AspiredVersionsCallback = Callable[[str, Sequence[ServableData[Any]]], None]


class SourceAdapter:
    """Converts each emitted datum (e.g. a path) into a :class:`Loader` and forwards the list.

    ``convert`` must be cheap and must not load anything; it is called on every emission.
    """

    def __init__(
        self,
        convert: Callable[[ServableId, Any], Loader],
        target: Callable[[str, Sequence[ServableData[Loader]]], None],
    ) -> None:
        self._convert = convert
        self._target = target

    def __call__(self, servable_name: str, versions: Sequence[ServableData[Any]]) -> None:
        self._target(
            servable_name, [ServableData(v.id, self._convert(v.id, v.data)) for v in versions]
        )
