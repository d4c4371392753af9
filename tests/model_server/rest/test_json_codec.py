"""The REST JSON codec against TF Serving's ``json_tensor_test.cc`` and upstream's exact texts.

Tests named after an upstream test say so in a comment (``# upstream: JsontensorTest.X``); the
expected values and messages there come from ``json_tensor.cc`` and rapidjson 1.1.0.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.model_server.rest import json_reader, json_writer, tensor_values
from tfserve_nb.model_server.rest.error_response import encode_error
from tfserve_nb.model_server.rest.examples import (
    decode_examples,
    encode_classify_results,
    encode_regress_results,
)
from tfserve_nb.model_server.rest.predict_request import COLUMNAR, ROW, decode_predict_request
from tfserve_nb.model_server.rest.predict_response import encode_predict_response
from tfserve_nb.model_server.rest.request_document import parse_json, signature_name
from tfserve_nb.protocol.signature import Signature, TensorSpec


def make_signature(**dtypes: str) -> Signature:
    inputs = {alias: TensorSpec(alias, dtype, None) for alias, dtype in dtypes.items()}
    return Signature("serving_default", "tensorflow/serving/predict", inputs)


def decode(body: str | bytes, **dtypes: str) -> tuple[dict[str, np.ndarray], str]:
    data = body.encode() if isinstance(body, str) else body
    return decode_predict_request(parse_json(data), make_signature(**dtypes))


def error_of(body: str | bytes, **dtypes: str) -> ServingStatusError:
    with pytest.raises(ServingStatusError) as info:
        decode(body, **dtypes)
    return info.value


def assert_invalid(body: str | bytes, message: str, **dtypes: str) -> None:
    error = error_of(body, **dtypes)
    assert (error.code, error.message) == (Code.INVALID_ARGUMENT, message)


def assert_array(array: np.ndarray, expected: object, dtype: type) -> None:
    assert array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(array, np.array(expected, dtype=dtype))


def element_error(index: int, message: str) -> str:
    prefix = f"Failed to process element: {index} of 'instances' list. Error: INVALID_ARGUMENT: "
    return prefix + message


# --- predict requests: accepted bodies -----------------------------------------------------------


def test_single_unnamed_tensor() -> None:
    # upstream: JsontensorTest.SingleUnnamedTensor
    inputs, fmt = decode('{"instances": [[1,2],[3,4],[5,6]]}', default="DT_INT32")
    assert fmt == ROW
    assert list(inputs) == ["default"]
    assert_array(inputs["default"], [[1, 2], [3, 4], [5, 6]], np.int32)


def test_deeply_nested_well_formed() -> None:
    # upstream: JsontensorTest.DeeplyNestedWellFormed (far deeper than Python's recursion limit)
    body = '{"instances":[1], "nested":' + "[" * 500000 + "]" * 500000 + "}"
    inputs, _ = decode(body, default="DT_INT32")
    assert_array(inputs["default"], [1], np.int32)


def test_deeply_nested_malformed() -> None:
    # upstream: JsontensorTest.DeeplyNestedMalformed
    body = '{"signature_name":' + "[" * 500000 + "]" * 500000 + "}"
    error = error_of(body, default="DT_INT32")
    assert error.code == Code.INVALID_ARGUMENT
    prefix = 'JSON Value: {\n    "signature_name": '
    assert error.message.startswith(prefix + "[[[")
    # The debug string stops at the first event once 256 bytes are written.
    assert error.message == (
        prefix + "[" * (256 - len(prefix) + len("JSON Value: ")) + " not formatted correctly. "
        "'signature_name' key must be a string value."
    )


def test_mixed_input_for_float_tensor() -> None:
    # upstream: JsontensorTest.MixedInputForFloatTensor
    inputs, _ = decode('{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}', default="DT_FLOAT")
    assert_array(inputs["default"], [1, 2.0, 3, 4, 5.003, 0.007, 0.0], np.float32)


def test_mixed_input_for_double_tensor() -> None:
    # upstream: JsontensorTest.MixedInputForDoubleTensor
    inputs, _ = decode('{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}', default="DT_DOUBLE")
    assert_array(inputs["default"], [1.0, 2, 3, 4, 0.662, 0, 0.0], np.float64)


def test_float_tensor_with_precision_loss() -> None:
    # upstream: JsontensorTest.FloatTensorWithPrecisionLoss
    for literal in ("1435774380", "1435774380.0"):
        inputs, _ = decode(f'{{"instances": [{literal}]}}', default="DT_FLOAT")
        assert_array(inputs["default"], [1435774380], np.float32)


def test_float_tensor_that_exceeds_max_returns_inf() -> None:
    # upstream: JsontensorTest.FloatTensorThatExceedsMaxReturnsInf
    inputs, _ = decode(
        '{"instances": [1.7976931348623157e308, -1.7976931348623157e308]}', default="DT_FLOAT"
    )
    assert_array(inputs["default"], [np.inf, -np.inf], np.float32)


def test_float_tensor_that_exceeds_min_returns_zero() -> None:
    # upstream: JsontensorTest.FloatTensorThatExceedsMinReturnsZero
    inputs, _ = decode(
        '{"instances": [2.2250738585072014e-308, -2.2250738585072014e-308]}', default="DT_FLOAT"
    )
    values = inputs["default"]
    assert_array(values, [0.0, -0.0], np.float32)
    assert list(np.signbit(values)) == [False, True]


def test_single_unnamed_tensor_with_signature() -> None:
    # upstream: JsontensorTest.SingleUnnamedTensorWithSignature
    doc = parse_json(b'{"signature_name": "predict_images", "instances": [[1,2]]}')
    assert signature_name(doc) == "predict_images"
    inputs, fmt = decode_predict_request(doc, make_signature(default="DT_INT32"))
    assert fmt == ROW
    assert_array(inputs["default"], [[1, 2]], np.int32)


def test_tensor_from_non_null_terminated_buffer() -> None:
    # upstream: JsontensorTest.TensorFromNonNullTerminatedBuffer (anything after the top-level
    # value is ignored, as with rapidjson's kParseStopWhenDoneFlag)
    inputs, _ = decode('{"instances": [[1,2],[3,4],[5,6]]}X', default="DT_INT32")
    assert_array(inputs["default"], [[1, 2], [3, 4], [5, 6]], np.int32)


def test_single_unnamed_tensor_base64_scalars() -> None:
    # upstream: JsontensorTest.SingleUnnamedTensorBase64Scalars
    inputs, _ = decode(
        '{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}', default="DT_STRING"
    )
    assert inputs["default"].dtype == object
    assert inputs["default"].tolist() == [b"hello", b"world"]


def test_single_unnamed_tensor_base64_lists() -> None:
    # upstream: JsontensorTest.SingleUnnamedTensorBase64Lists
    inputs, _ = decode(
        '{"instances": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}', default="DT_STRING"
    )
    assert inputs["default"].tolist() == [[b"hello"], [b"world"]]


def test_single_named_tensor_base64() -> None:
    # upstream: JsontensorTest.SingleNamedTensorBase64
    body = '{"instances": [{"default": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}]}'
    inputs, _ = decode(body, default="DT_STRING")
    assert inputs["default"].shape == (1, 2, 1)
    assert inputs["default"].tolist() == [[[b"hello"], [b"world"]]]


def test_multiple_named_tensor() -> None:
    # upstream: JsontensorTest.MultipleNamedTensor
    body = """{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"],
         "float_tensor": [1.0, NaN], "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"],
         "float_tensor": [2.0, Infinity], "dbl_tensor": [2.0]}]}"""
    inputs, fmt = decode(
        body,
        int_tensor="DT_INT32",
        str_tensor="DT_STRING",
        float_tensor="DT_FLOAT",
        dbl_tensor="DT_DOUBLE",
    )
    assert fmt == ROW
    assert_array(
        inputs["int_tensor"], [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32
    )
    assert inputs["str_tensor"].tolist() == [[b"foo", b"bar"], [b"baz", b"bat"]]
    assert_array(inputs["float_tensor"], [[1.0, np.nan], [2.0, np.inf]], np.float32)
    assert_array(inputs["dbl_tensor"], [[np.nan], [2.0]], np.float64)


def test_single_unnamed_tensor_columnar_format() -> None:
    # upstream: JsontensorTest.SingleUnnamedTensorColumnarFormat
    for body in (
        '{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}',
        '{"inputs": [[[1,2],[3,4],[5,6]]]}',
    ):
        inputs, fmt = decode(body, int_tensor="DT_INT32")
        assert fmt == COLUMNAR
        assert_array(inputs["int_tensor"], [[[1, 2], [3, 4], [5, 6]]], np.int32)


def test_multiple_named_tensor_columnar_format() -> None:
    # upstream: JsontensorTest.MultipleNamedTensorColumnarFormat
    body = """{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"],
                         "bin_tensor": {"b64": "aGVsbG8="}, "ignored": 1}}"""
    inputs, fmt = decode(
        body, int_tensor="DT_INT32", str_tensor="DT_STRING", bin_tensor="DT_STRING"
    )
    assert fmt == COLUMNAR
    assert sorted(inputs) == ["bin_tensor", "int_tensor", "str_tensor"]
    assert_array(inputs["int_tensor"], [[[1, 2], [3, 4], [5, 6]]], np.int32)
    assert inputs["str_tensor"].tolist() == [b"foo", b"bar"]
    assert inputs["bin_tensor"].shape == ()
    assert inputs["bin_tensor"].item() == b"hello"


@pytest.mark.parametrize(
    ("dtype", "values", "numpy_dtype"),
    [
        ("DT_INT8", [-5, 127], np.int8),
        ("DT_INT16", [-300, 300], np.int16),
        ("DT_UINT8", [0, 255], np.uint8),
        ("DT_INT32", [-(2**31), 2**31 - 1], np.int32),
        ("DT_INT64", [-(2**63), 2**63 - 1], np.int64),
        ("DT_UINT32", [0, 2**32 - 1], np.uint32),
        ("DT_UINT64", [0, 2**64 - 1], np.uint64),
        ("DT_BOOL", [True, False], np.bool_),
        ("DT_DOUBLE", [0.1, -2], np.float64),
    ],
)
def test_dtype_ranges_accepted(dtype: str, values: list[object], numpy_dtype: type) -> None:
    for body in (json.dumps({"instances": values}), json.dumps({"inputs": [values]})):
        array = next(iter(decode(body, x=dtype)[0].values()))
        assert_array(array.reshape(-1), values, numpy_dtype)


def test_small_integer_types_wrap_like_int_val() -> None:
    # int8/int16/uint8 travel in int_val (int32) and are cast, so 300 becomes 44 as a uint8.
    inputs, _ = decode('{"instances": [300, -1]}', x="DT_UINT8")
    assert_array(inputs["x"], [44, 255], np.uint8)


def test_strings_are_utf8_bytes_and_raw_bytes_survive() -> None:
    inputs, _ = decode(b'{"inputs": ["h\\u00e9", "\\ud83d\\ude00"]}', s="DT_STRING")
    assert inputs["s"].tolist() == ["hé".encode(), "😀".encode()]
    # rapidjson does not validate UTF-8: undecodable bytes reach the model unchanged.
    inputs, _ = decode(b'{"inputs": ["\xff\xfe"]}', s="DT_STRING")
    assert inputs["s"].tolist() == [b"\xff\xfe"]
    # A lone low surrogate is written out as its (invalid) UTF-8 bytes, as rapidjson does.
    inputs, _ = decode(b'{"inputs": ["\\udc00"]}', s="DT_STRING")
    assert inputs["s"].tolist() == [b"\xed\xb0\x80"]


def test_base64_follows_absl_unescape() -> None:
    # Padding optional, whitespace ignored, '.' as padding, trailing bits ignored.
    for text, expected in [
        ("aGVsbG8", b"hello"),
        ("aGVs bG8=", b"hello"),
        ("aGVsbG8.", b"hello"),
        ("QR==", b"A"),
        ("", b""),
    ]:
        inputs, _ = decode(json.dumps({"inputs": {"b64": text}}), s="DT_STRING")
        assert inputs["s"].item() == expected, text
    for text in ("a", "aGVsbG8==", "aGV=sbG8", "aGVsbG8-", "aGVsbG8=x"):
        error = error_of(json.dumps({"inputs": {"b64": text}}), s="DT_STRING")
        assert (error.code, error.message) == (Code.INVALID_ARGUMENT, "Unable to base64 decode")


def test_fast_path_and_careful_path_agree() -> None:
    # A body the fast path takes (all numbers) and the same values forced through the
    # element-by-element path (a string leaf makes it fail, so compare a valid sibling input).
    rng = np.random.default_rng(7)
    values = rng.standard_normal((4, 3, 5)).astype(np.float32)
    fast, _ = decode(json.dumps({"instances": values.tolist()}), x="DT_FLOAT")
    careful = tensor_values.careful_tensor(values.tolist(), "DT_FLOAT")[0]
    assert_array(fast["x"], values, np.float32)
    assert_array(careful.astype(np.float32), values, np.float32)


def test_empty_lists_give_empty_tensors() -> None:
    inputs, _ = decode('{"instances": [[], []]}', x="DT_FLOAT")
    assert inputs["x"].shape == (2, 0) and inputs["x"].dtype == np.float32
    inputs, _ = decode('{"inputs": []}', h="DT_HALF")
    assert inputs["h"].shape == (0,) and inputs["h"].dtype == np.float16


# --- predict requests: errors ------------------------------------------------------------------


def test_single_unnamed_tensor_errors() -> None:
    # upstream: JsontensorTest.SingleUnnamedTensorErrors (full texts)
    error = error_of("", default="DT_INT32")
    assert error.message == "JSON Parse error: The document is empty"
    assert_invalid(
        '{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}',
        'JSON Value: {\n    "signature_name": 5,\n    "instances": [[1, 2], [3, 4], [5, 6, 7]]\n}'
        " not formatted correctly. 'signature_name' key must be a string value.",
        default="DT_INT32",
    )
    assert_invalid(
        '{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}',
        'JSON Value: {\n    "instances": [[1, 2], [3, 4], [5, 6, 7]],\n'
        '    "inputs": [[1, 2], [3, 4], [5, 6, 7]]\n}'
        " Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
        default="DT_INT32",
    )
    assert_invalid(
        '{"instances": [[1,2],[3,4],[5,6,7]]}',
        element_error(2, "Expecting tensor size: 2 but got: 3"),
        default="DT_INT32",
    )
    assert_invalid(
        '{"instances": [[1,2],[3,4],[[5,6]]]}',
        element_error(2, "Expecting shape [2] but got: [1,2]"),
        default="DT_INT32",
    )
    assert_invalid(
        '{"instances": [1, [1]]}',
        element_error(1, "Expecting shape [] but got: [1]"),
        default="DT_INT32",
    )
    assert_invalid(
        '{"instances": [[1,2],["a", "b"]]}',
        element_error(1, 'JSON Value: "a" Type: String is not of expected type: int32'),
        default="DT_INT32",
    )


def test_multiple_named_tensor_errors() -> None:
    # upstream: JsontensorTest.MultipleNamedTensorErrors (full texts)
    dtypes = {"int_tensor": "DT_INT32", "str_tensor": "DT_STRING"}
    key_error = "Failed to process element: 1 key: int_tensor of 'instances' list. Error: "
    assert_invalid(
        """{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]},
                         {"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}""",
        key_error + "INVALID_ARGUMENT: Expecting shape [3,2] but got: [1,3,2]",
        **dtypes,
    )
    assert_invalid(
        """{"instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo", "bar"]},
                         {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}]}""",
        key_error + "INVALID_ARGUMENT: Expecting tensor size: 8 but got: 6",
        **dtypes,
    )
    assert_invalid(
        """{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]},
                         [1, 20, 30],
                         {"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}""",
        "Expecting object but got list at item 1 of input list",
        **dtypes,
    )
    assert_invalid(
        '{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}',
        "Expecting value/list but got object at item 1 of input list",
        str_tensor="DT_STRING",
    )


