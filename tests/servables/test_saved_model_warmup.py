"""servables.saved_model_warmup: reading the warmup file, the record limit, TF Serving's texts,
and when the warmup latency is recorded; with an executor that records what it is given."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfserve_nb.core.status import Code, ServingStatusError, invalid_argument
from tfserve_nb.servables.saved_model_warmup import (
    MAX_NUM_RECORDS,
    WARMUP_REQUESTS_FILE,
    run_saved_model_warmup,
)


def log(signature_name: str) -> bytes:
    """A serialized predict log naming ``signature_name`` (to tell records apart)."""
    message = prediction_log_pb2.PredictionLog()
    message.predict_log.request.model_spec.signature_name = signature_name
    return message.SerializeToString()


def write_records(export_dir: Path, records: list[bytes]) -> Path:
    path = export_dir / WARMUP_REQUESTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return path


class Recorder:
    """The executor and latency recorder: what they were called with."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.executed: list[str] = []
        self.latencies: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def execute(self, prediction_log: prediction_log_pb2.PredictionLog) -> None:
        name = prediction_log.predict_log.request.model_spec.signature_name
        self.executed.append(name)
        if name == self.fail_on:
            raise invalid_argument(f"bad {name}")

    def record(self, model_path: str, status: str, latency_us: float) -> None:
        assert latency_us >= 0
        self.latencies.append((model_path, status))

    def run(self, export_dir: Path, iterations: int = 1) -> None:
        run_saved_model_warmup(str(export_dir), self.execute, iterations, self.record)


def failure(recorder: Recorder, export_dir: Path) -> tuple[Code, str]:
    with pytest.raises(ServingStatusError) as exc:
        recorder.run(export_dir)
    return exc.value.code, exc.value.message


def test_no_file_no_warmup(tmp_path: Path) -> None:
    recorder = Recorder()
    recorder.run(tmp_path)
    assert (recorder.executed, recorder.latencies) == ([], [])


def test_each_record_runs_the_given_number_of_times_in_order(tmp_path: Path) -> None:
    write_records(tmp_path, [log("a"), log("b"), b""])  # b"": a log of no type
    recorder = Recorder()
    recorder.run(tmp_path, iterations=3)
    assert recorder.executed == ["a"] * 3 + ["b"] * 3 + [""] * 3
    assert recorder.latencies == [(str(tmp_path), "OK")]


def test_at_most_1000_records(tmp_path: Path) -> None:
    write_records(tmp_path, [log("r")] * MAX_NUM_RECORDS)
    Recorder().run(tmp_path)
    path = write_records(tmp_path, [log("r")] * (MAX_NUM_RECORDS + 1))
    recorder = Recorder()
    assert failure(recorder, tmp_path) == (
        Code.INVALID_ARGUMENT,
        f"Number of warmup records exceeds the maximum (1000) at {path}",
    )
    assert len(recorder.executed) == MAX_NUM_RECORDS + 1  # upstream runs the 1001st first
    assert recorder.latencies == []


def test_a_record_that_is_not_a_prediction_log(tmp_path: Path) -> None:
    path = write_records(tmp_path, [log("a"), b"not a proto\xff"])
    recorder = Recorder()
    assert failure(recorder, tmp_path) == (
        Code.INVALID_ARGUMENT,
        f"Failed to parse warmup record: not a proto\\xff from {path}",
    )
    assert (recorder.executed, recorder.latencies) == (["a"], [])


def test_an_executor_error_fails_the_warmup_as_it_is(tmp_path: Path) -> None:
    write_records(tmp_path, [log("a"), log("b"), log("c")])
    recorder = Recorder(fail_on="b")
    assert failure(recorder, tmp_path) == (Code.INVALID_ARGUMENT, "bad b")
    assert (recorder.executed, recorder.latencies) == (["a", "b"], [])


def test_not_a_tfrecord_file_is_data_loss(tmp_path: Path) -> None:
    path = tmp_path / WARMUP_REQUESTS_FILE
    path.parent.mkdir()
    path.write_bytes(b"this is not a TFRecord file, it is plain text\n")
    recorder = Recorder()
    assert failure(recorder, tmp_path) == (
        Code.DATA_LOSS,
        "corrupted record at 0 (Is this even a TFRecord file?). Please verify your warmup data "
        "is in TFRecord format.",
    )
    assert recorder.latencies == [
        (str(tmp_path), "DATA_LOSS: corrupted record at 0 (Is this even a TFRecord file?)")
    ]


def test_a_truncated_file_runs_the_records_before_the_damage(tmp_path: Path) -> None:
    path = write_records(tmp_path, [log("a"), log("b")])
    path.write_bytes(path.read_bytes()[:-3])
    recorder = Recorder()
    code, message = failure(recorder, tmp_path)
    assert code is Code.DATA_LOSS
    assert message.startswith("truncated record at ")
    assert message.endswith(". Please verify your warmup data is in TFRecord format.")
    assert recorder.executed == ["a"]
    assert [status.split(":")[0] for _, status in recorder.latencies] == ["DATA_LOSS"]
