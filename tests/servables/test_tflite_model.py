"""servables.tflite_model: TF Lite versions as upstream's ``TfLiteSession`` serves them —
signatures from the ``signature_defs_metadata`` entry or made from the tensors, runs that resize to
the request, upstream's codes and texts, and a pool of interpreters shared by threads — on models
TensorFlow's own converters built (``tests/helpers/tflite_models.py``)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from tests.helpers import tflite_models
from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.servables.tflite_model import (
    TFLITE_MODEL_FILENAME,
    TfLiteModelLoader,
    TfLiteModelServable,
    tflite_model_found,
)


@pytest.fixture(scope="module")
def contents() -> dict[str, bytes]:
    """The module's models, converted once: ``converted`` (TF 2), ``session`` (TF 1, plus 3),
    ``broadcast``."""
    return {
        "converted": tflite_models.converted_half_plus(2.0),
        "session": tflite_models.session_half_plus(3.0),
        "broadcast": tflite_models.broadcast_tflite(),
    }


def version_dir(parent: Path, content: bytes, name: str = "1") -> Path:
    path = parent / name
    path.mkdir()
    (path / TFLITE_MODEL_FILENAME).write_bytes(content)
    return path


def test_without_signature_defs_one_is_made_from_the_tensors(tmp_path, contents):
    """Keys drop ``:0``; each TensorInfo has the tensor's full name, dtype and current dims.
    TF Lite's own signature runner (``serving_default``: ``x`` → ``y``) is not read."""
    servable = TfLiteModelServable(str(version_dir(tmp_path, contents["converted"])))
    expected = """
        inputs { key: "serving_default_x" value {
          name: "serving_default_x:0" dtype: DT_FLOAT
          tensor_shape { dim { size: 1 } dim { size: 1 } } } }
        outputs { key: "PartitionedCall" value {
          name: "PartitionedCall:0" dtype: DT_FLOAT
          tensor_shape { dim { size: 1 } dim { size: 1 } } } }
        method_name: "tensorflow/serving/predict"
    """
    assert list(servable.signature_def_map) == ["serving_default"]
    assert servable.signature_def_map["serving_default"] == text_format.Parse(
        expected, type(servable.signature_def_map["serving_default"])()
    )
    signature = servable.signatures["serving_default"]
    assert signature.inputs["serving_default_x"].shape == (1, 1)


def test_stored_signature_defs_are_served_with_their_tensor_names_fixed(tmp_path, contents):
    """``x:0`` names the tensor ``x`` (the legacy name without ``:0``) and is rewritten so."""
    content = tflite_models.with_signature_defs(
        contents["session"],
        {
            "serving_default": tflite_models.signature_def({"x": "x:0"}, {"y": "y:0"}),
            "renamed": tflite_models.signature_def({"value": "x"}, {"result": "y"}),
        },
    )
    servable = TfLiteModelServable(str(version_dir(tmp_path, content)))
    assert sorted(servable.signature_def_map) == ["renamed", "serving_default"]
    default = servable.signature_def_map["serving_default"]
    assert (default.inputs["x"].name, default.outputs["y"].name) == ("x", "y")
    renamed = servable.signatures["renamed"]
    answer = servable.run(renamed, {"value": np.array([[1.0]], np.float32)}, ["result"])
    np.testing.assert_array_equal(answer["result"], [[3.5]])


@pytest.mark.parametrize(
    ("metadata", "code", "message"),
    [
        (
            "unknown-tensor",
            Code.INTERNAL,
            "Unknown tensor 'nope:0'.\n\tSignature input x references an unknown tensor",
        ),
        (
            "bad-flexbuffer",
            Code.INVALID_ARGUMENT,
            "Invalid SignatureDefs found in TfLite model: Error reading signature def map: "
            "Invalid flexbuffer data",
        ),
    ],
)
def test_bad_signature_defs_fail_the_load_with_upstreams_texts(
    tmp_path, contents, metadata, code, message
):
    if metadata == "unknown-tensor":
        content = tflite_models.with_signature_defs(
            contents["session"],
            {"serving_default": tflite_models.signature_def({"x": "nope:0"}, {"y": "y:0"})},
        )
    else:
        content = tflite_models.with_metadata(contents["session"], "signature_defs_metadata", b"\1")
    with pytest.raises(ServingStatusError) as failed:
        TfLiteModelServable(str(version_dir(tmp_path, content)))
    assert (failed.value.code, failed.value.message) == (code, message)


