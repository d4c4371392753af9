"""What the client hands back: numpy-side views of TF Serving's answers.

:class:`PredictResult` is a ``PredictResponse`` (outputs as arrays, the answering version and
signature); :class:`VersionStatus` one ``ModelVersionStatus`` of ``GetModelStatus``, with the
state named as the core's :class:`~tfserve_nb.core.servable_state.ManagerState` names it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .core.servable_state import ManagerState

STATE_NAMES = {state.value: state.name for state in ManagerState}
"""``ModelVersionStatus.State`` numbers -> names, as the core's :class:`ManagerState` has them."""


@dataclass(frozen=True)
class VersionStatus:
    """One entry of ``GetModelStatus``: a version, its state and, after a failed load, the
    error (``error_code`` is the canonical code name, ``"OK"`` otherwise)."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


def available_versions(statuses: Iterable[VersionStatus]) -> set[int]:
    """The versions ``statuses`` (one ``GetModelStatus`` answer) report AVAILABLE."""
    return {s.version for s in statuses if s.state == ManagerState.AVAILABLE.name}


@dataclass(frozen=True)
class PredictResult:
    """A predict answer: outputs by alias, and which version and signature answered."""

    outputs: dict[str, np.ndarray]
    version: int | None
    signature_name: str

    def value(self) -> np.ndarray | dict[str, np.ndarray]:
        """The single output's array, or the dict when there are several."""
        if len(self.outputs) == 1:
            return next(iter(self.outputs.values()))
        return dict(self.outputs)
