"""A model server in memory behind the panels' ``Target`` interface, for panel tests without a
network.

It follows TF Serving's rules the panels rely on: a version policy selects among the versions on
"disk"; a label may only point at an AVAILABLE version (``FAILED_PRECONDITION`` with upstream's
text); predictions name the version that answered; an unknown label or version is an error.
Loads and unloads finish when :meth:`FakeTarget.settle` runs (``wait_settled`` calls it), so a test
can look at the moment after a reload, when leaving versions are still AVAILABLE. Like a
``ModelServer`` handle, it applies the rollout guards to label changes. Thread-safe.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tfserve_nb.by_hand import ConfigReload, StatusCall, config_reload, status_call
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import Specific, VersionPolicy
from tfserve_nb.errors import ServingError
from tfserve_nb.responses import PredictResult, VersionStatus
from tfserve_nb.rollout import check_labels
from tfserve_nb.widgets._target import InputSpec


class FakeTarget:
    """One model, ``digits``, with versions ``disk`` on disk, version 1 pinned, no labels.

    Version ``v`` answers every example with ``v`` (output ``y``, shape ``(n, 1)``).
    ``calls`` records the protocol calls that change something (``set_policy``, ``set_labels``,
    ``reload``).
    """

    model_name = "digits"
    backend = "fake"
    backend_reason = "a test's in-memory server"
    grpc_address = "127.0.0.1:8500"
    rest_url: str | None = "http://127.0.0.1:8501"

    def __init__(self, disk: Iterable[int] = (1, 2), *, can_switch: bool = True) -> None:
        self.disk = set(disk)
        self.can_switch = can_switch
        self._config = ModelConfig("digits", "/nowhere/digits", Specific((1,)))
        self._lock = threading.Lock()
        self._available = self._kept()
        self._ended: set[int] = set()
        self._alive = True
        self.calls: list[tuple[str, Any]] = []

    # ------------------------------------------------------------------ test controls

    def settle(self) -> None:
        """Finish every load and unload the last config asked for."""
        with self._lock:
            kept = self._kept()
            self._ended |= self._available - kept
            self._ended -= kept
            self._available = kept

    def stop(self) -> None:
        """The server goes away: ``alive()`` turns false, calls fail ``UNAVAILABLE``."""
        self._alive = False

    def _kept(self) -> set[int]:
        return self._config.version_policy.select(self.disk)

    def _check_alive(self) -> None:
        if not self._alive:
            raise ServingError("UNAVAILABLE", "failed to connect to all addresses")

    # ------------------------------------------------------------------ the Target interface

    def alive(self) -> bool:
        return self._alive

    def config(self) -> ModelConfig | None:
        return self._config if self.can_switch else None

    def disk_versions(self) -> list[int] | None:
        return sorted(self.disk)

    def status(self) -> list[Any]:
        self._check_alive()
        with self._lock:
            states = {v: "END" for v in self._ended} | {v: "AVAILABLE" for v in self._available}
        return [VersionStatus(v, states[v]) for v in sorted(states, reverse=True)]

    def predict(
        self, x: np.ndarray, *, version: int | None = None, label: str | None = None
    ) -> Any:
        self._check_alive()
        with self._lock:
            if label is not None:
                if label not in self._config.labels:
                    raise ServingError(
                        "INVALID_ARGUMENT", f"Unrecognized servable version label: {label}"
                    )
                version = self._config.labels[label]
            if version is None:
                version = max(self._available, default=None)
            if version is None or version not in self._available:
                spec = "Latest(digits)" if version is None else f"Specific(digits, {version})"
                raise ServingError("NOT_FOUND", f"Servable not found for request: {spec}")
        answer = np.full((len(x), 1), float(version), np.float32)
        return PredictResult({"y": answer}, version, "serving_default")

    def input_spec(self) -> InputSpec | None:
        return InputSpec("x", "float32", (None, 4))

    def status_call(self) -> StatusCall | None:
        statuses = self.status()
        answer = {
            "model_version_status": [
                {"version": str(s.version), "state": s.state, "status": {"error_code": "OK"}}
                for s in statuses
            ]
        }
        return None if self.rest_url is None else status_call(self.rest_url, "digits", answer)

    def set_policy(self, policy: VersionPolicy) -> ConfigReload:
        self._check_alive()
        self.calls.append(("set_policy", policy))
        with self._lock:
            self._config = dataclasses.replace(self._config, version_policy=policy)
            self._available |= self._kept()  # loaded at once; unloads wait for settle()
            return config_reload([self._config], self.grpc_address)

    def reload(self) -> ConfigReload:
        self._check_alive()
        self.calls.append(("reload", None))
        return config_reload([self._config], self.grpc_address)

    def set_labels(self, labels: Mapping[str, int]) -> ConfigReload:
        self._check_alive()
        check_labels(self._config, labels, self.disk_versions(), lambda: self._available)
        with self._lock:
            for version in labels.values():
                if version not in self._available:
                    raise ServingError(
                        "FAILED_PRECONDITION",
                        f"Request to assign label to version {version} of model digits, "
                        "which is not currently available for inference",
                    )
            self.calls.append(("set_labels", dict(labels)))
            self._config = dataclasses.replace(self._config, labels=dict(labels))
            return config_reload([self._config], self.grpc_address)

    def wait_settled(self, expected: Iterable[int] | None, timeout: float) -> list[Any]:
        self.settle()
        return self.status()
