"""Predict request bodies to input arrays: ``FillPredictRequestFromJson`` of TF Serving's
``util/json_tensor.cc``.

The ``instances`` (row, :data:`ROW`) and ``inputs`` (columnar, :data:`COLUMNAR`) formats, dtypes
taken from the signature, every error text; each value becomes a tensor as in
:mod:`.tensor_values`, and arrays that :mod:`.numeric_arrays` left unconverted go straight into
theirs. Error messages that wrap another status (``Failed to process element: ...Error:
<status>``) print the inner status as ``absl::Status::ToString()`` does in TF Serving 2.x:
``INVALID_ARGUMENT: ...``.

Deliberate deviation: signature inputs are visited in sorted alias order (upstream visits a
protobuf map, whose order is unspecified): it decides which of several errors is reported.

Thread-safe.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...core.status import ServingStatusError, invalid_argument
from ...protocol.signature import Signature
from .json_writer import debug_string, format_error
from .numeric_arrays import NumericSpan, SpanDoc, materialize
from .request_document import signature_name
from .tensor_values import (
    careful_tensor,
    fast_tensor,
    is_base64_object,
    shape_string,
    value_to_array,
)

__all__ = ["COLUMNAR", "ROW", "decode_predict_request"]


ROW = "row"
"""Request format of ``{"instances": [...]}``; answered with ``{"predictions": ...}``."""
COLUMNAR = "columnar"
"""Request format of ``{"inputs": ...}``; answered with ``{"outputs": ...}``."""


def _status_string(error: ServingStatusError) -> str:
    """``absl::Status::ToString()``: ``INVALID_ARGUMENT: message``."""
    return f"{error.code.name}: {error.message}"


def _is_element_object(value: Any) -> bool:
    """An ``instances`` element naming its inputs (an object that is not base64 data)."""
    return isinstance(value, dict) and not is_base64_object(value)


class _InstanceBatch:
    """``AddInstanceItem`` state: each input's per-instance arrays, first size and shape."""

    def __init__(self, signature: Signature) -> None:
        self.specs = signature.inputs
        self.items: dict[str, list[np.ndarray]] = {}
        self.sizes: dict[str, int] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def add(self, value: Any, name: str) -> None:
        if name not in self.specs:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        array, shape, size = careful_tensor(value, self.specs[name].dtype)
        if name not in self.sizes:
            self.sizes[name] = size
            self.shapes[name] = shape
        elif self.sizes[name] != size:
            raise invalid_argument(f"Expecting tensor size: {self.sizes[name]} but got: {size}")
        elif self.shapes[name] != shape:
            raise invalid_argument(
                f"Expecting shape {shape_string(self.shapes[name])} but got: {shape_string(shape)}"
            )
        self.items.setdefault(name, []).append(array)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.stack(items) for name, items in self.items.items()}


def _careful_instances(instances: list[Any], signature: Signature) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInstancesList``, element by element, with upstream's errors."""
    names = sorted(signature.inputs)
    batch = _InstanceBatch(signature)
    if _is_element_object(instances[0]):
        for index, element in enumerate(instances):
            if not _is_element_object(element):
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list"
                )
            for key, value in element.items():
                try:
                    batch.add(value, key)
                except ServingStatusError as exc:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {key} of 'instances' list. "
                        f"Error: {_status_string(exc)}"
                    ) from None
            if set(element) != set(names):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{debug_string(element)} keys must be equal to: {','.join(names)}"
                )
    else:
        for index, element in enumerate(instances):
            if _is_element_object(element):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list"
                )
            try:
                batch.add(element, names[0])
            except ServingStatusError as exc:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. "
                    f"Error: {_status_string(exc)}"
                ) from None
    return batch.arrays()


def _decode_instances(instances: list[Any], signature: Signature) -> dict[str, np.ndarray]:
    """The row format: one batch entry per element of ``instances``."""
    names = sorted(signature.inputs)
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    if not _is_element_object(instances[0]):
        fast = fast_tensor(instances, signature.inputs[names[0]].dtype)
        if fast is not None and fast.ndim:
            return {names[0]: fast}
        return _careful_instances(instances, signature)
    name_set = set(names)
    if all(_is_element_object(e) and e.keys() == name_set for e in instances):
        arrays = {}
        for name in names:
            fast = fast_tensor([e[name] for e in instances], signature.inputs[name].dtype)
            if fast is None:
                break
            arrays[name] = fast
        else:
            return arrays
    return _careful_instances(instances, signature)


