"""What the classify, regress and multi-inference runners share, after TF Serving's
``servables/tensorflow/util.cc``: the batch of serialized ``tf.Example`` an ``Input`` stands for,
running a signature on it, the ``ModelSpec`` of an answer, and ``DebugString`` as error texts
print a ``SignatureDef``.

A *servable* here is anything with ``signature_def_map`` (the ``SignatureDef`` protos),
``signatures`` (:class:`~tfserve_nb.protocol.signature.Signature` by key) and
``run(signature, inputs, aliases)``, e.g. a
:class:`~tfserve_nb.servables.saved_model.SavedModelServable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from google.protobuf import message_factory, text_format

from ..core.status import invalid_argument
from ..protocol.signature import DEFAULT_SERVING_SIGNATURE_DEF_KEY
from .servable import Servable

EXAMPLES_INPUT = "inputs"
"""The input alias of classify and regress signatures (``kClassifyInputs``, ``kRegressInputs``)."""


def input_to_serialized_examples(request_input: Any) -> np.ndarray:
    """``InputToSerializedExampleTensor``: a 1-D object array holding one serialized
    ``tf.Example`` per example of ``request_input`` (a ``tensorflow.serving.Input``).

    For an ``ExampleListWithContext`` each entry is the context's bytes followed by the
    example's: parsed, that is the two merged, the example's features replacing the context's
    features of the same name.

    Raises:
        ServingStatusError: INVALID_ARGUMENT ``Input is empty.`` without examples.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        serialized = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        context = with_context.context.SerializeToString()
        serialized = [context + e.SerializeToString() for e in with_context.examples]
    else:
        serialized = []
    if not serialized:
        raise invalid_argument("Input is empty.")
    examples = np.empty(len(serialized), dtype=object)
    examples[:] = serialized
    return examples


def run_on_examples(
    servable: Servable, signature_key: str, examples: np.ndarray, aliases: Sequence[str]
) -> dict[str, np.ndarray]:
    """Run signature ``signature_key`` of ``servable`` with ``examples`` fed to its
    :data:`EXAMPLES_INPUT` and return the outputs named in ``aliases``.

    Raises:
        ServingStatusError: the servable's: TensorFlow's INVALID_ARGUMENT ``Expects arg[0] to be
            <dtype> but string is provided`` when the graph tensor that input names is not a
            string tensor, and TensorFlow's own errors (e.g. an example missing a feature)
            with their codes.
    """
    return servable.run(servable.signatures[signature_key], {EXAMPLES_INPUT: examples}, aliases)


def make_model_spec(model_spec: Any, name: str, signature_name: str, version: int | None) -> None:
    """``MakeModelSpec``: fill the answer's ``model_spec`` with the model ``name``, the
    signature (empty means ``serving_default``) and, when given, the version."""
    model_spec.Clear()
    model_spec.name = name
    model_spec.signature_name = signature_name or DEFAULT_SERVING_SIGNATURE_DEF_KEY
    if version is not None:
        model_spec.version.value = version


def shape_debug_string(shape: Sequence[int]) -> str:
    """``TensorShape::DebugString`` of a concrete shape: ``[2,3]``, ``[]`` for a scalar."""
    return "[" + ",".join(map(str, shape)) + "]"


def debug_string(message: Any, indent: int = 0) -> str:
    """``Message::DebugString()``: protobuf text format, fields in number order and map entries
    sorted by key, as C++ prints them (Python's printer keeps a map's own order)."""
    pad = " " * indent
    parts = []
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry_class = message_factory.GetMessageClass(field.message_type)
            for key in sorted(value):
                entry = entry_class(key=key)
                if field.message_type.fields_by_name["value"].message_type is not None:
                    entry.value.CopyFrom(value[key])
                else:
                    entry.value = value[key]
                parts.append(f"{pad}{field.name} {{\n{debug_string(entry, indent + 2)}{pad}}}\n")
        elif field.message_type is not None:
            items = value if field.is_repeated else [value]
            parts.extend(
                f"{pad}{field.name} {{\n{debug_string(item, indent + 2)}{pad}}}\n" for item in items
            )
        else:
            holder = type(message)()
            if field.is_repeated:
                getattr(holder, field.name).extend(value)
            else:
                setattr(holder, field.name, value)
            parts.append(text_format.MessageToString(holder, indent=indent))
    return "".join(parts)
