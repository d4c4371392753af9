"""tfserve-nb: TensorFlow Serving in the notebook.

Three lines — export, serve, predict — and a real TF-Serving-compatible server answers::

    import tfserve_nb as tfs
    tfs.export_model(model, "models/digits")           # -> models/digits/1/
    server = tfs.serve("models/digits")                  # embedded, docker or local backend
    server.predict(x)

Everything a notebook calls, every type those calls return and every exception they raise is
here (``__all__``). Heavy dependencies (TensorFlow, gRPC, Docker, ipywidgets) are imported on
first use, so ``import tfserve_nb`` is instant.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = [
    "All",
    "Autoscaling",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "ClassifySignature",
    "ConfigError",
    "ConfigReload",
    "Dashboard",
    "DeadlineExceededError",
    "ExportError",
    "ExportedModel",
    "InvalidArgumentError",
    "Latest",
    "Manifests",
    "ModelConfig",
    "ModelServer",
    "PredictResult",
    "RegressSignature",
    "ServerProcess",
    "ServerStartError",
    "ServerTimeoutError",
    "ServingClient",
    "ServingError",
    "Signature",
    "Specific",
    "StatusCall",
    "StorageError",
    "SwitchOutcome",
    "TensorSpec",
    "TfServeNbError",
    "TrafficSplit",
    "TrafficStoppedError",
    "VersionExistsError",
    "VersionStatus",
    "__version__",
    "dashboard",
    "deployment",
    "errors",
    "export_model",
    "push",
    "serve",
]

_LAZY = {
    "ExportedModel": "tfserve_nb.export",
    "ClassifySignature": "tfserve_nb.export",
    "RegressSignature": "tfserve_nb.export",
    "serve": "tfserve_nb.handle",
    "ModelServer": "tfserve_nb.handle",
    "ServingClient": "tfserve_nb.client",
    "PredictResult": "tfserve_nb.responses",
    "VersionStatus": "tfserve_nb.responses",
    "Signature": "tfserve_nb.protocol.signature",
    "TensorSpec": "tfserve_nb.protocol.signature",
    "Backend": "tfserve_nb.backends.base",
    "ServerProcess": "tfserve_nb.backends.base",
    "ModelConfig": "tfserve_nb.config",
    "push": "tfserve_nb.storage",
    "deployment": "tfserve_nb.deploy",
    "Manifests": "tfserve_nb.deploy",
    "Autoscaling": "tfserve_nb.deploy",
    "ConfigReload": "tfserve_nb.by_hand",
    "StatusCall": "tfserve_nb.by_hand",
    "Latest": "tfserve_nb.core.version_policy",
    "All": "tfserve_nb.core.version_policy",
    "Specific": "tfserve_nb.core.version_policy",
    "TrafficSplit": "tfserve_nb.traffic.split",
    "dashboard": "tfserve_nb.widgets",
    "Dashboard": "tfserve_nb.widgets",
    "SwitchOutcome": "tfserve_nb.widgets",
    "errors": "tfserve_nb.errors",
    "TfServeNbError": "tfserve_nb.errors",
    "ExportError": "tfserve_nb.errors",
    "ConfigError": "tfserve_nb.errors",
    "InvalidArgumentError": "tfserve_nb.errors",
    "BackendError": "tfserve_nb.errors",
    "BackendUnavailableError": "tfserve_nb.errors",
    "ServerStartError": "tfserve_nb.errors",
    "ServerTimeoutError": "tfserve_nb.errors",
    "ServingError": "tfserve_nb.errors",
    "DeadlineExceededError": "tfserve_nb.errors",
    "TrafficStoppedError": "tfserve_nb.errors",
    "StorageError": "tfserve_nb.errors",
    "VersionExistsError": "tfserve_nb.errors",
}

if TYPE_CHECKING:
    from . import errors
    from .backends.base import Backend, ServerProcess
    from .client import ServingClient
    from .config import ModelConfig
    from .core.version_policy import All, Latest, Specific
    from .errors import (
        BackendError,
        BackendUnavailableError,
        ConfigError,
        DeadlineExceededError,
        ExportError,
        InvalidArgumentError,
        ServerStartError,
        ServerTimeoutError,
        ServingError,
        TfServeNbError,
        TrafficStoppedError,
    )
    from .export import ClassifySignature, ExportedModel, RegressSignature, export_model
    from .handle import ModelServer, serve
    from .protocol.signature import Signature, TensorSpec
    from .responses import PredictResult, VersionStatus
    from .traffic.split import TrafficSplit
    from .widgets import Dashboard, SwitchOutcome, dashboard


def _export_model() -> Callable[..., Any]:
    """:func:`tfserve_nb.export.export_model` (its signature and docstring), which first has the
    embedded backend start its standby child (:mod:`tfserve_nb.backends.standby`: TensorFlow and
    the model server imported while the export runs, so that a ``serve()`` after it need not
    wait for them; ``TFSERVE_NB_STANDBY=0`` turns it off). Not for an object-storage base path,
    which ``serve()`` does not serve."""
    from .backends.embedded import EmbeddedBackend
    from .export import export_model

    @functools.wraps(export_model)
    def export_model_with_standby(*args: Any, **kwargs: Any) -> Any:
        base_path = kwargs.get("base_path", args[1] if len(args) > 1 else "")
        if "://" not in str(base_path):  # a local repository: a serve() of it may follow
            EmbeddedBackend().prepare_standby()
        return export_model(*args, **kwargs)

    return export_model_with_standby


def __getattr__(name: str) -> Any:
    if name == "export_model":
        wrapped = globals()[name] = _export_model()  # built once
        return wrapped
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfserve_nb' has no attribute {name!r}")
    value = importlib.import_module(module)
    return value if name == "errors" else getattr(value, name)


def __dir__() -> list[str]:
    return sorted(__all__)
