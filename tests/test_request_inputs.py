"""request_inputs: arrays, dicts of columns and pandas DataFrames as a predict request's inputs,
shaped and cast by the signature (pure: no server, no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tfserve_nb.protocol.signature import Signature, TensorSpec
from tfserve_nb.request_inputs import request_inputs

TABULAR = Signature(
    "serving_default",
    "tensorflow/serving/predict",
    {
        "flat": TensorSpec("flat", "DT_FLOAT", (None,)),
        "column": TensorSpec("column", "DT_INT32", (None, 1)),
        "vector": TensorSpec("vector", "DT_FLOAT", (None, 3)),
        "any": TensorSpec("any", "DT_STRING", (None, None)),
    },
)
SINGLE = Signature(
    "serving_default", "tensorflow/serving/predict", {"x": TensorSpec("x", "DT_FLOAT", (None, 1))}
)


def inputs(x, signature=TABULAR):
    return request_inputs(x, signature, model_name="m", version=2)


def test_a_data_frame_column_takes_the_shape_its_input_asks_for():
    frame = pd.DataFrame(
        {
            "vector": [[1.0, 2.0, 3.0], np.array([4.0, 5.0, 6.0])],  # cells that are arrays
            "any": ["a", "b"],
            "column": [7, 8],
            "flat": [0.5, 1.5],
        }
    )
    got = inputs(frame)
    assert sorted(got) == ["any", "column", "flat", "vector"]
    assert got["flat"].shape == (2,) and got["flat"].dtype == np.float32
    assert got["column"].tolist() == [[7], [8]] and got["column"].dtype == np.int32
    assert got["vector"].tolist() == [[1, 2, 3], [4, 5, 6]] and got["vector"].dtype == np.float32
    assert got["any"].tolist() == [["a"], ["b"]]


def test_a_dict_of_columns_maps_the_same_and_batched_values_stay_as_they_are():
    columns = {
        "flat": pd.Series([0.5, 1.5]),
        "column": [7, 8],
        "vector": [[1, 2, 3], [4, 5, 6]],
        "any": np.array([["a"], ["b"]], dtype=object),
    }
    got = inputs(columns)
    assert got["flat"].shape == (2,) and got["column"].shape == (2, 1)
    assert got["vector"].shape == (2, 3) and got["any"].shape == (2, 1)
    frame = inputs(pd.DataFrame({k: list(v) for k, v in columns.items()}))
    for alias, array in got.items():
        np.testing.assert_array_equal(frame[alias], array)


def test_a_single_input_takes_a_bare_array_cast_to_its_dtype():
    got = inputs([[1], [2]], SINGLE)
    assert got["x"].dtype == np.float32 and got["x"].shape == (2, 1)
    assert inputs(pd.DataFrame({"x": [1.0, 2.0]}), SINGLE)["x"].shape == (2, 1)


def test_missing_and_extra_names_are_listed():
    with pytest.raises(ValueError) as exc:
        inputs(pd.DataFrame({"flat": [1.0], "column": [1], "vectr": [[1, 2, 3]], 0: [1]}))
    assert str(exc.value) == (
        "model 'm' version 2 signature 'serving_default' takes inputs "
        "['any', 'column', 'flat', 'vector']; the DataFrame columns have missing "
        "['any', 'vector'] and extra [0, 'vectr']: rename or drop them to match"
    )
    with pytest.raises(ValueError, match=r"the keys have extra \['y'\]: rename or drop"):
        inputs({"x": [[1.0]], "y": [[1.0]]}, SINGLE)
    with pytest.raises(ValueError, match=r"missing \['x'\] and extra \['a', 'b'\].*df.to_numpy"):
        inputs(pd.DataFrame({"a": [1.0], "b": [2.0]}), SINGLE)
    with pytest.raises(ValueError, match="duplicate columns"):
        inputs(pd.DataFrame([[1.0, 2.0]], columns=["x", "x"]), SINGLE)


def test_a_bare_array_for_several_inputs_says_what_to_pass():
    with pytest.raises(ValueError, match=r"has inputs \['any', .*: pass a dict or a pandas Data"):
        inputs([[1.0, 2.0]])


@pytest.mark.parametrize(
    ("column", "values", "problem"),
    [
        ("column", [1.0, float("nan")], "it has missing values \\(NaN\\)"),
        ("flat", ["one", "two"], "could not convert string to float: 'one'"),
        ("flat", [1.0, pd.NA], "NAType"),
        ("vector", [[1.0, 2.0, 3.0], [1.0]], "its cells differ in shape"),
    ],
)
def test_values_that_do_not_convert_name_the_input(column, values, problem):
    frame = pd.DataFrame({"flat": [1.0, 2.0], "column": [1, 2], "vector": [[1, 2, 3]] * 2})
    frame["any"] = ["a", "b"]
    frame[column] = pd.Series(values)
    complaint = f"input '{column}' .*cannot convert the values: .*{problem}"
    with pytest.raises(ValueError, match=complaint):
        inputs(frame)


def test_the_client_works_without_pandas():
    """pandas is optional: with it unimportable (as where it is not installed), the client
    imports and builds requests. (TensorFlow itself imports pandas when it is installed, so
    "not in sys.modules" cannot be the test.)"""
    code = (
        "import sys\n"
        "sys.modules['pandas'] = None  # import pandas now raises ImportError\n"
        "import tfserve_nb.client, tfserve_nb.handle\n"
        "from tfserve_nb.request_inputs import request_inputs\n"
        "from tfserve_nb.protocol.signature import Signature, TensorSpec\n"
        "s = Signature('s', 'p', {'x': TensorSpec('x', 'DT_FLOAT', (None, 1))})\n"
        "print(request_inputs({'x': [1.0]}, s, model_name='m')['x'].tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[[1.0]]"
