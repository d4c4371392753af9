"""What the dashboard needs from a server, over the protocol only.

:class:`ServingTarget` wraps a :class:`~tfserve_nb.handle.ModelServer` or a bare
:class:`~tfserve_nb.client.ServingClient` and exposes one model: status, predictions, metadata
and config reloads (``HandleReloadConfigRequest``). The dashboard never reaches into a server's
internals, so it behaves the same against the embedded server, the ``tensorflow/serving``
container and a local binary.

TF Serving has no RPC that reads the current config or lists the versions present on disk, so:

- a ``ModelServer`` handle remembers the config it last sent (``server.models``); a bare
  ``ServingClient`` needs the model's :class:`~tfserve_nb.config.ModelConfig` passed in
  (``configs=``) to switch versions, and is read-only without it;
- versions on disk are read from the model's base path when it is a local directory (the same
  numeric folders the server's file-system source polls); otherwise only versions the server has
  reported are known.

All methods block on network I/O: call them from background threads, never from the widget thread
while it has to stay responsive. Methods are thread-safe as far as the underlying client is.

:class:`Target` is the interface the panels use; :class:`ServingTarget` is its implementation over
the protocol, and a test may hand the panels another (a fake server without a network).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..by_hand import ConfigReload, StatusCall, status_call
from ..config import ModelConfig
from ..core.servable_id import local_versions
from ..core.servable_state import ManagerState
from ..core.version_policy import VersionPolicy
from ..errors import ConfigError, InvalidArgumentError, ServerTimeoutError, serving_error
from ..protocol.rest_paths import model_path
from ..responses import VersionStatus, available_versions
from ..waiting import wait_until

TRANSITIONAL_STATES = frozenset(
    state.name for state in (ManagerState.START, ManagerState.LOADING, ManagerState.UNLOADING)
)
"""The states a version passes through on its way to AVAILABLE or END."""


@dataclass(frozen=True)
class InputSpec:
    """The first input of the serving signature: alias, numpy dtype name and shape (``None`` for
    unknown dimensions)."""

    alias: str
    dtype: str
    shape: tuple[int | None, ...] | None
    signature_name: str = "serving_default"

    def zeros_example(self) -> np.ndarray:
        """One all-zero example (no batch dimension); unknown dimensions count as 1."""
        dims = self.shape[1:] if self.shape else ()
        return np.zeros(tuple(1 if d is None else d for d in dims), dtype=self.dtype)


@runtime_checkable
class Target(Protocol):
    """One model on one server, as the panels see it: the members of :class:`ServingTarget`,
    with the same contracts (read them there)."""

    model_name: str

    @property
    def backend(self) -> str: ...

    @property
    def backend_reason(self) -> str: ...

    @property
    def grpc_address(self) -> str: ...

    @property
    def rest_url(self) -> str | None: ...

    @property
    def can_switch(self) -> bool: ...

    def alive(self) -> bool: ...

    def config(self) -> ModelConfig | None: ...

    def disk_versions(self) -> list[int] | None: ...

    def status(self) -> list[VersionStatus]: ...

    def predict(
        self, x: np.ndarray, *, version: int | None = None, label: str | None = None
    ) -> Any: ...

    def input_spec(self) -> InputSpec | None: ...

    def status_call(self) -> StatusCall | None: ...

    def set_policy(self, policy: VersionPolicy) -> ConfigReload: ...

    def set_labels(self, labels: Mapping[str, int]) -> ConfigReload: ...

    def reload(self) -> ConfigReload: ...

    def wait_settled(self, expected: Iterable[int] | None, timeout: float) -> list[Any]: ...


class ServingTarget:
    """One model on one server, as the dashboard sees it.

    ``server`` is a ``ModelServer`` (has ``set_version_policy``) or a ``ServingClient``.
    ``model_name`` defaults to the server's. ``configs`` (for a bare client) are the model configs
    the server was started with; reloads send all of them, changing only this model's entry.
    """

    def __init__(
        self,
        server: Any,
        *,
        model_name: str | None = None,
        configs: Sequence[ModelConfig] | None = None,
    ) -> None:
        self.server = server
        self._is_handle = hasattr(server, "set_version_policy")
        self._client = server.client if self._is_handle else server
        name = model_name or getattr(server, "model_name", None)
        if not name:
            raise InvalidArgumentError(
                "The dashboard needs a model name: pass model_name=... (the server serves several "
                "models, or the client was created without one)"
            )
        self.model_name: str = name
        self._configs = {c.name: c for c in configs or ()}
        self._lock = threading.Lock()
        if not self._is_handle and configs is not None and name not in self._configs:
            raise InvalidArgumentError(f"configs= has no entry for model {name!r}")

    # ------------------------------------------------------------------ facts

    @property
    def backend(self) -> str:
        """``embedded``, ``docker`` or ``local`` for a handle; ``remote`` for a bare client."""
        return str(getattr(self.server, "backend", "remote")) if self._is_handle else "remote"

    @property
    def backend_reason(self) -> str:
        """Why ``serve`` picked this backend (a handle's ``reason``); empty for a bare client."""
        return str(getattr(self.server, "reason", "")) if self._is_handle else ""

    @property
    def grpc_address(self) -> str:
        """``host:port`` of the gRPC front-end."""
        if self._is_handle:
            return str(self.server.grpc_address)
        return str(self._client.grpc_target)

    @property
    def rest_url(self) -> str | None:
        """``http://host:port`` of the REST front-end, if known."""
        url = self.server.rest_url if self._is_handle else self._client.rest_url
        return str(url) if url else None

    @property
    def can_switch(self) -> bool:
        """Whether version policy and labels can be changed (a handle, or a client with configs)."""
        return self._is_handle or self.model_name in self._configs

    def alive(self) -> bool:
        """``False`` once a handle's server has stopped; a bare client is assumed alive."""
        if self._is_handle:
            return bool(self.server.alive())
        return True

    def config(self) -> ModelConfig | None:
        """This model's current config as last sent, or ``None`` when unknown (read-only)."""
        if self._is_handle:
            return self.server.models.get(self.model_name)
        return self._configs.get(self.model_name)

    def disk_versions(self) -> list[int] | None:
        """Numeric version folders under a local base path, ascending; ``None`` if not local."""
        config = self.config()
        return None if config is None else local_versions(config.base_path)

    # ------------------------------------------------------------------ protocol calls

    def status(self) -> list[VersionStatus]:
        """``GetModelStatus``: ``VersionStatus`` entries, newest first."""
        return list(self._client.status(model_name=self.model_name))

    def predict(
        self, x: np.ndarray, *, version: int | None = None, label: str | None = None
    ) -> Any:
        """``Predict`` on a version, a label or the latest; a ``PredictResult``."""
        return self._client.predict_detailed(
            x, version=version, label=label, model_name=self.model_name
        )

    def input_spec(self) -> InputSpec | None:
        """The serving signature's first input, from ``GetModelMetadata``; ``None`` if unknown."""
        signatures = self._client.metadata(model_name=self.model_name)
        signature = signatures.get("serving_default") or next(iter(signatures.values()), None)
        if signature is None or not signature.inputs:
            return None
        spec = next(iter(signature.inputs.values()))
        numpy_dtype = spec.numpy_dtype
        return InputSpec(
            alias=spec.alias,
            dtype=numpy_dtype.name if numpy_dtype is not None else "float32",
            shape=spec.shape,
            signature_name=signature.key,
        )

    def status_call(self) -> StatusCall | None:
        """``GET /v1/models/NAME`` over REST, as a :class:`~tfserve_nb.by_hand.StatusCall` (the
        ``curl`` line and the JSON answer); ``None`` without a REST address."""
        url = self.rest_url
        if url is None:
            return None
        return status_call(
            url, self.model_name, self._client.rest("GET", model_path(self.model_name))
        )

    def set_policy(self, policy: VersionPolicy) -> ConfigReload:
        """Reload the config with ``policy`` for this model (``HandleReloadConfigRequest``) and
        return what was sent (:class:`~tfserve_nb.by_hand.ConfigReload`). A
        handle raises :class:`~tfserve_nb.errors.ConfigError` for a change that would strand a
        label (:func:`tfserve_nb.rollout.check_version_policy`) or pin a version not on disk
        (:func:`tfserve_nb.rollout.check_pin`); a read-only target (a bare client without
        ``configs=``) raises ``ConfigError`` and sends nothing."""
        return self._reload(version_policy=policy)

    def set_labels(self, labels: Mapping[str, int]) -> ConfigReload:
        """Reload the config with exactly ``labels`` for this model and return what was sent.
        Upstream refuses a label on
        a version that is not AVAILABLE: :class:`ServingError` ``FAILED_PRECONDITION``; a handle
        raises :class:`~tfserve_nb.errors.ConfigError` for a label on a version the policy is
        unloading (:func:`tfserve_nb.rollout.check_labels`); a read-only target raises
        ``ConfigError`` and sends nothing."""
        return self._reload(labels=dict(labels))

    def reload(self) -> ConfigReload:
        """Send the current config unchanged (``HandleReloadConfigRequest``; the server re-reads
        it and loads what its policy selects on disk now) and return what was sent; a read-only
        target raises ``ConfigError`` and sends nothing."""
        return self._reload()

    def _reload(self, **change: Any) -> ConfigReload:
        if self._is_handle:
            if "version_policy" in change:
                return self.server.set_version_policy(  # type: ignore[no-any-return]
                    change["version_policy"], model_name=self.model_name, wait=False
                )
            if "labels" in change:
                return self.server.set_labels(  # type: ignore[no-any-return]
                    change["labels"], model_name=self.model_name
                )
            return self.server.reload_config(list(self.server.models.values()))  # type: ignore[no-any-return]
        with self._lock:
            current = self._configs.get(self.model_name)
            if current is None:
                raise ConfigError(
                    "read-only dashboard: pass configs=[ModelConfig(...)] to switch versions"
                )
            updated = dataclasses.replace(current, **change)
            configs = {**self._configs, self.model_name: updated}
            sent = self._client.reload_config(list(configs.values()))
            self._configs = configs
            return sent  # type: ignore[no-any-return]

    def wait_settled(self, expected: Iterable[int] | None, timeout: float) -> list[Any]:
        """Poll status until no version is START, LOADING or UNLOADING and the AVAILABLE set is
        ``expected`` (any non-empty set when ``None``); return the last status.

        Raises :class:`ServerTimeoutError` naming what was seen, or :class:`ServingError`
        (``UNAVAILABLE``-like codes pass through) when an expected version's load failed.
        """
        wanted = set(expected) if expected is not None else None
        statuses: list[Any] = []

        def settled_statuses() -> list[Any] | None:
            nonlocal statuses
            statuses = self.status()
            available = available_versions(statuses)
            failed = [
                s
                for s in statuses
                if s.error_message and s.state == "END" and (wanted is None or s.version in wanted)
            ]
            if failed:
                first = failed[0]
                raise serving_error(
                    first.error_code or "UNKNOWN",
                    f"version {first.version} failed to load: {first.error_message}",
                )
            settled = not any(s.state in TRANSITIONAL_STATES for s in statuses)
            if settled and (available == wanted if wanted is not None else available):
                return statuses
            return None

        def timed_out() -> ServerTimeoutError:
            seen = ", ".join(f"{s.version}: {s.state}" for s in statuses) or "no versions"
            want = sorted(wanted) if wanted is not None else "any version"
            return ServerTimeoutError(
                f"model {self.model_name}: waited {timeout:.0f} s for AVAILABLE versions "
                f"{want}; the server reports {seen}"
            )

        return wait_until(settled_statuses, timeout, timed_out=timed_out, interval=0.05)