def test_instance_object_keys() -> None:
    dtypes = {"a": "DT_INT32", "b": "DT_INT32"}
    assert_invalid(
        '{"instances": [{"a": 1, "c": 2}]}',
        "Failed to process element: 0 key: c of 'instances' list. Error: INVALID_ARGUMENT: "
        "JSON object: does not have named input: c",
        **dtypes,
    )
    assert_invalid(
        '{"instances": [{"a": 1, "b": 2}, {"a": 1}]}',
        "Failed to process element: 1 of 'instances' list. JSON object: {\n    \"a\": 1\n}"
        " keys must be equal to: a,b",
        **dtypes,
    )
    assert_invalid(
        '{"instances": [1, 2]}',
        "instances is a plain list, but expecting list of objects as multiple input tensors "
        "required as per tensorinfo_map",
        **dtypes,
    )


def test_columnar_errors() -> None:
    dtypes = {"a": "DT_INT32", "b": "DT_INT32"}
    assert_invalid('{"inputs": {"a": 1}}', "Missing named input: b in 'inputs' object.", **dtypes)
    assert_invalid(
        '{"inputs": [1]}',
        "inputs is a plain value/list, but expecting an object as multiple input tensors "
        "required as per tensorinfo_map",
        **dtypes,
    )
    # Columnar errors are not wrapped.
    assert_invalid(
        '{"inputs": {"a": [1, 2.5], "b": 1}}',
        "JSON Value: 2.5 Type: Number is not of expected type: int32",
        **dtypes,
    )
    assert_invalid(
        '{"inputs": [[1, 2], [3]]}',
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        x="DT_INT32",
    )
    assert_invalid(
        '{"inputs": [[1, 2], 3]}',
        "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
        x="DT_INT32",
    )
    assert_invalid(
        '{"inputs": [1, [2]]}', "Encountered list at unexpected level: 1 expected < 1", x="DT_INT32"
    )


