"""The body of a REST error: a status message as ``MakeJsonFromStatus`` of TF Serving's
``util/json_tensor.cc`` writes it. Thread-safe."""

from __future__ import annotations

from .json_values import to_bytes
from .json_writer import quote

__all__ = ["encode_error"]


def encode_error(message: str) -> bytes:
    """``{"error": message}`` laid out as ``MakeJsonFromStatus`` writes it."""
    return to_bytes('{\n    "error": ' + quote(message) + "\n}")
