"""The paths of TF Serving's REST API (``/v1/models/...``), as client and start-up probe send
them."""

from __future__ import annotations

import urllib.parse

__all__ = ["model_path"]


def model_path(name: str, version: int | None = None, label: str | None = None) -> str:
    """``/v1/models/NAME[/versions/N | /labels/L]``, the name and label URL-quoted (``/``
    included); ``version`` wins over ``label``. Alone it is the model-status path; append
    ``:predict`` or ``/metadata`` for those calls. Pure, so thread-safe."""
    path = f"/v1/models/{urllib.parse.quote(name, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{urllib.parse.quote(label, safe='')}"
    return path