def test_request_shape_errors() -> None:
    assert_invalid("{}", "Missing 'inputs' or 'instances' key", x="DT_FLOAT")
    assert_invalid(
        '{"instances": {"x": 1}}',
        'JSON Value: {\n    "instances": {\n        "x": 1\n    }\n}'
        " Expecting 'instances' to be an list/array",
        x="DT_FLOAT",
    )
    assert_invalid(
        '{"instances": []}',
        "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        x="DT_FLOAT",
    )
    error = error_of('{"instances": [1]}')
    assert error.message == "Failed to get input map for signature: DEFAULT"
    error = error_of('{"signature_name": "s", "instances": [1]}')
    assert error.message == "Failed to get input map for signature: s"


@pytest.mark.parametrize(
    ("dtype", "leaf", "message"),
    [
        ("DT_INT32", "1.0", "JSON Value: 1.0 Type: Number is not of expected type: int32"),
        (
            "DT_INT8",
            "2147483648",
            "JSON Value: 2147483648 Type: Number is not of expected type: int8",
        ),
        ("DT_UINT8", "true", "JSON Value: true Type: True is not of expected type: uint8"),
        (
            "DT_INT64",
            "9223372036854775808",
            "JSON Value: 9223372036854775808 Type: Number is not of expected type: int64",
        ),
        ("DT_UINT32", "-1", "JSON Value: -1 Type: Number is not of expected type: uint32"),
        (
            "DT_UINT64",
            "18446744073709551616",
            "JSON Value: 18446744073709552000.0 Type: Number is not of expected type: uint64",
        ),
        ("DT_BOOL", "1", "JSON Value: 1 Type: Number is not of expected type: bool"),
        ("DT_FLOAT", '"x"', 'JSON Value: "x" Type: String is not of expected type: float'),
        ("DT_FLOAT", "false", "JSON Value: false Type: False is not of expected type: float"),
        ("DT_DOUBLE", "null", "JSON Value: null Type: Null is not of expected type: double"),
        (
            "DT_FLOAT",
            '{"b64": "AA=="}',
            'JSON Value: {\n    "b64": "AA=="\n} Type: Object is not of expected type: float',
        ),
        ("DT_STRING", "1e30", "JSON Value: 1e30 Type: Number is not of expected type: string"),
        (
            "DT_STRING",
            '[{"b64": 1}]',
            'JSON Value: {\n    "b64": 1\n} not formatted correctly for base64 data',
        ),
        (
            "DT_STRING",
            '[{"b64": "AA==", "x": 1}]',
            'JSON Value: {\n    "b64": "AA==",\n    "x": 1\n}'
            " not formatted correctly for base64 data",
        ),
        ("DT_STRING", "1.5e-7", "JSON Value: 1.5e-7 Type: Number is not of expected type: string"),
        ("DT_STRING", "NaN", "JSON Value:  Type: Number is not of expected type: string"),
    ],
)
def test_type_mismatch_messages(dtype: str, leaf: str, message: str) -> None:
    # Columnar (unwrapped) and row (wrapped) forms of the same leaf error.
    assert_invalid(f'{{"inputs": {leaf}}}', message, x=dtype)
    assert_invalid(f'{{"instances": [{leaf}]}}', element_error(0, message), x=dtype)


