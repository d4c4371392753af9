"""ServerCore: the served models, their config, labels, and request resolution.

After TF Serving's ``ServerCore``: it owns the file-system source, the source adapter that turns
version paths into SavedModel loaders, the aspired-versions manager and the state monitor. Both
front-ends call into it; it raises :class:`~tfserve_nb.core.status.ServingStatusError` with TF
Serving's codes and texts. Thread-safe.

Config semantics (``ServerCore::ReloadConfig``): a reload replaces the whole model list (models
left out are unloaded), platform changes are rejected, then labels are checked *before* new
versions load (a label may only point at an AVAILABLE version;
``allow_version_labels_for_unavailable_models`` exempts labels that are new or unchanged), and
the call returns once newly added models have their latest version AVAILABLE (or raises if it
failed to load, and UNAVAILABLE if the server shuts down first: a base path with no version
yet must not hold a shutdown up). Every model must name the ``tensorflow`` platform, the only
one served.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from ..batching.batch_scheduler import SharedBatchScheduler
from ..batching.batching_parameters import BatchingParameters
from ..batching.metrics import BatchingMetrics
from ..config import ModelConfig, validate
from ..core.aspired_versions_manager import AspiredVersionsManager
from ..core.loader import Loader
from ..core.servable_id import ServableId
from ..core.servable_state import ManagerState, ServableState
from ..core.servable_state_monitor import ServableStateMonitor
from ..core.source import SourceAdapter
from ..core.status import Code, ServingStatusError, failed_precondition, invalid_argument, not_found
from ..errors import ConfigError
from ..servables import predict_util
from ..servables.saved_model import BatchingOptions, SavedModelLoader
from ..servables.saved_model_warmup import run_saved_model_warmup
from ..servables.servable import Servable
from ..servables.tflite_model import TfLiteModelLoader, tflite_model_found
from ..sources.file_system_storage_path_source import FileSystemStoragePathSource, ServableToMonitor
from .monitoring import METRICS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerCoreOptions:
    file_system_poll_wait_seconds: float = 1.0
    allow_version_labels_for_unavailable_models: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0
    num_load_threads: int = 2
    saved_model_tags: tuple[str, ...] = ("serve",)
    batching_parameters: BatchingParameters | None = None
    """``--enable_batching``: batch every signature of every version with these parameters,
    on one pool of ``num_batch_threads`` batch threads shared by the whole server (``None``: no
    batching). Applies to the default loaders only."""
    batching_metrics: BatchingMetrics | None = None
    """Where the batching measurements go (the monitoring metrics), if anywhere."""
    enable_per_model_batching_parameters: bool = False
    """With batching on, each version batches with its own ``batching_params.pbtxt`` (and is
    not batched without one) instead of ``batching_parameters``, whose pool it shares
    (``--enable_per_model_batching_parameters``)."""
    enable_model_warmup: bool = True
    """Replay each version's ``assets.extra/tf_serving_warmup_requests`` before it becomes
    AVAILABLE (``--enable_model_warmup``); a failing replay fails the load. Default loaders
    only."""
    num_request_iterations_for_warmup: int = 1
    """How many times each warmup record is replayed (``--num_request_iterations_for_warmup``)."""
    enable_signature_method_name_check: bool = False
    """Check signatures' ``method_name`` against the API asked for
    (``--enable_signature_method_name_check``); off, as upstream, so native TF2 signatures
    (all ``tensorflow/serving/predict``) can classify and regress."""
    enable_serialization_as_tensor_content: bool = False
    """gRPC ``Predict`` answers numeric outputs in ``tensor_content`` bytes instead of the typed
    fields (``--enable_serialization_as_tensor_content``; upstream's kAsProtoContent)."""
    prefer_tflite_model: bool = False
    """A version directory holding ``model.tflite`` is served with TF Lite instead of its
    SavedModel (``--prefer_tflite_model``; not batched). Default loaders only."""
    num_tflite_interpreters: int = 1
    """TF Lite interpreters per TF Lite version: requests it runs at once
    (``--num_tflite_pools``)."""


LoaderFactory = Callable[[ServableId, str], Loader]
TENSORFLOW_PLATFORM = "tensorflow"


def _platform(config: ModelConfig) -> str:
    """The model's platform; INVALID_ARGUMENT if it names none (upstream's ``GetPlatform``)."""
    if not config.platform:
        raise invalid_argument(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {config.name}"
        )
    return config.platform


class ServerCore:
    """Serves the models of a config list. Create with :meth:`create`."""

    def __init__(self, options: ServerCoreOptions, loader_factory: LoaderFactory | None = None):
        self.options = options
        self.monitor = ServableStateMonitor()
        self.manager = AspiredVersionsManager(
            self.monitor,
            num_load_threads=options.num_load_threads,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval=options.load_retry_interval_seconds,
        )
        self._batch_scheduler: SharedBatchScheduler | None = None
        batching = None
        if options.batching_parameters is not None:
            self._batch_scheduler = SharedBatchScheduler.from_parameters(
                options.batching_parameters
            )
            batching = BatchingOptions(
                options.batching_parameters,
                self._batch_scheduler,
                options.batching_metrics,
                per_model=options.enable_per_model_batching_parameters,
            )
        self._batching = batching
        factory = loader_factory or self._saved_model_loader
        self._source = FileSystemStoragePathSource(
            [],
            SourceAdapter(factory, self.manager.set_aspired_versions),
            options.file_system_poll_wait_seconds,
        )
        self._reload_lock = threading.Lock()
        self._config: dict[str, ModelConfig] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._started = False
        self._stopping = threading.Event()

    @classmethod
    def create(
        cls,
        configs: Sequence[ModelConfig],
        options: ServerCoreOptions | None = None,
        loader_factory: LoaderFactory | None = None,
    ) -> ServerCore:
        """Build a core and load ``configs``; returns once every model's latest version is
        AVAILABLE. Raises ServingStatusError (UNKNOWN ``N model(s) did not become
        available: ...``) when one failed to load."""
        core = cls(options or ServerCoreOptions(), loader_factory)
        try:
            core.reload_config(configs)
        except BaseException:
            core.stop()
            raise
        return core

    # ---- config ------------------------------------------------------------------------------

    @property
    def config(self) -> list[ModelConfig]:
        """The model config list in force."""
        with self._reload_lock:
            return list(self._config.values())

    def reload_config(self, configs: Sequence[ModelConfig]) -> None:
        """Replace the model config list (``HandleReloadConfigRequest``)."""
        try:
            configs = validate(configs)
        except ConfigError as exc:
            raise invalid_argument(str(exc)) from None
        with self._reload_lock:
            for config in configs:
                old = self._config.get(config.name)
                if old is not None and _platform(config) != old.platform:
                    raise invalid_argument(
                        f"Illegal to change a model's platform. For model {config.name} platform "
                        f"was {old.platform} and new platform requested is {config.platform}"
                    )
            labels = self._checked_labels(configs)
            for config in configs:
                if _platform(config) != TENSORFLOW_PLATFORM:
                    raise invalid_argument(
                        f"Model {config.name} requests unsupported platform {config.platform}"
                    )
            self._labels = labels
            new_models = {c.name for c in configs} - set(self._config)
            self._config = {c.name: c for c in configs}
            since = self.monitor.sequence()
            servables = [ServableToMonitor(c.name, c.base_path, c.version_policy) for c in configs]
            self._source.update_config(servables)
            if not self._started:
                self._source.start()
                self._started = True
            self._wait_until_models_available(new_models, since)
        log.info("Finished reloading config")

    def _checked_labels(self, configs: Sequence[ModelConfig]) -> dict[str, dict[str, int]]:
        labels: dict[str, dict[str, int]] = {}
        for config in configs:
            states = self.monitor.versions(config.name)
            for label, version in config.labels.items():
                existing = self._labels.get(config.name, {}).get(label)
                exempt = self.options.allow_version_labels_for_unavailable_models and (
                    existing is None or existing == version
                )
                state = states.get(version)
                if not exempt and (state is None or state.state is not ManagerState.AVAILABLE):
                    raise failed_precondition(
                        f"Request to assign label to version {version} of model {config.name}, "
                        "which is not currently available for inference"
                    )
                labels.setdefault(config.name, {})[label] = version
        return labels

    def _wait_until_models_available(self, models: set[str], since: int) -> None:
        if not models:
            return
        settled: dict[str, ServableState] = {}

        def all_settled() -> bool:
            for name in models - settled.keys():
                state = self.monitor.latest_settled_since(name, since)
                if state is not None:
                    settled[name] = state
            return settled.keys() == models

        # In slices: a start-up waits here on the main thread, which runs signal handlers only
        # between waits where the signal went to another thread (not Linux).
        while not self.monitor.wait_until(
            lambda: all_settled() or self._stopping.is_set(), timeout=1.0
        ):
            pass
        if settled.keys() != models:
            waiting = ", ".join(sorted(models - settled.keys()))
            raise ServingStatusError(
                Code.UNAVAILABLE,
                f"The model server is shutting down; stopped waiting for {waiting} to become "
                "available",
            )
        failed = sorted(  # by id, as upstream's std::map lists them
            (s for s in settled.values() if s.state is not ManagerState.AVAILABLE),
            key=lambda s: s.id,
        )
        if failed:
            details = "".join(
                f"{{{s.id} due to error: {s.code.name}: {s.message}}}, " for s in failed
            )
            raise ServingStatusError(
                Code.UNKNOWN, f"{len(failed)} model(s) did not become available: {{{details}}}"
            )

    def _saved_model_loader(self, servable_id: ServableId, path: str) -> Loader:
        """The default loader of a version: its SavedModel, batched and warmed up as the
        options say; with ``prefer_tflite_model``, its ``model.tflite`` if it has one (warmed
        up, not batched)."""
        warmup = (
            functools.partial(self._warmup, servable_id.version, path)
            if self.options.enable_model_warmup
            else None
        )
        if self.options.prefer_tflite_model and tflite_model_found(path):
            return TfLiteModelLoader(path, self.options.num_tflite_interpreters, warmup)
        return SavedModelLoader(path, self.options.saved_model_tags, self._batching, warmup)

    def _warmup(self, version: int, path: str, servable: Servable) -> None:
        """Replay the warmup requests of version ``version`` at ``path`` on ``servable``
        (upstream's ``RunSavedModelWarmup``); raises what fails the load."""
        from ..servables import warmup_request  # TensorFlow's protos; the core itself does not

        run_saved_model_warmup(
            path,
            functools.partial(
                warmup_request.run_warmup_request,
                servable,
                version,
                self.options.enable_signature_method_name_check,
            ),
            self.options.num_request_iterations_for_warmup,
            METRICS.record_warmup,
        )

    # ---- requests ----------------------------------------------------------------------------

    def resolve_version(self, name: str, version: int | None, label: str | None) -> int | None:
        """The version a model spec asks for: explicit, via a label, or ``None`` (latest).
        Raises INVALID_ARGUMENT for a spec without a name or with an unknown label."""
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        if label:
            resolved = self._labels.get(name, {}).get(label)
            if resolved is None:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
            return resolved
        return version

    def servable(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> AbstractContextManager[tuple[int, Servable]]:
        """A context manager yielding ``(version, servable)`` (a SavedModel or TF Lite
        servable); see :meth:`AspiredVersionsManager.servable_handle`."""
        return self.manager.servable_handle(name, self.resolve_version(name, version, label))

    def predict(
        self,
        name: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: int | None = None,
        label: str | None = None,
        signature_name: str = "",
        output_filter: Sequence[str] = (),
    ) -> predict_util.PredictAnswer:
        """Run a predict signature of the requested version (inputs checked first)."""
        with self.servable(name, version, label) as (served_version, servable):
            return predict_util.run_predict(
                served_version,
                servable,
                inputs,
                signature_name,
                output_filter,
                method_name_check=self.options.enable_signature_method_name_check,
            )

    def model_status(self, name: str, version: int | None = None) -> list[ServableState]:
        """States of the model's versions, newest first (``GetModelStatus``)."""
        states = self.monitor.versions(name)
        if not states:
            raise not_found(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            return [states[version]]
        return [states[v] for v in sorted(states, reverse=True)]

    def cancel_waits(self) -> None:
        """The server is shutting down: every reload waiting for its models to become
        AVAILABLE (the start-up, ``HandleReloadConfigRequest``, a config-file poll) stops
        waiting and raises UNAVAILABLE, now and from now on. Idempotent."""
        self._stopping.set()
        self.monitor.wake_waiters()

    def stop(self) -> None:
        """Stop waiting (:meth:`cancel_waits`) and polling, unload everything and stop the
        batch threads."""
        self.cancel_waits()
        self._source.stop()
        self.manager.stop()
        if self._batch_scheduler is not None:
            self._batch_scheduler.close()
