"""A request body as the JSON document that the predict, classify and regress decoders read.

:func:`parse_json` is TF Serving's ``ParseJson`` (``util/json_tensor.cc``): the body as
:mod:`.json_reader` reads it, large numeric arrays left to :mod:`.numeric_arrays`, and the top
level must be an object. :func:`signature_name` reads the ``signature_name`` key as upstream's
``FillSignature`` does for all three request kinds. Thread-safe.
"""

from __future__ import annotations

from typing import Any

from ...core.status import invalid_argument
from . import numeric_arrays
from .json_reader import parse_document
from .json_writer import debug_string, format_error

__all__ = ["parse_json", "signature_name"]


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a request body as TF Serving's ``ParseJson`` does; the top level must be an object.

    Strings come back as ``str``; bytes that are not valid UTF-8 are kept as lone surrogates
    (``surrogateescape``), so encoding with ``surrogateescape`` gives back the exact bytes.

    In a large body (:data:`.numeric_arrays.SPAN_MIN_BYTES`, read at each call), a large array
    of numbers may be left unconverted (see :class:`.numeric_arrays.NumericSpan`):
    :func:`signature_name`, :func:`.predict_request.decode_predict_request` and
    :func:`.examples.decode_examples` read such a document exactly as the fully parsed one.

    Raises:
        ServingStatusError: INVALID_ARGUMENT, ``JSON Parse error: <reason> at offset: <N>`` (or
            ``JSON Parse error: The document is empty`` for an empty body), or
            ``JSON Value: <value> Is not object``.
    """
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    doc = (
        numeric_arrays.parse_with_spans(body)
        if len(body) >= numeric_arrays.SPAN_MIN_BYTES
        else None
    )
    if doc is None:
        doc = parse_document(body)
    if not isinstance(doc, dict):
        raise format_error(doc, "Is not object")
    return doc


def signature_name(doc: dict[str, Any]) -> str:
    """The request's ``signature_name`` ("" when absent) as ``FillSignature`` reads it.

    Raises:
        ServingStatusError: INVALID_ARGUMENT when the key holds anything but a string.
    """
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if not isinstance(name, str):
        numeric_arrays.materialize(doc)
        raise invalid_argument(
            f"JSON Value: {debug_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name