def test_unsupported_dtype_is_unimplemented_in_columnar_and_wrapped_in_row() -> None:
    error = error_of('{"inputs": [1.5]}', x="DT_HALF")
    assert (error.code, error.message) == (
        Code.UNIMPLEMENTED,
        "Conversion of JSON Value: 1.5 to type: half",
    )
    assert_invalid(
        '{"instances": [[1.5]]}',
        "Failed to process element: 0 of 'instances' list. Error: UNIMPLEMENTED: "
        "Conversion of JSON Value: 1.5 to type: half",
        x="DT_HALF",
    )
    error = error_of('{"inputs": [1]}', x="DT_COMPLEX64")
    assert (error.code, error.message) == (
        Code.UNIMPLEMENTED,
        "Conversion of JSON Value: 1 to type: complex64",
    )


# --- parse errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"   ", "The document is empty. at offset: 3"),
        (b"x", "Invalid value. at offset: 0"),
        (b'{"a": [1,2', "Missing a comma or ']' after an array element. at offset: 10"),
        (b'{"a": tru}', "Invalid value. at offset: 9"),
        (b'{"a": [1,]}', "Invalid value. at offset: 9"),
        (b'{"a": 1,}', "Missing a name for object member. at offset: 8"),
        (b"{,}", "Missing a name for object member. at offset: 1"),
        (b'{"a" 1}', "Missing a colon after a name of object member. at offset: 5"),
        (b'{"a": 1 "b": 2}', "Missing a comma or '}' after an object member. at offset: 8"),
        (b'{"a": 01}', "Missing a comma or '}' after an object member. at offset: 7"),
        (b'{"a": }', "Invalid value. at offset: 6"),
        (b'{"a": 1.}', "Miss fraction part in number. at offset: 8"),
        (b'{"a": 1e+}', "Miss exponent in number. at offset: 9"),
        (b'{"a": 1e400}', "Number too big to be stored in double. at offset: 6"),
        (b'{"a": -1E+309}', "Number too big to be stored in double. at offset: 6"),
        (b'{"a": ' + b"9" * 400 + b"}", "Number too big to be stored in double. at offset: 6"),
        (b'{"a": "\\x"}', "Invalid escape character in string. at offset: 7"),
        (b'{"a": "\x01"}', "Invalid escape character in string. at offset: 7"),
        (b'{"a": "abc', "Missing a closing quotation mark in string. at offset: 10"),
        (b'{"a": "ab\x00c"}', "Missing a closing quotation mark in string. at offset: 9"),
        (b'{"a": "\\u12G4"}', "Incorrect hex digit after \\u escape in string. at offset: 7"),
        (b'{"a": "\\ud800"}', "The surrogate pair in string is invalid. at offset: 7"),
        (b'{"a": "\\ud800\\u0041"}', "The surrogate pair in string is invalid. at offset: 7"),
        (b'{"a": Infinit}', "Invalid value. at offset: 13"),
        (b'{"a": Nan}', "Invalid value. at offset: 8"),
        (b'{"a": -}', "Invalid value. at offset: 7"),
        (b'{"a": \xff}', "Invalid value. at offset: 6"),
        (b'{"\xc3\xa9": [1 2]}', "Missing a comma or ']' after an array element. at offset: 10"),
        (b'{"a":\x00 1}', "Invalid value. at offset: 5"),
    ],
)
def test_parse_errors_match_rapidjson(body: bytes, message: str) -> None:
    with pytest.raises(ServingStatusError) as info:
        parse_json(body)
    assert (info.value.code, info.value.message) == (
        Code.INVALID_ARGUMENT,
        "JSON Parse error: " + message,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
        (b' \t\r\n{"a": [Inf, -Inf, Infinity, -NaN]} trailing', None),
        (
            b'{"a": 1e308, "b": 1e-400, "c": 18446744073709551615, "d": 18446744073709551616}',
            {"a": 1e308, "b": 0.0, "c": 2**64 - 1, "d": 2.0**64},
        ),
        (b'{"a": "\\ud83d\\ude00\\/"}', {"a": "😀/"}),
    ],
)
def test_parse_accepts_what_rapidjson_accepts(body: bytes, expected: dict | None) -> None:
    doc = parse_json(body)
    if expected is None:
        values = doc["a"]
        assert values[:3] == [math.inf, -math.inf, math.inf] and math.isnan(values[3])
    else:
        assert doc == expected


