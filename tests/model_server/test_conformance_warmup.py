"""Contract §6 (warmup), against a real server: ``<version>/assets.extra/
tf_serving_warmup_requests`` is replayed before the version becomes AVAILABLE, a failing replay
fails the load with TF Serving's code and text (``saved_model_warmup.cc``,
``saved_model_warmup_util.cc``), ``--enable_model_warmup=false`` skips it, and the
``:tensorflow:serving:model_warmup_latency`` histogram records it.

One server serves ``hp2w`` (every version aspired) whose version 1 warms up with one record of
each kind; each failure case adds a new version with a bad warmup file, which must end with the
error while version 1 keeps answering.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tests.helpers import models
from tests.helpers.conformance import (
    assert_serving,
    rest,
    run_to_exit,
    version_states,
    write_config,
)
from tests.helpers.server_process import ServerProcess
from tests.helpers.waiting import wait_until
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import All
from tfserve_nb.export import WARMUP_FILE, export_model

if TYPE_CHECKING:
    from conftest import ModelVersions

METRICS_PATH = "/monitoring/prometheus/metrics"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
NEXT_VERSION = itertools.count(2)


# --- warmup records ------------------------------------------------------------------------------


def x_example(x: float) -> example_pb2.Example:
    example = example_pb2.Example()
    example.features.feature["x"].float_list.value.append(x)
    return example


def predict_log(signature_name: str = "serving_default") -> bytes:
    log = prediction_log_pb2.PredictionLog()
    request = log.predict_log.request
    request.model_spec.name = "recorded-under-another-name"  # warmup ignores the name
    request.model_spec.signature_name = signature_name
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0]], np.float32)))
    return log.SerializeToString()


def classify_log(signature_name: str = "classify_x_to_y") -> bytes:
    log = prediction_log_pb2.PredictionLog()
    request = log.classify_log.request
    request.model_spec.signature_name = signature_name
    request.input.example_list.examples.append(x_example(2.0))
    return log.SerializeToString()


def regress_log(examples: int = 1) -> bytes:
    log = prediction_log_pb2.PredictionLog()
    request = log.regress_log.request
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.SetInParent()
    request.input.example_list.examples.extend([x_example(2.0)] * examples)
    return log.SerializeToString()


def multi_inference_log(*tasks: tuple[str, str]) -> bytes:
    """``tasks`` as ``(signature name, method name)``."""
    log = prediction_log_pb2.PredictionLog()
    request = log.multi_inference_log.request
    for signature_name, method_name in tasks:
        task = request.tasks.add(method_name=method_name)
        task.model_spec.name = "hp2w"
        task.model_spec.signature_name = signature_name
    request.input.example_list.examples.append(x_example(2.0))
    return log.SerializeToString()


def log_of_type(field: str) -> bytes:
    log = prediction_log_pb2.PredictionLog()
    getattr(log, field).SetInParent()
    return log.SerializeToString()


GOOD_RECORDS = [
    predict_log(),
    classify_log(),
    regress_log(),
    multi_inference_log(("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY)),
    prediction_log_pb2.PredictionLog().SerializeToString(),  # no type: nothing to run
]


def write_warmup(version_dir: Path, records: list[bytes]) -> Path:
    """``version_dir``'s warmup file holding ``records`` as a TFRecord file; returns its path."""
    path = version_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return path


def add_warmed_version(
    source: ModelVersions, base: Path, records: list[bytes] | bytes
) -> tuple[int, Path]:
    """A new version of ``source``'s version 1 under ``base`` whose warmup file holds
    ``records`` (a list: TFRecords; bytes: the raw file), complete before it appears (one
    rename). Returns its number and its warmup file's path as the server sees it."""
    version = next(NEXT_VERSION)
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=base.parent))
    staged = source.add_version(scratch, 1, as_version=version)
    if isinstance(records, bytes):
        (staged / WARMUP_FILE).parent.mkdir(parents=True)
        (staged / WARMUP_FILE).write_bytes(records)
    else:
        write_warmup(staged, records)
    os.rename(staged, base / str(version))
    return version, base / str(version) / WARMUP_FILE


def metric(server: ServerProcess, sample: str) -> float:
    """One Prometheus sample's value (name and labels as printed), 0 if absent."""
    page = rest(server, "GET", METRICS_PATH).body.decode()
    match = re.search(rf"^{re.escape(sample)} (\S+)$", page, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def warmup_count(server: ServerProcess, version_dir: Path, status: str = "OK") -> float:
    return metric(
        server,
        f':tensorflow:serving:model_warmup_latency_count{{model_path="{version_dir}",'
        f'status="{status}"}}',
    )


def start(root: Path, base: Path, *flags: str) -> ServerProcess:
    (root / "monitoring.txt").write_text(
        f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}'
    )
    config = write_config(root / "models.config", [ModelConfig("hp2w", str(base), All())])
    return ServerProcess(
        root,
        f"--model_config_file={config}",
        f"--monitoring_config_file={root / 'monitoring.txt'}",
        "--max_num_load_retries=0",
        "--file_system_poll_wait_seconds=1",
        "--ephemeral_ports",
        *flags,
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory, half_plus_two_examples_models) -> Path:
    base = half_plus_two_examples_models.make_base_path(tmp_path_factory.mktemp("warmup"))
    write_warmup(base / "1", GOOD_RECORDS)
    return base


