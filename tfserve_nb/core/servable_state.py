"""The states a servable version passes through, as ``GetModelStatus`` reports them.

Transitions (``ServableState::ManagerState``)::

    START ──► LOADING ──► AVAILABLE ──► UNLOADING ──► END
                 │                                      ▲
                 └──────────── load failed ─────────────┘   (END with a non-OK status)

``UNKNOWN`` is never recorded by the manager; it exists for protocol completeness.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .servable_id import ServableId
from .status import Code


class ManagerState(enum.IntEnum):
    """Numbered as ``ModelVersionStatus.State`` in ``get_model_status.proto``."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class ServableState:
    """A version's state and, for a failed load, the error (``code``/``message``)."""

    id: ServableId
    state: ManagerState
    code: Code = Code.OK
    message: str = ""
