"""Parsed JSON values as rapidjson holds them: what :mod:`.json_reader` gives and the other
modules of the codec read.

A value is a ``dict`` (object), ``list`` (array), ``str``, ``bool``, ``None`` or a number (``int``
or ``float``). :func:`is_double` says which numbers rapidjson holds as doubles (the others are
64-bit integers, ``Int64``/``Uint64``), :func:`json_type` names a value's type as TF Serving's
``util/json_tensor.cc`` does in its error texts (``JsonTypeString``). Strings are taken as raw
bytes: bytes that are not valid UTF-8 come back as lone surrogates (``surrogateescape``), and
:func:`to_bytes` gives back the exact bytes. Pure functions; thread-safe.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INT64_MAX", "INT64_MIN", "UINT64_MAX", "is_double", "json_type", "to_bytes"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


def to_bytes(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates from undecodable input bytes become those bytes."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def json_type(value: Any) -> str:
    """rapidjson's type name of a parsed value (``JsonTypeString``)."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def is_double(value: Any) -> bool:
    """Whether rapidjson holds this parsed number as a double (not as a 64-bit integer)."""
    return isinstance(value, float) or not INT64_MIN <= value <= UINT64_MAX