def test_parse_rejects_non_objects() -> None:
    for body, shown in [(b"[1, 2.5]", "[1, 2.5]"), (b'"s"', '"s"'), (b"7", "7")]:
        with pytest.raises(ServingStatusError) as info:
            parse_json(body)
        assert info.value.message == f"JSON Value: {shown} Is not object"


def test_rapidjson_port_reads_like_python_json() -> None:
    # The port (used for bodies Python's json rejects) must build the same values.
    rng = random.Random(3)

    def value(depth: int) -> object:
        kind = rng.randrange(8 if depth < 4 else 5)
        if kind == 0:
            return rng.choice([None, True, False])
        if kind == 1:  # rapidjson's integer range (beyond it numbers are doubles)
            return rng.randrange(-(2**63), 2**64)
        if kind == 2:
            return rng.uniform(-1e6, 1e6) * 10 ** rng.randrange(-30, 30)
        if kind == 3:
            return "".join(rng.choice('ab"\\\n\t\x01é😀/ ') for _ in range(rng.randrange(6)))
        if kind == 4:
            return rng.choice([0, -0.0, 1.0, 0.5, 123456789012345678])
        if kind in (5, 6):
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randrange(4))}

    for _ in range(300):
        doc = {"v": value(0)}
        for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False, indent=2)):
            data = text.encode()
            assert json_reader._RapidJsonReader(data).parse() == json.loads(data), text


# --- predict responses -------------------------------------------------------------------------


INT_TENSOR = np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], dtype=np.int32)
BYTES_TENSOR = np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object)


def test_from_json_single_tensor() -> None:
    # upstream: JsontensorTest.FromJsonSingleTensor (exact bytes of rapidjson's PrettyWriter)
    assert encode_predict_response({"int_tensor": INT_TENSOR}, ROW) == (
        b'{\n    "predictions": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]\n    ]\n}'
    )
    columnar = encode_predict_response({"int_tensor": INT_TENSOR}, COLUMNAR).decode()
    assert json.loads(columnar) == {"outputs": INT_TENSOR.tolist()}
    assert columnar.startswith(
        '{\n    "outputs": [\n        [\n            [\n                1,\n'
    )
    assert columnar.endswith("                2\n            ]\n        ]\n    ]\n}")


def test_from_json_single_scalar_tensor() -> None:
    # upstream: JsontensorTest.FromJsonSingleScalarTensor
    values = np.arange(1, 6, dtype=np.int32)
    assert encode_predict_response({"int_tensor": values}, ROW) == (
        b'{\n    "predictions": [1, 2, 3, 4, 5\n    ]\n}'
    )
    assert encode_predict_response({"int_tensor": values}, COLUMNAR) == (
        b'{\n    "outputs": [\n        1,\n        2,\n        3,\n        4,\n        5\n    ]\n}'
    )


