"""``serve()`` and the :class:`ModelServer` handle a notebook holds.

The handle starts a server through a backend, then does everything else — predictions, status,
version policies, labels — through the TF Serving protocol with a
:class:`~tfserve_nb.client.ServingClient`, so it behaves the same on every backend.
"""

from __future__ import annotations

import dataclasses
import html
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .backends.base import Backend, ServerProcess
from .by_hand import ConfigReload, config_reload
from .client import ServingClient
from .config import ModelConfig, validate
from .core.servable_id import local_versions
from .core.version_policy import All, Latest, Specific, VersionPolicy
from .deploy import Manifests, deployment
from .errors import ConfigError, ServerTimeoutError, serving_error
from .notebook_progress import notebook_progress
from .protocol.signature import Signature
from .responses import PredictResult, VersionStatus, available_versions
from .rollout import check_labels, check_pin, check_version_policy
from .traffic.split import TrafficSplit
from .waiting import wait_until

PolicyLike = VersionPolicy | str | int | Iterable[int]


def as_version_policy(policy: PolicyLike) -> VersionPolicy:
    """``"latest"`` / ``"all"`` / a version / versions, or a policy object, as a policy."""
    if isinstance(policy, Latest | All | Specific):
        return policy
    if policy == "latest":
        return Latest()
    if policy == "all":
        return All()
    if isinstance(policy, int):
        return Specific((policy,))
    if isinstance(policy, Iterable) and not isinstance(policy, str):
        versions = tuple(int(v) for v in policy)
        if versions:
            return Specific(versions)
    raise ConfigError(
        f"Not a version policy: {policy!r}. Use 'latest', 'all', a version number, a list of "
        "versions, or tfserve_nb.Latest(n) / All() / Specific((1, 2))"
    )


def _model_configs(
    source: Any, model_name: str | None, version_policy: PolicyLike | None
) -> list[ModelConfig]:
    if isinstance(source, ModelConfig):
        configs = [source]
    elif isinstance(source, Sequence) and not isinstance(source, str | bytes):
        configs = list(source)
    else:
        base_path = os.fspath(getattr(source, "base_path", source))  # an ExportedModel or a path
        if "://" in base_path:
            raise ConfigError(
                f"Model base path {base_path} is in object storage: serve() serves a local "
                "folder (push() put the versions there from one). On a cluster, KServe's storage "
                "initializer downloads it: tfserve_nb.deployment(..., model_uri=...)"
            )
        base_path = os.path.abspath(base_path)
        if not os.path.isdir(base_path):
            raise ConfigError(
                f"Model base path {base_path} is not a directory: export a model there first "
                "(tfserve_nb.export_model(model, base_path))"
            )
        name = model_name or getattr(source, "name", None) or os.path.basename(base_path)
        configs = [ModelConfig(name, base_path)]
    if version_policy is not None:
        if len(configs) != 1:
            raise ConfigError("version_policy= applies to a single model; set it per ModelConfig")
        configs = [
            dataclasses.replace(configs[0], version_policy=as_version_policy(version_policy))
        ]
    return validate(configs)


def _pick_backend(backend: str | Backend, options: Mapping[str, Any]) -> tuple[Backend, str]:
    if isinstance(backend, Backend):
        return backend, f"using the {backend.name} backend you passed"
    if backend == "auto":
        from .backends.auto import choose_backend

        return choose_backend(**options)
    if backend == "embedded":
        from .backends.embedded import EmbeddedBackend

        return EmbeddedBackend(**options), "embedded backend requested"
    if backend == "docker":
        from .backends.docker import DockerBackend

        return DockerBackend(**options), "docker backend requested"
    if backend == "local":
        from .backends.local import LocalBinaryBackend

        return LocalBinaryBackend(**options), "local backend requested"
    raise ConfigError(f"Unknown backend {backend!r}: use 'auto', 'embedded', 'docker' or 'local'")


