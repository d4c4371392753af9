"""tfserve-nb: TensorFlow Serving in the notebook.

Three lines — export, serve, predict — and a real TF-Serving-compatible server answers::

    import tfserve_nb as tfs
    tfs.export_model(model, "models/digits")           # -> models/digits/1/
    server = tfs.serve("models/digits")                  # embedded, docker or local backend
    server.predict(x)

Heavy dependencies (TensorFlow, gRPC, Docker, ipywidgets) are imported on first use, so
``import tfserve_nb`` is instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "All",
    "ClassifySignature",
    "ExportedModel",
    "Latest",
    "ModelConfig",
    "ModelServer",
    "RegressSignature",
    "ServingClient",
    "Specific",
    "TrafficSplit",
    "__version__",
    "dashboard",
    "errors",
    "export_model",
    "serve",
]

_LAZY = {
    "export_model": "tfserve_nb.export",
    "ExportedModel": "tfserve_nb.export",
    "ClassifySignature": "tfserve_nb.export",
    "RegressSignature": "tfserve_nb.export",
    "serve": "tfserve_nb.handle",
    "ModelServer": "tfserve_nb.handle",
    "ServingClient": "tfserve_nb.client",
    "ModelConfig": "tfserve_nb.config",
    "Latest": "tfserve_nb.core.version_policy",
    "All": "tfserve_nb.core.version_policy",
    "Specific": "tfserve_nb.core.version_policy",
    "TrafficSplit": "tfserve_nb.traffic.split",
    "dashboard": "tfserve_nb.widgets",
    "errors": "tfserve_nb.errors",
}

if TYPE_CHECKING:
    from . import errors
    from .client import ServingClient
    from .config import ModelConfig
    from .core.version_policy import All, Latest, Specific
    from .export import ClassifySignature, ExportedModel, RegressSignature, export_model
    from .handle import ModelServer, serve
    from .traffic.split import TrafficSplit
    from .widgets import dashboard


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfserve_nb' has no attribute {name!r}")
    value = importlib.import_module(module)
    return value if name == "errors" else getattr(value, name)


def __dir__() -> list[str]:
    return sorted(__all__)