def test_from_json_single_bytes_tensor() -> None:
    # upstream: JsontensorTest.FromJsonSingleBytesTensor
    assert encode_predict_response({"str_tensor_bytes": BYTES_TENSOR}, ROW).decode() == (
        '{\n    "predictions": [[{\n                "b64": "aGVsbG8="\n            }, {\n'
        '                "b64": "d29ybGQ="\n            }], [{\n                "b64": "dGY="\n'
        '            }, {\n                "b64": "c2VydmluZw=="\n            }]\n    ]\n}'
    )


def test_from_json_single_float_tensor_six_digit_precision() -> None:
    # upstream: JsontensorTest.FromJsonSingleFloatTensorSixDigitPrecision
    values = np.array([[9000000, 999999, 0.5], [0.0003, 0.00003, 555557.5]], dtype=np.float32)
    assert encode_predict_response({"float_tensor": values}, ROW) == (
        b'{\n    "predictions": [[9e+06, 999999.0, 0.5], [0.0003, 3e-05, 555557.5]\n    ]\n}'
    )


def test_from_json_single_float_tensor_non_finite() -> None:
    # upstream: JsontensorTest.FromJsonSingleFloatTensorNonFinite
    values = np.array([[np.nan, np.inf], [3, -np.inf]], dtype=np.float32)
    assert encode_predict_response({"float_tensor": values}, ROW) == (
        b'{\n    "predictions": [[NaN, Infinity], [3.0, -Infinity]\n    ]\n}'
    )


@pytest.mark.parametrize(
    ("value", "dtype", "text"),
    [
        (1 / 3, np.float32, "0.333333343"),
        (0.1, np.float32, "0.1"),
        (0.2, np.float32, "0.2"),
        (100, np.float32, "100.0"),
        (-0.0, np.float32, "-0.0"),
        (16777216, np.float32, "16777216.0"),
        (1e10, np.float32, "1e+10"),
        (1e-7, np.float32, "1e-07"),
        (123456.7, np.float32, "123456.703"),
        (-2.84576e10, np.float32, "-2.84576e+10"),  # six digits land exactly on a midpoint
        (1e-45, np.float32, "1.4013e-45"),
        (1.1754942e-38, np.float32, "1.17549421e-38"),
        (3.4028235e38, np.float32, "3.40282347e+38"),
        (1 / 3, np.float64, "0.33333333333333331"),
        (0.1, np.float64, "0.1"),
        (2.0**60, np.float64, "1.152921504606847e+18"),
        (5.0, np.float64, "5.0"),
    ],
)
def test_float_format(value: float, dtype: type, text: str) -> None:
    body = encode_predict_response({"x": np.array([value], dtype=dtype)}, ROW)
    assert body == b'{\n    "predictions": [' + text.encode() + b"\n    ]\n}"


def test_float32_format_matches_reference_algorithm() -> None:
    # The vectorised decision equals upstream's: "%.6g" if it reads back, else "%.9g".
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    nice = rng.integers(-(10**6), 10**6, 20000) / 10.0 ** rng.integers(0, 12, 20000)
    values = np.concatenate([bits, nice.astype(np.float32), rng.random(20000, dtype=np.float32)])
    values = values[np.isfinite(values)]

    def reference(v: float) -> str:
        text = f"{v:.6g}"
        if np.float32(float(text)) != np.float32(v):
            text = f"{v:.9g}"
        return text if "." in text or "e" in text or "n" in text else text + ".0"

    expected = [reference(v) for v in values.tolist()]
    assert json_writer.float_tokens(values) == expected


def test_from_json_multiple_named_tensors() -> None:
    # upstream: JsontensorTest.FromJsonMultipleNamedTensors
    outputs = {
        "int_tensor": INT_TENSOR,
        "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], dtype=object),
        "float_tensor": np.array([[1.0], [2.0]], dtype=np.float32),
        "double_scalar_tensor": np.array([8.0, 9.0]),
        "str_tensor_bytes": BYTES_TENSOR,
    }
    row = encode_predict_response(outputs, ROW).decode()
    assert json.loads(row) == {
        "predictions": [
            {
                "double_scalar_tensor": 8.0,
                "float_tensor": [1.0],
                "int_tensor": [[1, 2], [3, 4], [5, 6]],
                "str_tensor": ["foo", "bar"],
                "str_tensor_bytes": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}],
            },
            {
                "double_scalar_tensor": 9.0,
                "float_tensor": [2.0],
                "int_tensor": [[7, 8], [9, 0], [1, 2]],
                "str_tensor": ["baz", "bat"],
                "str_tensor_bytes": [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}],
            },
        ]
    }
    assert row.startswith(
        '{\n    "predictions": [\n        {\n            "double_scalar_tensor": 8.0,\n'
        '            "float_tensor": [1.0],\n'
    )
    assert (
        '"str_tensor_bytes": [{\n                    "b64": "aGVsbG8="\n                }, {' in row
    )
    assert row.endswith("\n                }]\n        }\n    ]\n}")
    columnar = encode_predict_response(outputs, COLUMNAR).decode()
    assert json.loads(columnar) == {
        "outputs": {
            "double_scalar_tensor": [8.0, 9.0],
            "float_tensor": [[1.0], [2.0]],
            "int_tensor": INT_TENSOR.tolist(),
            "str_tensor": [["foo", "bar"], ["baz", "bat"]],
            "str_tensor_bytes": [
                [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}],
                [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}],
            ],
        }
    }
    assert columnar.startswith(
        '{\n    "outputs": {\n        "double_scalar_tensor": [\n            8.0,\n'
    )
    assert columnar.endswith("\n                }\n            ]\n        ]\n    }\n}")


