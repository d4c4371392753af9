"""servables.util: the serialized examples of an Input, ModelSpec of answers, DebugString."""

from __future__ import annotations

import pytest
from tensorflow.core.example import example_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import input_pb2, model_pb2

from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.servables.util import (
    debug_string,
    input_to_serialized_examples,
    make_model_spec,
    shape_debug_string,
)


def example(**features: list[float]) -> example_pb2.Example:
    message = example_pb2.Example()
    for name, values in features.items():
        message.features.feature[name].float_list.value.extend(values)
    return message


def test_example_list_is_serialized_one_entry_per_example() -> None:
    request_input = input_pb2.Input()
    request_input.example_list.examples.extend([example(x=[1.0]), example(x=[2.0])])
    examples = input_to_serialized_examples(request_input)
    assert examples.dtype == object and examples.shape == (2,)
    assert [example_pb2.Example.FromString(e) for e in examples] == [
        example(x=[1.0]),
        example(x=[2.0]),
    ]


def test_context_is_merged_into_every_example_and_examples_win() -> None:
    request_input = input_pb2.Input()
    with_context = request_input.example_list_with_context
    with_context.context.CopyFrom(example(a=[1.0], b=[2.0]))
    with_context.examples.extend([example(x=[3.0]), example(b=[4.0])])
    parsed = [
        example_pb2.Example.FromString(e) for e in input_to_serialized_examples(request_input)
    ]
    assert parsed == [example(a=[1.0], b=[2.0], x=[3.0]), example(a=[1.0], b=[4.0])]


@pytest.mark.parametrize("kind", ["none", "example_list", "example_list_with_context"])
def test_no_examples_is_upstreams_input_is_empty(kind: str) -> None:
    request_input = input_pb2.Input()
    if kind == "example_list":
        request_input.example_list.SetInParent()
    elif kind == "example_list_with_context":
        request_input.example_list_with_context.context.CopyFrom(example(a=[1.0]))
    with pytest.raises(ServingStatusError) as exc:
        input_to_serialized_examples(request_input)
    assert (exc.value.code, exc.value.message) == (Code.INVALID_ARGUMENT, "Input is empty.")


def test_model_spec_names_the_default_signature_and_the_version_if_known() -> None:
    spec = model_pb2.ModelSpec(name="old", version_label="stale")
    make_model_spec(spec, "m", "", 3)
    expected = model_pb2.ModelSpec(name="m", signature_name="serving_default")
    expected.version.value = 3
    assert spec == expected
    make_model_spec(spec, "m", "s", None)
    assert spec == model_pb2.ModelSpec(name="m", signature_name="s")
    assert not spec.HasField("version")


def test_shape_debug_string() -> None:
    assert [shape_debug_string(s) for s in [(), (2,), (2, 3)]] == ["[]", "[2]", "[2,3]"]


def test_debug_string_prints_maps_sorted_as_cpp_does() -> None:
    sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/classify")
    for alias in ("scores", "classes"):  # Python's printer would keep this order
        sig.outputs[alias].name = f"{alias}:0"
        sig.outputs[alias].dtype = 1
    sig.inputs["inputs"].name = "inputs:0"
    sig.inputs["inputs"].dtype = 7
    sig.inputs["inputs"].tensor_shape.dim.add(size=-1)
    assert debug_string(sig) == (
        "inputs {\n"
        '  key: "inputs"\n'
        "  value {\n"
        '    name: "inputs:0"\n'
        "    dtype: DT_STRING\n"
        "    tensor_shape {\n"
        "      dim {\n"
        "        size: -1\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
        "outputs {\n"
        '  key: "classes"\n'
        "  value {\n"
        '    name: "classes:0"\n'
        "    dtype: DT_FLOAT\n"
        "  }\n"
        "}\n"
        "outputs {\n"
        '  key: "scores"\n'
        "  value {\n"
        '    name: "scores:0"\n'
        "    dtype: DT_FLOAT\n"
        "  }\n"
        "}\n"
        'method_name: "tensorflow/serving/classify"\n'
    )