def test_a_file_that_is_not_tf_lite_fails_the_load(tmp_path):
    with pytest.raises(ServingStatusError) as failed:
        TfLiteModelServable(str(version_dir(tmp_path, b"not a flatbuffer")))
    assert (failed.value.code, failed.value.message) == (
        Code.INVALID_ARGUMENT,
        "Cannot build FlatBufferModel from buffer.",
    )


def test_runs_resize_the_inputs_to_each_request(tmp_path, contents):
    servable = TfLiteModelServable(str(version_dir(tmp_path, contents["converted"])))
    signature = servable.signatures["serving_default"]
    for x in ([[1.0], [2.0], [3.0]], [[4.0]], [[1.0], [0.0]]):
        answer = servable.run(
            signature, {"serving_default_x": np.array(x, np.float32)}, ["PartitionedCall"]
        )
        np.testing.assert_array_equal(answer["PartitionedCall"], np.array(x) * 0.5 + 2)


def test_errors_have_upstreams_codes_and_the_interpreter_recovers(tmp_path, contents):
    servable = TfLiteModelServable(str(version_dir(tmp_path, contents["broadcast"])))
    signature = servable.signatures["serving_default"]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return servable.run(signature, {"serving_default_x": x}, ["PartitionedCall"])

    with pytest.raises(ServingStatusError) as wrong_dtype:
        run(np.ones((1, 1), np.int32))
    assert (wrong_dtype.value.code, wrong_dtype.value.message) == (
        Code.INVALID_ARGUMENT,
        "Cannot set tensor: Got value of type INT32 but expected type FLOAT32 for input 0, "
        "name: serving_default_x:0",
    )
    for _ in range(2):  # the same bad shape twice: the interpreter is allocated again each time
        with pytest.raises(ServingStatusError) as wrong_shape:
            run(np.ones((1, 2), np.float32))
        assert (wrong_shape.value.code, wrong_shape.value.message) == (
            Code.INTERNAL,
            "Failed to allocate tensors",
        )
    np.testing.assert_array_equal(
        run(np.array([[3.0]], np.float32))["PartitionedCall"], [[3.0, 4.0, 5.0]]
    )


def test_threads_share_the_pool_of_interpreters(tmp_path, contents):
    """Eight threads, two interpreters, each request a batch of its own size: every answer is
    the thread's own (an interpreter shared unsafely would mix inputs, shapes or outputs)."""
    servable = TfLiteModelServable(str(version_dir(tmp_path, contents["converted"])), 2)
    signature = servable.signatures["serving_default"]
    failures: list[BaseException] = []

    def client(rows: int) -> None:
        x = np.full((rows, 1), float(rows), np.float32)
        try:
            for _ in range(50):
                answer = servable.run(signature, {"serving_default_x": x}, ["PartitionedCall"])
                np.testing.assert_array_equal(answer["PartitionedCall"], x * 0.5 + 2)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(rows,)) for rows in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert failures == []


def test_the_loader_finds_loads_and_warms_up(tmp_path, contents):
    path = version_dir(tmp_path, contents["converted"])
    (tmp_path / "2").mkdir()
    assert tflite_model_found(str(path)) and not tflite_model_found(str(tmp_path / "2"))
    warmed: list[TfLiteModelServable] = []
    loader = TfLiteModelLoader(str(path), 1, warmed.append)
    loader.load()
    assert warmed == [loader.servable()]
    loader.unload()
    with pytest.raises(RuntimeError):
        loader.servable()