def test_from_json_errors() -> None:
    # upstream: JsontensorTest.FromJsonSingleTensorErrors, FromJsonMultipleNamedTensorsErrors,
    # FromJsonMultipleZeroBatchTensorsErrors
    cases = [
        ({}, "Cannot convert empty tensor map to JSON"),
        (
            {"tensor": np.array([1, 2], np.complex64)},
            "Failed to write JSON value for tensor type: complex64",
        ),
        ({"tensor": np.array([1], np.float16)}, "Failed to write JSON value for tensor type: half"),
        (
            {"tensor": np.array([1], np.uint16)},
            "Failed to write JSON value for tensor type: uint16",
        ),
        ({"tensor": np.array(1, np.int32)}, "Tensor name: tensor has no shape information "),
        (
            {"int_tensor": np.zeros((2, 3), np.int32), "str_tensor": np.zeros((1, 3), object)},
            "Tensor name: str_tensor has inconsistent batch size: 1 expecting: 2",
        ),
        (
            {"int_tensor": np.zeros((0, 2), np.int32), "str_tensor": np.zeros((1, 2), object)},
            "Tensor name: str_tensor has inconsistent batch size: 1 expecting: 0",
        ),
    ]
    for outputs, message in cases:
        with pytest.raises(ServingStatusError) as info:
            encode_predict_response(outputs, ROW)
        assert (info.value.code, info.value.message) == (Code.INVALID_ARGUMENT, message)
    with pytest.raises(ServingStatusError, match=r"^Invalid request format$"):
        encode_predict_response({"x": np.zeros(1)}, "other")


def test_from_json_zero_batch_tensors() -> None:
    # upstream: JsontensorTest.FromJsonSingleZeroBatchTensor, FromJsonMultipleZeroBatchTensors
    assert encode_predict_response({"int_tensor": np.zeros((0, 2), np.int32)}, ROW) == (
        b'{\n    "predictions": []\n}'
    )
    outputs = {
        "str_tensor": np.zeros((0, 1, 2), object),
        "float_tensor": np.zeros((0, 3, 4), np.float32),
    }
    assert encode_predict_response(outputs, ROW) == b'{\n    "predictions": []\n}'
    # An empty tensor of an unwritable dtype writes nothing, so it is no error.
    assert encode_predict_response({"h": np.zeros((2, 0), np.float16)}, COLUMNAR) == (
        b'{\n    "outputs": [\n        [],\n        []\n    ]\n}'
    )


def test_response_scalars_strings_and_other_dtypes() -> None:
    assert encode_predict_response({"x": np.array(3, np.float32)}, COLUMNAR) == (
        b'{\n    "outputs": 3.0\n}'
    )
    outputs = {
        "b": np.array([True, False]),
        "u": np.array([2**64 - 1, 0], np.uint64),
        "s": np.array(['é"\\\n\x01', b"\xff"], dtype=object),
    }
    assert encode_predict_response(outputs, ROW) == (
        b'{\n    "predictions": [\n        {\n            "b": true,\n            "s": '
        b'"\xc3\xa9\\"\\\\\\n\\u0001",\n            "u": 18446744073709551615\n        },\n'
        b'        {\n            "b": false,\n            "s": "\xff",\n            "u": 0\n'
        b"        }\n    ]\n}"
    )


# --- classify and regress ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def protos() -> object:
    from google.protobuf import text_format
    from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

    class Protos:
        text = text_format
        Input = input_pb2.Input
        ClassificationResult = classification_pb2.ClassificationResult
        RegressionResult = regression_pb2.RegressionResult

    return Protos


def test_request_no_context(protos: object) -> None:
    # upstream: ClassifyRegressRequestTest.RequestNoContext
    doc = parse_json(b"""{"examples": [
        {"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20},
        {"names": ["baz"], "ratings": 6.0}]}""")
    expected = protos.text.Parse(
        """example_list {
        examples { features {
          feature { key: "names" value { bytes_list { value: "foo" value: "bar" } } }
          feature { key: "ratings" value { float_list { value: 8.0 value: 9.0 } } }
          feature { key: "age" value { int64_list { value: 20 } } } } }
        examples { features {
          feature { key: "names" value { bytes_list { value: "baz" } } }
          feature { key: "ratings" value { float_list { value: 6.0 } } } } } }""",
        protos.Input(),
    )
    assert decode_examples(doc) == expected


def test_request_with_context_and_signature(protos: object) -> None:
    # upstream: ClassifyRegressRequestTest.RequestWithContextAndSignature
    doc = parse_json(b"""{
      "signature_name": "custom_signture",
      "context": {"query": "pizza", "location": ["sfo"]},
      "examples": [
        {"names": ["foo", "bar"], "ratings": [8.0, 9.0, NaN, Infinity], "age": 20},
        {"names": ["baz", {"b64": "aGVsbG8="}], "ratings": 6.0, "intboolmix": [1, true, false]},
        {"names": "bar", "ratings": -Infinity}]}""")
    assert signature_name(doc) == "custom_signture"
    result = decode_examples(doc)
    assert result.WhichOneof("kind") == "example_list_with_context"
    context = result.example_list_with_context.context.features.feature
    assert list(context["query"].bytes_list.value) == [b"pizza"]
    assert list(context["location"].bytes_list.value) == [b"sfo"]
    examples = [e.features.feature for e in result.example_list_with_context.examples]
    ratings = list(examples[0]["ratings"].float_list.value)
    assert ratings[:2] == [8.0, 9.0] and math.isnan(ratings[2]) and ratings[3] == math.inf
    assert list(examples[0]["age"].int64_list.value) == [20]
    assert list(examples[1]["names"].bytes_list.value) == [b"baz", b"hello"]
    assert list(examples[1]["intboolmix"].int64_list.value) == [1, 1, 0]
    assert list(examples[2]["names"].bytes_list.value) == [b"bar"]
    assert list(examples[2]["ratings"].float_list.value) == [-math.inf]


