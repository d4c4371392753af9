"""What a loaded version is to the request path, after TF Serving's ``servable.h`` and the
``SavedModelBundle`` a ``ServableHandle`` points at.

:class:`Servable` is the interface the predict, classify, regress, multi-inference and warmup
code is written against; :class:`~.saved_model.SavedModelServable` and
:class:`~.tflite_model.TfLiteModelServable` implement it, and the manager (which knows nothing
of it: ``core/`` holds servables as opaque objects) hands it out inside a handle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..protocol.signature import Signature


class Servable(Protocol):
    """One loaded version of a model.

    Contract:

    - ``signatures`` and ``signature_def_map`` describe the same signatures and do not change
      for the life of the servable.
    - **Thread-safe**: ``run`` may be called from any number of threads at once, as TF
      Serving's ``Session::Run`` may; an implementation that can only run a bounded number at
      once (a pool of TF Lite interpreters) makes the others wait, it does not refuse them.
    - ``close`` is called once, by the version's loader on unload, after the manager has seen
      the last handle released; no ``run`` is made after it.
    """

    @property
    def signatures(self) -> Mapping[str, Signature]:
        """Every signature by key, framework-free."""
        ...

    @property
    def signature_def_map(self) -> Any:
        """The ``signature_def`` protobuf map, as ``GetModelMetadata`` returns it."""
        ...

    def run(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], aliases: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` (one of :attr:`signatures`) on ``inputs``, whose names the caller
        has checked against it, and return the outputs named in ``aliases``.

        Raises:
            ServingStatusError: the framework's error with its code and text (a dtype or
                shape the graph refuses, a batch queue that is full, ...).
        """
        ...

    def close(self) -> None:
        """Release what the servable holds (session, interpreters, batch schedulers)."""
        ...
