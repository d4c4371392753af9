"""Classify and regress over REST: request bodies to ``tensorflow.serving.Input`` (tf.Examples)
and results to response bodies, as TF Serving's ``util/json_tensor.cc`` does in
``FillClassificationRequestFromJson`` / ``FillRegressionRequestFromJson`` (each example by
``MakeExampleFromJsonObject``), ``MakeJsonFromClassificationResult`` and
``MakeJsonFromRegressionResult``.

Failures raise :class:`~tfserve_nb.core.status.ServingStatusError` with upstream's texts.
Thread-safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ...core.status import ServingStatusError, invalid_argument
from .json_values import INT64_MAX, is_double, json_type, to_bytes
from .json_writer import float_tokens, format_error, quote
from .numeric_arrays import materialize
from .request_document import signature_name
from .tensor_values import decode_base64_object, is_base64_object

if TYPE_CHECKING:
    from tensorflow_serving.apis.classification_pb2 import ClassificationResult
    from tensorflow_serving.apis.input_pb2 import Input
    from tensorflow_serving.apis.regression_pb2 import RegressionResult

__all__ = ["decode_examples", "encode_classify_results", "encode_regress_results"]


def _feature_error(name: str, value: Any) -> ServingStatusError:
    return invalid_argument(
        f"Feature: {name} has element with unexpected JSON type: {json_type(value)}"
    )


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}


def _fill_example(value: Any, example: Any) -> None:
    """``MakeExampleFromJsonObject``: each member is a feature holding a value or a list."""
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {json_type(value)}")
    for name, content in value.items():
        kind: str | None = None
        collected: list[Any] = []
        converted: Any
        for item in content if isinstance(content, list) else (content,):
            if item is None or isinstance(item, list):
                raise _feature_error(name, item)
            if isinstance(item, bool):
                item_kind, converted = "int64_list", int(item)
            elif isinstance(item, dict):
                if not is_base64_object(item):
                    raise _feature_error(name, item)
                item_kind, converted = "bytes_list", item
            elif isinstance(item, str):
                item_kind, converted = "bytes_list", to_bytes(item)
            elif is_double(item):
                item_kind, converted = "float_list", float(item)
            else:
                item_kind, converted = "int64_list", item
            if kind is not None and kind != item_kind:
                raise invalid_argument(
                    f"Unexpected element type in feature: {name} expecting type: "
                    f"{_KIND_NAMES[kind]}"
                )
            kind = item_kind
            if isinstance(converted, dict):
                converted = decode_base64_object(converted)
            elif item_kind == "int64_list" and converted > INT64_MAX:
                raise invalid_argument(
                    f"Feature: {name} has uint64_t element. Only int64_t is supported."
                )
            collected.append(converted)
        feature = example.features.feature[name]
        if kind is not None:
            getattr(feature, kind).value.extend(collected)


def decode_examples(doc: dict[str, Any]) -> Input:
    """The ``tensorflow.serving.Input`` of a classify or regress request body.

    ``{"signature_name"?, "context"?: {...}, "examples": [{feature: value | [values]}]}``:
    a JSON number with a fraction or exponent goes to ``float_list``, an integer or boolean to
    ``int64_list``, a string or ``{"b64": ...}`` to ``bytes_list``. With ``context`` the result
    is an ``ExampleListWithContext``, else an ``ExampleList``. Imports the example protos (and
    so TensorFlow) on first use.

    Raises:
        ServingStatusError: INVALID_ARGUMENT with upstream's texts.
    """
    from tensorflow_serving.apis import input_pb2

    materialize(doc)
    signature_name(doc)
    request_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        context = request_input.example_list_with_context.context
        context.SetInParent()
        _fill_example(doc["context"], context)
    if "examples" not in doc:
        raise format_error(
            doc, "When method is classify, key 'examples' is expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise format_error(doc, "'examples' value is an empty array")
    target = (
        request_input.example_list_with_context.examples
        if has_context
        else request_input.example_list.examples
    )
    for example in examples:
        _fill_example(example, target.add())
    return request_input


def encode_classify_results(result: ClassificationResult) -> bytes:
    """``{"results": [[["label", score], ...], ...]}`` as ``MakeJsonFromClassificationResult``.

    Raises:
        ServingStatusError: INVALID_ARGUMENT for a result without classifications.
    """
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classifications in result.classifications:
        classes = classifications.classes
        scores = float_tokens(np.array([c.score for c in classes], dtype=np.float32))
        pairs = (f"[{quote(c.label)}, {s}]" for c, s in zip(classes, scores, strict=True))
        rows.append("[" + ", ".join(pairs) + "]")
    return to_bytes('{\n    "results": [' + ", ".join(rows) + "\n    ]\n}")


def encode_regress_results(result: RegressionResult) -> bytes:
    """``{"results": [value, ...]}`` as ``MakeJsonFromRegressionResult``.

    Raises:
        ServingStatusError: INVALID_ARGUMENT for a result without regressions.
    """
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    values = np.array([r.value for r in result.regressions], dtype=np.float32)
    return to_bytes('{\n    "results": [' + ", ".join(float_tokens(values)) + "]\n}")