def serve(
    base_path_or_configs: Any,
    backend: str | Backend = "auto",
    *,
    model_name: str | None = None,
    version_policy: PolicyLike | None = None,
    labels: Mapping[str, int] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 120.0,
    **backend_options: Any,
) -> ModelServer:
    """Start a TF-Serving-compatible server and return its handle once every model answers:
    once the versions a ``Specific`` policy or a label names are AVAILABLE, else any version.

    ``base_path_or_configs`` is a model base path (its folder name is the model name unless
    ``model_name`` is given), an :class:`~tfserve_nb.export.ExportedModel`, a
    :class:`~tfserve_nb.config.ModelConfig` or a list of them. ``backend`` is ``"auto"``
    (docker if an engine and the image are there, else a local ``tensorflow_model_server``,
    else embedded), ``"embedded"``, ``"docker"``, ``"local"`` or a Backend object;
    ``backend_options`` go to the backend. ``labels`` are set once the versions they name are
    AVAILABLE (TF Serving refuses labels on versions not yet loaded).

    Batching is TF Serving's flags in ``extra_args``: ``["--enable_batching",
    "--batching_parameters_file=PATH"]``. Measured on two cores (``bench/results/RESULTS.md``),
    for a model whose compute matters (MobileNetV2) ``max_batch_size { value: 32 }
    batch_timeout_micros { value: 5000 } num_batch_threads { value: N }`` with N the number of
    cores gave the most requests/s at 64 clients (1.6 x unbatched); for a tiny model a request is
    all transport, batching gains little and costs its timeout when clients are few.
    """
    configs = _model_configs(base_path_or_configs, model_name, version_policy)
    if labels:
        if len(configs) != 1:
            raise ConfigError("labels= applies to a single model; set them per ModelConfig")
        configs = [dataclasses.replace(configs[0], labels=dict(labels))]
    chosen, reason = _pick_backend(backend, backend_options)
    if backend == "auto":
        print(f"tfserve-nb: {reason}", flush=True)
    startup = [dataclasses.replace(c, labels={}) for c in configs]

    process = chosen.start(
        startup, extra_args=extra_args, startup_timeout=timeout, progress=notebook_progress()
    )
    server = ModelServer(process, startup, reason=reason)
    try:
        for config in configs:
            for version in _versions_to_wait_for(config):
                server.wait_until_available(version, model_name=config.name, timeout=timeout)
        if any(c.labels for c in configs):
            server.reload_config(configs)
    except BaseException:
        server.stop()
        raise
    return server


def _versions_to_wait_for(config: ModelConfig) -> list[int | None]:
    """The versions ``config`` names (pinned by its policy, or labelled), ascending; else
    ``[None]`` (any version)."""
    named = set(config.labels.values())
    if isinstance(config.version_policy, Specific):
        named.update(config.version_policy.versions)
    return [*sorted(named)] or [None]