def _decode_inputs(inputs: Any, signature: Signature) -> dict[str, np.ndarray]:
    """The columnar format (``FillTensorMapFromInputsMap``): no batch dimension is added."""
    names = sorted(signature.inputs)
    if not isinstance(inputs, dict) or is_base64_object(inputs):
        if len(names) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: value_to_array(inputs, signature.inputs[names[0]].dtype)}
    arrays = {}
    for name in names:
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = value_to_array(inputs[name], signature.inputs[name].dtype)
    return arrays


def _decode_spans(
    doc: dict[str, Any], signature: Signature
) -> tuple[dict[str, np.ndarray], str] | None:
    """:func:`decode_predict_request` of a body whose tensors are unconverted numeric arrays
    (:class:`NumericSpan`), converting them directly; ``None`` where the regular path must run
    (on the materialized document) to give today's result or error."""
    if not isinstance(doc, SpanDoc) or not doc.spans:
        return None
    names = sorted(signature.inputs)
    if "instances" in doc:
        instances = doc["instances"]
        if "inputs" in doc or len(names) != 1 or not isinstance(instances, NumericSpan):
            return None
        array = instances.to_array(signature.inputs[names[0]].dtype)
        return None if array is None else ({names[0]: array}, ROW)
    if "inputs" not in doc:
        return None
    inputs = doc["inputs"]
    if isinstance(inputs, NumericSpan):
        if len(names) != 1:
            return None
        array = inputs.to_array(signature.inputs[names[0]].dtype)
        return None if array is None else ({names[0]: array}, COLUMNAR)
    if (
        not isinstance(inputs, dict)
        or is_base64_object(inputs)
        or any(container is not inputs and container is not doc for container, _, _ in doc.spans)
    ):
        return None  # (the errors of the regular path may print arrays nested deeper)
    arrays = {}
    for name in names:  # as _decode_inputs
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        value, dtype = inputs[name], signature.inputs[name].dtype
        if isinstance(value, NumericSpan):
            array = value.to_array(dtype)
            if array is not None:
                arrays[name] = array
                continue
            value = inputs[name] = value.value()
        arrays[name] = value_to_array(value, dtype)
    return arrays, COLUMNAR


def decode_predict_request(
    doc: dict[str, Any], signature: Signature
) -> tuple[dict[str, np.ndarray], str]:
    """The input arrays of a predict request, keyed by signature input alias, and its format.

    ``doc`` is a body from :func:`.request_document.parse_json`; ``signature`` is the one the
    request's ``signature_name`` resolved to. Arrays have the numpy dtype of the signature's
    dtype (strings: object arrays of ``bytes``). The format is :data:`ROW` for ``instances`` (the
    batch dimension is the list) and :data:`COLUMNAR` for ``inputs``.

    Raises:
        ServingStatusError: upstream's INVALID_ARGUMENT texts; UNIMPLEMENTED for a columnar
            value of a dtype JSON cannot express (in row format upstream wraps that into
            ``Failed to process element: ...``, an INVALID_ARGUMENT).
    """
    name = signature_name(doc)
    if not signature.inputs:
        raise invalid_argument(f"Failed to get input map for signature: {name or 'DEFAULT'}")
    decoded = _decode_spans(doc, signature)
    if decoded is not None:
        return decoded
    materialize(doc)
    if "instances" in doc:
        if "inputs" in doc:
            raise format_error(
                doc,
                "Not formatted correctly expecting only one of 'inputs' or 'instances' "
                "keys to exist ",
            )
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise format_error(doc, "Expecting 'instances' to be an list/array")
        if not instances:
            raise format_error(doc, "No values in 'instances' array")
        return _decode_instances(instances, signature), ROW
    if "inputs" in doc:
        return _decode_inputs(doc["inputs"], signature), COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")
