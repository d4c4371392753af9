"""Small fakes for framework-free core tests: loaders whose load can be held, failed or
counted, and a servable that runs plain numpy."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tfserve_nb.core.loader import Loader
from tfserve_nb.core.servable_id import ServableId
from tfserve_nb.protocol.signature import Signature, TensorSpec


class FakeServable:
    """``y = x * scale`` with one predict signature (input ``x``, output ``y``)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        spec_in = TensorSpec("x", "DT_FLOAT", (None, 1), "x:0")
        spec_out = TensorSpec("y", "DT_FLOAT", (None, 1), "y:0")
        self.signatures = {
            "serving_default": Signature(
                "serving_default", "tensorflow/serving/predict", {"x": spec_in}, {"y": spec_out}
            )
        }

    def run(self, signature: Signature, inputs: dict[str, np.ndarray], aliases: Any) -> dict:
        return {"y": inputs["x"] * np.float32(self.scale)}


class FakeLoader(Loader):
    """Loads a FakeServable scaled by the version number. ``gate`` (if given) holds the load
    until set; ``fail_times`` makes the first N loads raise."""

    def __init__(
        self,
        servable_id: ServableId,
        path: str,
        *,
        gate: threading.Event | None = None,
        fail_times: int = 0,
    ) -> None:
        self.id = servable_id
        self.path = path
        self.gate = gate
        self.fail_times = fail_times
        self.loads = 0
        self.unloads = 0
        self._servable: FakeServable | None = None

    def load(self) -> None:
        self.loads += 1
        if self.gate is not None and not self.gate.wait(30):
            raise TimeoutError("gate never opened")
        if self.loads <= self.fail_times:
            raise RuntimeError(f"injected failure {self.loads} for {self.path}")
        self._servable = FakeServable(float(self.id.version))

    def unload(self) -> None:
        self.unloads += 1
        self._servable = None

    def servable(self) -> FakeServable:
        assert self._servable is not None
        return self._servable