class ModelServer:
    """A running model server and the way to talk to it. Stop it with :meth:`stop` or use it
    as a context manager.

    Methods that do what a :class:`~tfserve_nb.client.ServingClient` method does have its name
    and signature (the subject positional, options keyword-only) and default to this handle's
    model; they raise :class:`~tfserve_nb.errors.TfServeNbError` subclasses only.

    Thread-safe. A config change — :meth:`reload_config`, :meth:`set_version_policy`,
    :meth:`set_labels` — reads the config this handle last sent, changes it, sends it and
    records it under one lock, so concurrent changes are applied one after another and none is
    lost; waiting for versions to load happens outside the lock.
    """

    def __init__(self, process: ServerProcess, models: Sequence[ModelConfig], reason: str = ""):
        self.process = process
        self.reason = reason
        self._lock = threading.Lock()
        self._models = {m.name: m for m in models}
        self.client = ServingClient(
            process.grpc_address, process.rest_url, model_name=next(iter(self._models))
        )

    # ---- facts -------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self.process.backend_name

    @property
    def model_name(self) -> str:
        """The default model (the first one configured)."""
        return next(iter(self._models))

    @property
    def models(self) -> dict[str, ModelConfig]:
        """The model config list this handle last sent (TF Serving has no call to read it)."""
        with self._lock:
            return dict(self._models)

    @property
    def grpc_address(self) -> str:
        return self.process.grpc_address

    @property
    def rest_url(self) -> str:
        return self.process.rest_url

    # ---- requests ----------------------------------------------------------------------------

    def predict(
        self,
        x: Any,
        *,
        model_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature_name: str | None = None,
        output_filter: Sequence[str] = (),
        timeout: float | None = None,
        split: TrafficSplit | None = None,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Predict over gRPC: numpy or lists in — for several inputs a dict keyed by input name,
        or a pandas DataFrame with a column per input — and numpy out (a dict when there are
        several outputs). Each request is built from the signature of the version that will
        answer, also right after the server moved to a version with other input names
        (:mod:`tfserve_nb.client`). ``split`` (a :class:`~tfserve_nb.TrafficSplit`) picks the
        version or label of each call by its weights, e.g. a 90/10 canary share."""
        return self.client.predict(
            x,
            model_name=model_name,
            version=version,
            label=label,
            signature_name=signature_name,
            output_filter=output_filter,
            timeout=timeout,
            split=split,
        )

    def predict_detailed(
        self,
        x: Any,
        *,
        model_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature_name: str | None = None,
        output_filter: Sequence[str] = (),
        timeout: float | None = None,
        split: TrafficSplit | None = None,
    ) -> PredictResult:
        """Like :meth:`predict`, also telling which version answered."""
        return self.client.predict_detailed(
            x,
            model_name=model_name,
            version=version,
            label=label,
            signature_name=signature_name,
            output_filter=output_filter,
            timeout=timeout,
            split=split,
        )

    def status(
        self, *, model_name: str | None = None, version: int | None = None
    ) -> list[VersionStatus]:
        """Every version the server knows of (or ``version``), newest first, with its state."""
        return self.client.status(model_name=model_name, version=version)

    def metadata(
        self,
        *,
        model_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, Signature]:
        """The served version's signatures."""
        return self.client.metadata(model_name=model_name, version=version, label=label)

    def wait_until_available(
        self, version: int | None = None, *, model_name: str | None = None, timeout: float = 60.0
    ) -> int:
        """Wait until ``version`` (or any version) of the model is AVAILABLE; return it."""
        return self.client.wait_until_available(version, model_name=model_name, timeout=timeout)

    # ---- config ------------------------------------------------------------------------------

    def reload_config(
        self, configs: Sequence[ModelConfig], *, timeout: float | None = None
    ) -> ConfigReload:
        """Send ``configs`` as the server's whole config (``HandleReloadConfigRequest``); return
        what was sent and how to send it by hand (:class:`~tfserve_nb.by_hand.ConfigReload`)."""
        configs = validate(configs)
        with self._lock:
            return self._send_config(configs, timeout)

    def _send_config(self, configs: Sequence[ModelConfig], timeout: float | None) -> ConfigReload:
        """Reload the server with ``configs`` and record them; the caller holds ``_lock``."""
        sent = [self.process.server_model(m) for m in configs]
        self.client.reload_config(sent, timeout=timeout)
        self._models = {m.name: m for m in configs}
        return config_reload(sent, self.grpc_address, served=configs)

    def _update(
        self,
        model_name: str | None,
        check: Callable[[ModelConfig], object] | None = None,
        **changes: Any,
    ) -> tuple[ModelConfig, ConfigReload]:
        """Check the model's config with ``check`` (which raises to refuse the change), change
        ``changes`` in it and reload, all under ``_lock`` (so a concurrent change can neither be
        lost nor slip past the check); return the model's new config and the reload sent."""
        with self._lock:
            name = model_name or self.model_name
            if name not in self._models:
                raise ConfigError(f"No model {name!r} here; served: {sorted(self._models)}")
            if check is not None:
                check(self._models[name])
            updated = dataclasses.replace(self._models[name], **changes)
            sent = self._send_config(
                validate([updated if m.name == name else m for m in self._models.values()]),
                None,
            )
        return updated, sent

    def set_version_policy(
        self,
        policy: PolicyLike,
        *,
        model_name: str | None = None,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> ConfigReload:
        """Serve the versions ``policy`` selects: ``"latest"``, ``Latest(2)``, ``"all"``,
        a version (pin it) or a list of versions. With ``wait``, return once the pinned
        versions (or the newest one) are AVAILABLE. Returns the reload sent, with how to send
        it by hand (:class:`~tfserve_nb.by_hand.ConfigReload`).

        A change that would unload a version a label points at (which the server would accept,
        and then answer ``NOT_FOUND`` for the label) raises :class:`ConfigError` naming the
        label, and nothing is sent (:func:`tfserve_nb.rollout.check_version_policy`; the
        versions a ``latest``/``all`` policy keeps are known when the base path is local).
        A pin of a version that is not on disk under a local base path raises
        :class:`ConfigError` too (:func:`tfserve_nb.rollout.check_pin`). Both are checked under
        the same lock as the change, against the config this handle last sent."""
        version_policy = as_version_policy(policy)

        def check(current: ModelConfig) -> None:
            disk = local_versions(current.base_path)
            if isinstance(version_policy, Specific):
                check_pin(version_policy.versions, disk)
            check_version_policy(current, version_policy, disk)

        updated, sent = self._update(model_name, check, version_policy=version_policy)
        if not wait:
            return sent
        if isinstance(updated.version_policy, Specific):
            for version in updated.version_policy.versions:
                self.wait_until_available(version, model_name=updated.name, timeout=timeout)
        else:
            self.wait_until_newest_available(model_name=updated.name, timeout=timeout)
        return sent

    def wait_until_newest_available(
        self, *, model_name: str | None = None, timeout: float = 60.0
    ) -> int:
        """Wait until the highest version the server knows of is AVAILABLE (after a move to a
        ``latest`` policy, an older one may answer until then); return it."""
        seen: list[VersionStatus] = []

        def newest_available() -> int | None:
            newest = max(self.status(model_name=model_name), key=lambda s: s.version)
            seen[:] = [newest]
            if newest.state == "END" and newest.error_code != "OK":
                raise serving_error(newest.error_code, newest.error_message)
            return newest.version if newest.state == "AVAILABLE" else None

        def timed_out() -> ServerTimeoutError:
            (newest,) = seen
            return ServerTimeoutError(
                f"version {newest.version} of model {model_name or self.model_name!r} did "
                f"not become AVAILABLE within {timeout:g} s; it is {newest.state}"
            )

        return wait_until(newest_available, timeout, timed_out=timed_out)

    def set_labels(
        self, labels: Mapping[str, int], *, model_name: str | None = None
    ) -> ConfigReload:
        """Make ``labels`` (e.g. ``{"stable": 1, "canary": 2}``) the model's version labels and
        return the reload sent (:class:`~tfserve_nb.by_hand.ConfigReload`).
        TF Serving only lets a label point at an AVAILABLE version; a refused move raises
        ServingError (FAILED_PRECONDITION) and leaves the labels as they were.

        A label on a version that is AVAILABLE but that the version policy unloads (it would be
        accepted, then answer ``NOT_FOUND``) raises :class:`ConfigError` naming the label, and
        nothing is sent (:func:`tfserve_nb.rollout.check_labels`; asks the server's status only
        for labels on versions the policy does not keep)."""

        def check(current: ModelConfig) -> None:
            check_labels(
                current,
                labels,
                local_versions(current.base_path),
                lambda: available_versions(self.status(model_name=current.name)),
            )

        return self._update(model_name, check, labels=dict(labels))[1]

    # ---- to a cluster ------------------------------------------------------------------------

    def deployment(self, out_dir: str | os.PathLike[str], **options: Any) -> Manifests:
        """Write Kubernetes and KServe manifests serving the models as this handle last sent
        them (:attr:`models`: version policy and labels) into ``out_dir`` and return them:
        :func:`tfserve_nb.deploy.deployment` with these configs, ``options`` being its keywords
        (``model_uri="s3://bucket/digits"``, ``split=...``, ``replicas=...``, ...)."""
        return deployment(list(self.models.values()), out_dir=out_dir, **options)

    # ---- lifecycle ---------------------------------------------------------------------------

    def alive(self) -> bool:
        """Whether the server process (or container) is still running."""
        return self.process.alive()

    def logs(self, tail: int | None = None) -> str:
        """The server's output (the last ``tail`` lines if given)."""
        return self.process.logs(tail)

    def stop(self) -> None:
        """Stop the server and release everything it holds. Idempotent."""
        self.client.close()
        self.process.stop()

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return (
            f"<ModelServer {self.backend} {state} models={sorted(self._models)} "
            f"grpc={self.grpc_address} rest={self.rest_url}>"
        )

    def _repr_html_(self) -> str:
        alive = self.alive()
        rows = []
        for name, config in self.models.items():
            versions = "—"
            if alive:
                try:
                    statuses = self.status(model_name=name)
                    versions = ", ".join(f"v{s.version} {s.state}" for s in statuses)
                except Exception as exc:  # show the problem instead of failing the repr
                    versions = f"status unavailable: {exc}"
            labels = ", ".join(f"{k}→v{v}" for k, v in config.labels.items()) or "—"
            rows.append(
                f"<tr><td><b>{html.escape(name)}</b></td><td>{html.escape(str(config.version_policy))}"
                f"</td><td>{html.escape(labels)}</td><td>{html.escape(versions)}</td></tr>"
            )
        facts = " · ".join(
            f"{html.escape(k)}: <code>{html.escape(v)}</code>"
            for k, v in self.process.describe().items()
        )
        badge = (
            "<span style='color:#1a7f37'>● running</span>"
            if alive
            else "<span style='color:#999'>● stopped</span>"
        )
        why = f"<br><small>{html.escape(self.reason)}</small>" if self.reason else ""
        return (
            f"<div><b>ModelServer</b> {badge}<br><small>{facts}</small>{why}"
            "<table><thead><tr><th>model</th><th>policy</th><th>labels</th><th>versions</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
