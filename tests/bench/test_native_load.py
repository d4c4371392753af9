"""The native load generators (h2load over h2c, wrk over HTTP/1.1) drive the transport floor
and count what fails: HTTP statuses, streams h2load sees fail, and gRPC statuses h2load cannot
read, through the server's OK count and the sampled calls. (No timing is asserted.)"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from bench.loadgen import Target
from bench.models import ModelSpec
from bench.native_load import NativeRun, h2load_grpc, wrk_rest
from bench.server_metrics import PROMETHEUS_CONFIG, ok_counter
from bench.setups import Process, grpc_target, rest_target, start_module
from tfserve_nb.config import ModelConfig, render_config_file

HALF_PLUS_TWO = ModelSpec("hp2", "x", (1,))
PATH = "/v1/models/hp2:predict"
CLIENTS = 4

needs_h2load = pytest.mark.skipif(
    shutil.which("h2load") is None, reason="h2load (nghttp2-client) is not installed"
)
needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory, half_plus_two_models) -> Iterator[Process]:
    root = tmp_path_factory.mktemp("native_load")
    config = root / "models.config"
    base = half_plus_two_models.make_base_path(root, name="hp2")
    config.write_text(render_config_file([ModelConfig("hp2", str(base))]))
    (root / "monitoring.txt").write_text(PROMETHEUS_CONFIG)
    flags = [
        f"--model_config_file={config}",
        f"--monitoring_config_file={root / 'monitoring.txt'}",
        "--ephemeral_ports",
    ]
    process = start_module("bench.floor_server", flags, root, "floor")
    yield process
    process.stop()


def grpc_payload(spec: ModelSpec, floor: Process, input_name: str | None = None) -> Target:
    """``spec``'s example for the floor's gRPC port, its input renamed if ``input_name``."""
    from tensorflow_serving.apis import predict_pb2

    target = grpc_target(spec, floor.ports["grpc_port"])
    if input_name is None:
        return target
    request = predict_pb2.PredictRequest.FromString(target.payload)
    request.inputs[input_name].CopyFrom(request.inputs[spec.input])
    del request.inputs[spec.input]
    return Target("grpc", target.host, target.port, request.SerializeToString())


def ok_count(floor: Process) -> Callable[[], float]:
    return ok_counter("127.0.0.1", floor.ports["rest_port"], "hp2")


def assert_clean(run: NativeRun) -> None:
    summary = run.summary
    assert summary.errors == 0, summary.first_error
    assert summary.count > 0 and summary.p50_ms <= summary.p99_ms
    assert run.client_cpu_s > 0


@needs_h2load
def test_h2load_drives_grpc_and_the_server_counts_every_answer_ok(floor, tmp_path):
    target = grpc_payload(HALF_PLUS_TWO, floor)
    assert_clean(h2load_grpc(target, CLIENTS, 0.3, 1.0, tmp_path))
    assert_clean(h2load_grpc(target, CLIENTS, 0.0, 1.0, tmp_path, ok_count(floor)))


@needs_h2load
def test_grpc_errors_h2load_cannot_see_are_counted_by_the_server_and_the_sampler(floor, tmp_path):
    # A missing model fails with NOT_FOUND in a well-formed trailer: HTTP 200 to h2load.
    missing_model = grpc_payload(ModelSpec("nope", "x", (1,)), floor)
    sampled_only = h2load_grpc(missing_model, CLIENTS, 0.0, 1.0, tmp_path).summary
    assert sampled_only.count > 0  # h2load alone takes them for answers
    assert sampled_only.errors >= 1
    assert sampled_only.first_error.startswith("sampled call: NOT_FOUND: Servable not found")

    checked = h2load_grpc(missing_model, CLIENTS, 0.0, 1.0, tmp_path, ok_count(floor)).summary
    assert checked.count == 0 and checked.errors > sampled_only.errors
    assert "HTTP 2xx answers, the server counted 0 OK" in checked.first_error
    assert "sampled call: NOT_FOUND" in checked.first_error


@needs_h2load
def test_a_missing_input_fails_every_stream_and_sampled_call(floor, tmp_path):
    # The server's message for it ends in a space, which nghttp2 rejects in a trailer: h2load
    # sees the streams fail.
    missing_input = grpc_payload(HALF_PLUS_TWO, floor, input_name="nope")
    summary = h2load_grpc(missing_input, CLIENTS, 0.0, 1.0, tmp_path, ok_count(floor)).summary
    assert summary.count == 0 and summary.errors > 0
    assert summary.first_error.startswith("a stream h2load saw fail")
    assert "sampled call: INVALID_ARGUMENT" in summary.first_error


@needs_wrk
def test_wrk_drives_rest(floor, tmp_path):
    target = rest_target(HALF_PLUS_TWO, floor.ports["rest_port"], PATH)
    assert_clean(wrk_rest(target, CLIENTS, 0.3, 1.0, tmp_path))


@needs_wrk
def test_wrk_counts_answers_other_than_2xx_as_errors(floor, tmp_path):
    wrong = Target("http", "127.0.0.1", floor.ports["rest_port"], b"{}", PATH)
    summary = wrk_rest(wrong, CLIENTS, 0.0, 0.5, tmp_path).summary
    assert summary.count == 0 and summary.errors > 0
    assert summary.first_error.startswith("HTTP 400: ")


def test_a_missing_tool_names_its_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    target = Target("http", "127.0.0.1", 1, b"{}", PATH)
    with pytest.raises(RuntimeError, match=r"Debian's wrk package.*scripts/install-system-deps"):
        wrk_rest(target, 1, 0.0, 0.1, tmp_path)
    with pytest.raises(RuntimeError, match="Debian's nghttp2-client package"):
        h2load_grpc(Target("grpc", "127.0.0.1", 1, b""), 1, 0.0, 0.1, tmp_path)