def test_classify_regress_json_errors(protos: object) -> None:
    # upstream: ClassifyRegressRequestTest.JsonErrors (full texts)
    def message(body: bytes) -> str:
        with pytest.raises(ServingStatusError) as info:
            decode_examples(parse_json(body))
        assert info.value.code == Code.INVALID_ARGUMENT
        return info.value.message

    assert message(b'{"signature_name": ["hello"], "examples": [{"names": ["foo", "bar"]}]}') == (
        'JSON Value: {\n    "signature_name": ["hello"],\n    "examples": [{\n'
        '            "names": ["foo", "bar"]\n        }]\n} not formatted correctly. '
        "'signature_name' key must be a string value."
    )
    assert message(b'{"context": [{"names": ["foo", "bar"]}]}') == (
        "Example must be JSON object but got JSON Array"
    )
    assert message(b'{"examples": {"names": ["foo", "bar"]}}') == (
        'JSON Value: {\n    "examples": {\n        "names": ["foo", "bar"]\n    }\n}'
        " Expecting 'examples' value to be an list/array"
    )
    assert message(b'{"examples": [[{"names": ["foo", "bar"]}]]}') == (
        "Example must be JSON object but got JSON Array"
    )
    assert message(b'{"examples": [{"names": [10, null]}]}') == (
        "Feature: names has element with unexpected JSON type: Null"
    )
    assert message(b'{"examples": [{"names": [10, 10.0]}]}') == (
        "Unexpected element type in feature: names expecting type: int64"
    )
    assert message(b'{"examples": [{"names": [10, {"test": 10}]}]}') == (
        "Feature: names has element with unexpected JSON type: Object"
    )
    assert message(b'{"examples": [{"names": [[10], 20]}]}') == (
        "Feature: names has element with unexpected JSON type: Array"
    )
    assert message(b'{"examples": [{"names": [20, 18446744073709551603]}]}') == (
        "Feature: names has uint64_t element. Only int64_t is supported."
    )
    assert message(b'{"examples": [{"names": ["a", 1.5]}]}') == (
        "Unexpected element type in feature: names expecting type: bytes"
    )
    assert message(b'{"examples": [{"n": [{"b64": "a"}]}]}') == "Unable to base64 decode"
    assert message(b'{"context": {}}') == (
        "JSON Value: {\n    \"context\": {}\n} When method is classify, key 'examples' is "
        "expected and was not found"
    )
    assert message(b'{"examples": []}') == (
        "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array"
    )


def test_example_numbers_beyond_uint64_are_floats(protos: object) -> None:
    result = decode_examples(parse_json(b'{"examples": [{"x": 18446744073709551616, "e": []}]}'))
    feature = result.example_list.examples[0].features.feature
    assert list(feature["x"].float_list.value) == [2.0**64]
    assert feature["e"].WhichOneof("kind") is None


def test_json_from_classification_result(protos: object) -> None:
    # upstream: ClassifyRegressnResultTest.JsonFromClassificationResult
    result = protos.text.Parse(
        """
        classifications { classes { label: "car" score: 0.2 } classes { label: "bike" score: 0.7 }
                          classes { label: "bus" score: 0.1 } }
        classifications { classes { label: "car" score: 0.7 } classes { label: "bike" score: 0.1 }
                          classes { label: "bus" score: 0.2 } }""",
        protos.ClassificationResult(),
    )
    assert encode_classify_results(result) == (
        b'{\n    "results": [[["car", 0.2], ["bike", 0.7], ["bus", 0.1]], '
        b'[["car", 0.7], ["bike", 0.1], ["bus", 0.2]]\n    ]\n}'
    )


def test_json_from_regression_result(protos: object) -> None:
    # upstream: ClassifyRegressnResultTest.JsonFromRegressionResult and ...WithNonFinite
    result = protos.text.Parse(
        "regressions { value: 0.2 } regressions { value: 0.9 } regressions { value: 1.0 }",
        protos.RegressionResult(),
    )
    assert encode_regress_results(result) == b'{\n    "results": [0.2, 0.9, 1.0]\n}'
    result = protos.text.Parse(
        "regressions { value: 0.2 } regressions { value: inf } regressions { value: 1.0 } "
        "regressions { value: -inf } regressions { value: nan }",
        protos.RegressionResult(),
    )
    assert encode_regress_results(result) == (
        b'{\n    "results": [0.2, Infinity, 1.0, -Infinity, NaN]\n}'
    )


def test_json_from_result_errors(protos: object) -> None:
    # upstream: ClassifyRegressnResultTest.JsonFromResultErrors
    with pytest.raises(
        ServingStatusError, match=r"^Cannot convert empty ClassificationResults to JSON$"
    ):
        encode_classify_results(protos.ClassificationResult())
    with pytest.raises(
        ServingStatusError, match=r"^Cannot convert empty RegressionResults to JSON$"
    ):
        encode_regress_results(protos.RegressionResult())


def test_status_error() -> None:
    # upstream: MakeJsonFromTensors.StatusError
    assert encode_error('Bad key: "key"') == b'{\n    "error": "Bad key: \\"key\\""\n}'
    assert encode_error("Bad key: 'key'") == b'{\n    "error": "Bad key: \'key\'"\n}'
    assert encode_error("tab\tnul\x00é") == b'{\n    "error": "tab\\tnul\\u0000\xc3\xa9"\n}'