@pytest.fixture(scope="module")
def server(base):
    process = start(base.parent, base, "--num_request_iterations_for_warmup=2")
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def still_serving(request):
    """After each test, the server it used still answers a normal predict."""
    yield
    if "server" in request.fixturenames:
        assert_serving(request.getfixturevalue("server"), "hp2w")


def final_state(server: ServerProcess, version: int) -> tuple[str, int, str]:
    """``(state, error code, error message)`` of ``version`` once its load has settled."""

    def settled() -> Any:
        for number, state, code, message in version_states(server, "hp2w"):
            if number == version and state in ("AVAILABLE", "END"):
                return state, code, message
        return None

    return wait_until(settled, f"version {version} of hp2w to settle")


# --- tests ---------------------------------------------------------------------------------------


def test_every_kind_of_record_is_replayed_before_the_version_serves(server, base):
    """The server opened its ports only after version 1 was AVAILABLE, so the warmup had run."""
    path = base / "1" / WARMUP_FILE
    assert (
        f"Finished reading warmup data for model at {path}. Number of warmup records read: 5."
        in server.logs()
    )
    assert warmup_count(server, base / "1") == 1


def test_warmup_written_by_export_model_is_replayed(server, base, tmp_path):
    """``export_model(warmup_examples=...)`` writes what the server replays; the version is
    AVAILABLE only once its warmup has been recorded."""
    exported = export_model(
        models.half_plus_two(),
        tmp_path / "hp",
        warmup_examples=[np.ones((1, 1), np.float32), np.ones((4, 1), np.float32)],
    )
    version = next(NEXT_VERSION)
    os.rename(exported.path, base / str(version))
    assert final_state(server, version) == ("AVAILABLE", 0, "")
    assert warmup_count(server, base / str(version)) == 1


UNIMPLEMENTED, INVALID_ARGUMENT, FAILED_PRECONDITION, DATA_LOSS = 12, 3, 9, 15


@pytest.mark.parametrize(
    ("records", "code", "message"),
    [
        ([predict_log("nope")], FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
        ([classify_log("nope")], INVALID_ARGUMENT, "No signature was found with the name: nope"),
        ([regress_log(examples=0)], INVALID_ARGUMENT, "Input is empty."),
        (
            [multi_inference_log(("classify_x_to_y", "tensorflow/serving/predict"))],
            UNIMPLEMENTED,
            "Unsupported signature method_name: tensorflow/serving/predict",
        ),
        (
            [classify_log(), log_of_type("session_run_log")],
            UNIMPLEMENTED,
            "Unsupported log_type for warmup: 5",
        ),
        (
            [log_of_type("predict_streamed_log")],
            UNIMPLEMENTED,
            "Unsupported log_type for warmup: 7",
        ),
        (
            [prediction_log_pb2.PredictionLog().SerializeToString()] * 1001,
            INVALID_ARGUMENT,
            "Number of warmup records exceeds the maximum (1000) at {path}",
        ),
        (
            [predict_log(), b"\x08\x01not a prediction log"],
            INVALID_ARGUMENT,
            "Failed to parse warmup record: \x08\x01not a prediction log from {path}",
        ),
    ],
    ids=[
        "predict-signature",
        "classify-signature",
        "regress-empty",
        "multi-inference-predict",
        "session-run-log",
        "predict-streamed-log",
        "1001-records",
        "not-a-prediction-log",
    ],
)
def test_a_failing_warmup_fails_the_load(
    server, base, half_plus_two_examples_models, records, code, message
):
    version, path = add_warmed_version(half_plus_two_examples_models, base, records)
    assert final_state(server, version) == ("END", code, message.format(path=path))
    assert warmup_count(server, base / str(version)) == 0  # upstream records no latency then
    assert final_state(server, 1)[0] == "AVAILABLE"


def test_a_file_that_is_not_tfrecord_is_data_loss(server, base, half_plus_two_examples_models):
    version, _ = add_warmed_version(
        half_plus_two_examples_models, base, b"this is not a TFRecord file\n" * 4
    )
    reader = "corrupted record at 0 (Is this even a TFRecord file?)"
    assert final_state(server, version) == (
        "END",
        DATA_LOSS,
        f"{reader}. Please verify your warmup data is in TFRecord format.",
    )
    assert warmup_count(server, base / str(version), f"DATA_LOSS: {reader}") == 1


def test_warmup_can_be_turned_off(tmp_path, half_plus_two_examples_models):
    base = half_plus_two_examples_models.make_base_path(tmp_path)
    write_warmup(base / "1", [log_of_type("session_run_log")])
    process = start(tmp_path, base, "--enable_model_warmup=false")
    try:
        assert_serving(process, "hp2w")
        assert "warmup data" not in process.logs()
        assert warmup_count(process, base / "1") == 0
    finally:
        process.stop()


def test_a_failing_initial_warmup_stops_the_start(tmp_path, half_plus_two_examples_models):
    base = half_plus_two_examples_models.make_base_path(tmp_path)
    write_warmup(base / "1", [log_of_type("session_run_log")])
    code, out = run_to_exit(
        f"--model_base_path={base}",
        "--model_name=hp2w",
        "--ephemeral_ports",
        "--max_num_load_retries=0",
    )
    assert code != 0
    assert "Failed to start server. Error: UNKNOWN: 1 model(s) did not become available" in out
    assert (
        "{name: hp2w version: 1} due to error: UNIMPLEMENTED: Unsupported log_type for warmup: 5"
        in out
    )
