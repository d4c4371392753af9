"""Contract §1: the ``tensorflow_model_server`` command line — flags and defaults, start-up
checks with upstream's texts, ports that open only once the models are AVAILABLE, a failed
initial load, ``--saved_model_tags``, and the extras of ours — on real server processes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers.conformance import (
    add_broken_version,
    assert_serving,
    half_plus_two_answer,
    run_to_exit,
    version_states,
    wait_for_states,
    write_config,
)
from tests.helpers.server_process import STARTUP_DEADLINE, ServerProcess, free_port
from tests.helpers.waiting import wait_until
from tfserve_nb.config import ModelConfig
from tfserve_nb.model_server.main import build_parser

# --- flags and defaults ------------------------------------------------------------------------

UPSTREAM_FLAGS = [
    "port",
    "grpc_socket_path",
    "rest_api_port",
    "rest_api_num_threads",
    "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support",
    "enable_batching",
    "enable_per_model_batching_parameters",
    "batching_parameters_file",
    "model_config_file",
    "model_config_file_poll_wait_seconds",
    "model_name",
    "model_base_path",
    "num_load_threads",
    "num_unload_threads",
    "max_num_load_retries",
    "load_retry_interval_micros",
    "file_system_poll_wait_seconds",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "tensorflow_session_config_file",
    "ssl_config_file",
    "platform_config_file",
    "per_process_gpu_memory_fraction",
    "saved_model_tags",
    "grpc_channel_arguments",
    "grpc_max_threads",
    "enable_model_warmup",
    "num_request_iterations_for_warmup",
    "version",
    "monitoring_config_file",
    "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
    "use_alts_credentials",
    "allow_version_labels_for_unavailable_models",
    "enable_serialization_as_tensor_content",
]
"""Every flag of upstream's ``model_servers/main.cc``."""


def test_every_upstream_flag_is_known():
    """Each is taken, or refused by name (UNSUPPORTED_FLAGS): none is an unknown flag."""
    known = {action.dest for action in build_parser()._actions}
    assert [flag for flag in UPSTREAM_FLAGS if flag not in known] == []


DEFAULTS = {
    "port": 8500,
    "rest_api_port": 0,
    "model_name": "default",
    "model_base_path": "",
    "model_config_file": "",
    "model_config_file_poll_wait_seconds": 0,
    "file_system_poll_wait_seconds": 1,
    "allow_version_labels_for_unavailable_models": False,
    "enable_batching": False,
    "batching_parameters_file": "",
    "monitoring_config_file": "",
    "rest_api_timeout_in_ms": 30000,
    "rest_api_enable_cors_support": False,
    "tensorflow_intra_op_parallelism": 0,
    "tensorflow_inter_op_parallelism": 0,
    "tensorflow_session_parallelism": 0,
    "enable_model_warmup": True,
    "max_num_load_retries": 5,
    "load_retry_interval_micros": 60_000_000,
    "saved_model_tags": "serve",
    "grpc_socket_path": "",
    "grpc_channel_arguments": "",
    "enable_profiler": False,
    "prefer_tflite_model": False,
    "num_tflite_interpreters_per_pool": 1,
}


def test_flags_have_tensorflow_model_server_defaults():
    flags = vars(build_parser().parse_args([]))
    assert {name: flags[name] for name in DEFAULTS} == DEFAULTS
    assert flags["num_tflite_pools"] == len(os.sched_getaffinity(0))  # NumSchedulableCPUs


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["--enable_batching"], True),
        (["--enable_batching=true"], True),
        (["--enable_batching=false"], False),
        (["--enable_batching=1"], True),
        (["--enable_batching=0"], False),
    ],
)
def test_boolean_flags_take_tensorflow_flag_forms(argv, value):
    assert build_parser().parse_args(argv).enable_batching is value


# --- start-up checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (
            ["--port=0"],  # checked first, as upstream does
            "INVALID_ARGUMENT: At least one of server_options.grpc_port or "
            "server_options.grpc_socket_path must be set.",
        ),
        (
            ["--port=8500"],
            "INVALID_ARGUMENT: Both server_options.model_base_path and "
            "server_options.model_config_file are empty!",
        ),
        (
            ["--model_base_path=/m", "--batching_parameters_file=/b"],
            "INVALID_ARGUMENT: server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.",
        ),
        (
            [
                "--model_base_path=/m",
                "--tensorflow_session_parallelism=1",
                "--tensorflow_intra_op_parallelism=1",
                "--tensorflow_inter_op_parallelism=1",
            ],
            "INVALID_ARGUMENT: Either configure server_options.tensorflow_session_parallelism "
            "or (server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure "
            "all.",
        ),
    ],
    ids=["no-grpc-port", "no-model", "batching-file-without-batching", "all-parallelism"],
)
def test_start_up_checks_fail_with_upstream_texts(flags, error):
    code, out = run_to_exit(*flags)
    assert code == 255  # main() returns -1
    assert f"Failed to start server. Error: {error}" in out


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--model_base_path=/m", "--no_such_flag=1"], "--no_such_flag"),
        (["--model_base_path=/m", "--port=abc"], "--port"),
        (["--model_base_path=/m", "--ssl_config_file=/ssl"], "--ssl_config_file"),
        (
            ["--model_base_path=/m", "--grpc_channel_arguments=grpc.max_connection_age_ms"],
            "--grpc_channel_arguments item 'grpc.max_connection_age_ms' is not key=value",
        ),
    ],
    ids=["unknown", "bad-value", "unsupported-upstream-flag", "channel-argument-not-key-value"],
)
def test_flags_we_cannot_honour_stop_start_up_naming_the_flag(flags, named):
    """Deliberately stricter than upstream, which prints ``unknown argument`` and starts (and
    reads past the end of a channel argument without ``=``)."""
    code, out = run_to_exit(*flags)
    assert code != 0 and named in out


def test_a_bad_model_config_file_logs_protobufs_complaint_on_stderr(tmp_path):
    """Upstream's ``testBadModelConfig`` (its ``bad_model_config.txt`` holds this text):
    protobuf's text parser logs ``Error parsing text-format tensorflow.serving.ModelServerConfig:
    ...`` on stderr, and the failure line on stdout names the file only."""
    config = tmp_path / "bad_model_config.txt"
    config.write_text("improperly formatted file\n")
    done = subprocess.run(
        [sys.executable, "-m", "tfserve_nb.model_server", f"--model_config_file={config}"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 255
    assert (
        "Error parsing text-format tensorflow.serving.ModelServerConfig: 1:1: Message type "
        '"tensorflow.serving.ModelServerConfig" has no field named "improperly".'
    ) in done.stderr
    assert "Error parsing text-format" not in done.stdout
    assert done.stdout.splitlines()[-1] == (
        f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{config}'"
    )


# --- start-up: ports, failed loads, missing versions --------------------------------------------


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_ports_open_only_once_every_model_is_available(tmp_path, half_plus_two_models):
    """``late`` has no numeric version (only ``v1``): the server waits, logs upstream's hint,
    and opens no port until a version appears and loads."""
    late = tmp_path / "late"
    (late / "v1").mkdir(parents=True)
    configs = [
        ModelConfig("hp2", str(half_plus_two_models.make_base_path(tmp_path))),
        ModelConfig("late", str(late)),
    ]
    grpc_port, rest_port = free_port(), free_port()
    flags = (
        f"--model_config_file={write_config(tmp_path / 'models.config', configs)}",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
    )
    started: list[ServerProcess] = []
    starter = threading.Thread(target=lambda: started.append(ServerProcess(tmp_path, *flags)))
    starter.start()
    try:
        hint = (
            f"No versions of servable late found under base path {late}. Did you forget to "
            "name your leaf directory as a number (eg. '/1/')?"
        )
        log = tmp_path / "server.log"
        wait_until(lambda: log.exists() and hint in log.read_text(errors="replace"), "the hint")
        wait_until(
            lambda: "Successfully loaded servable version {name: hp2" in log.read_text(),
            "hp2 to load",
        )
        assert _refused(grpc_port) and _refused(rest_port)
        assert not (tmp_path / "ports.json").exists()
        half_plus_two_models.add_version(late, 1)
    finally:
        starter.join(STARTUP_DEADLINE)
    (server,) = started
    try:
        assert (server.grpc_port, server.rest_port) == (grpc_port, rest_port)
        assert half_plus_two_answer(server, "late") == (1, 2.5)
        assert_serving(server, "hp2")
    finally:
        server.stop()


def test_a_failed_initial_load_exits_with_every_model_that_failed(tmp_path, half_plus_two_models):
    configs = [ModelConfig("hp2", str(half_plus_two_models.make_base_path(tmp_path)))]
    for name in ("b_broken", "a_broken"):
        (tmp_path / name).mkdir()
        add_broken_version(tmp_path / name, 1)
        configs.append(ModelConfig(name, str(tmp_path / name)))
    code, out = run_to_exit(
        f"--model_config_file={write_config(tmp_path / 'models.config', configs)}",
        "--ephemeral_ports",
        "--max_num_load_retries=0",
    )
    assert code == 255
    line = next(line for line in out.splitlines() if line.startswith("Failed to start server"))
    parse_error = "UNKNOWN: Error parsing message with type 'tensorflow.SavedModel'"
    assert line.startswith(
        "Failed to start server. Error: UNKNOWN: 2 model(s) did not become available: "
        f"{{{{{{name: a_broken version: 1}} due to error: {parse_error}"
    )
    assert f"}}, {{{{name: b_broken version: 1}} due to error: {parse_error}" in line
    assert line.endswith("}, }")


# --- --saved_model_tags, and a REST port equal to the gRPC port ---------------------------------


def _retagged(source: Path, target: Path, tags: list[str]) -> Path:
    """A copy of the SavedModel ``source`` whose meta graph carries ``tags``."""
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(source, target)
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((target / "saved_model.pb").read_bytes())
    meta_tags = saved_model.meta_graphs[0].meta_info_def.tags
    del meta_tags[:]
    meta_tags.extend(tags)
    (target / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    return target


@pytest.fixture(scope="module")
def tagged_server(tmp_path_factory, half_plus_two_models):
    """``--saved_model_tags=serve,tpu`` serving ``hp2`` version 1 (tagged so), with
    ``--rest_api_port`` equal to ``--port`` and the op parallelism flags set."""
    root = tmp_path_factory.mktemp("tagged")
    base = root / "hp2"
    base.mkdir()
    _retagged(half_plus_two_models.exports[1], root / ".tmp-tagged", ["serve", "tpu"]).rename(
        base / "1"
    )
    port = free_port()
    server = ServerProcess(
        root,
        f"--model_base_path={base}",
        "--model_name=hp2",
        "--saved_model_tags=serve,tpu",
        f"--port={port}",
        f"--rest_api_port={port}",
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=1",
        "--file_system_poll_wait_seconds=1",
        "--max_num_load_retries=0",
    )
    yield server, base
    server.stop()


def test_saved_model_tags_choose_the_meta_graph(tagged_server, half_plus_two_models):
    server, base = tagged_server
    assert half_plus_two_answer(server, "hp2") == (1, 2.5)
    half_plus_two_models.add_version(base, 2)  # tagged "serve" only: not loadable here
    wait_for_states(server, "hp2", {2: "END", 1: "AVAILABLE"})
    (_, _, code, message), _ = version_states(server, "hp2")
    assert code == 5  # NOT_FOUND
    assert message.startswith("Could not find meta graph def matching supplied tags: { serve tpu }")
    assert half_plus_two_answer(server, "hp2") == (1, 2.5)


def test_a_rest_port_equal_to_the_grpc_port_serves_grpc_only(tagged_server):
    server, _ = tagged_server
    assert server.rest_port == 0
    assert (
        "server_options.http_port cannot be same as grpc_port. Please use a different port for "
        "HTTP/REST API. Skipped exporting HTTP/REST API." in server.logs()
    )
    assert half_plus_two_answer(server, "hp2")[0] == 1


# --- extras of ours ----------------------------------------------------------------------------


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}
"""127.0.0.1 as /proc/net/tcp writes it, and as an IPv4-mapped IPv6 address in tcp6."""


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses (hex, as /proc writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
                found.add(address)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net")
def test_extras_loopback_ephemeral_ports_port_file_and_stdin_eof(tmp_path, half_plus_two_base):
    port_file = tmp_path / "ports.json"
    with open(tmp_path / "server.log", "wb") as log:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tfserve_nb.model_server",
                f"--model_base_path={half_plus_two_base}",
                "--ephemeral_ports",
                f"--port_file={port_file}",
                "--exit_on_stdin_eof",
            ],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: port_file.exists() or popen.poll() is not None,
            "the port file",
            STARTUP_DEADLINE,
        )
        ports = json.loads(port_file.read_text())
        assert set(ports) == {"grpc_port", "rest_port"}
        for port in ports.values():
            listening = _listening_addresses(port)
            assert port > 0 and listening and listening <= LOOPBACK, listening
        logs = (tmp_path / "server.log").read_text()
        assert f"Running gRPC ModelServer at 127.0.0.1:{ports['grpc_port']} ..." in logs
        assert f"Exporting HTTP/REST API at:127.0.0.1:{ports['rest_port']} ..." in logs
        popen.stdin.close()
        assert popen.wait(STARTUP_DEADLINE) == 0
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()


def test_stdin_eof_during_start_up_exits_too(tmp_path):
    """A parent that dies while the server still waits for its first version (here: a base path
    with no numeric version, which waits for ever) leaves no server behind."""
    (tmp_path / "models" / "not-a-version").mkdir(parents=True)
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tfserve_nb.model_server",
                f"--model_base_path={tmp_path / 'models'}",
                "--ephemeral_ports",
                "--exit_on_stdin_eof",
            ],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: (
                "Did you forget to name your leaf directory" in log.read_text()
                or popen.poll() is not None
            ),
            "the server waiting for a version",
            STARTUP_DEADLINE,
        )
        assert popen.poll() is None, log.read_text()
        popen.stdin.close()
        assert popen.wait(STARTUP_DEADLINE) != 0
        assert "stdin closed during start-up: exiting" in log.read_text()
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()


def test_health_service_and_tensor_content_serialization(tmp_path, half_plus_two_base):
    import grpc
    import numpy as np
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfserve_nb.protocol import tensor_proto

    server = ServerProcess(
        tmp_path,
        f"--model_base_path={half_plus_two_base}",
        "--model_name=hp2",
        "--ephemeral_ports",
        "--enable_grpc_healthcheck_service",
        "--enable_serialization_as_tensor_content=true",
    )
    try:
        health = health_pb2_grpc.HealthStub(server.channel)
        for service in ("", "ModelService", "PredictionService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as unknown:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "hp2"
        request.inputs["x"].CopyFrom(tensor_proto.from_ndarray(np.array([[1.0], [4.0]], "f4")))
        reply = prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(
            request, 30.0
        )
        y = reply.outputs["y"]
        assert y.tensor_content and not y.float_val
        np.testing.assert_array_equal(tensor_proto.to_ndarray(y), [[2.5], [4.0]])
    finally:
        server.stop()


def test_no_health_service_unless_asked(tagged_server):
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server, _ = tagged_server
    with pytest.raises(grpc.RpcError) as missing:
        health_pb2_grpc.HealthStub(server.channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_version_prints_ours():
    from tfserve_nb import __version__

    code, output = run_to_exit("--version")
    assert (code, output.strip()) == (0, f"tfserve-nb {__version__}")


@pytest.mark.parametrize(
    ("intra", "inter", "session", "pools"),
    [(0, 0, 0, (0, 0)), (0, 0, 3, (3, 3)), (2, 0, 3, (2, 0)), (0, 1, 3, (0, 1)), (2, 1, 0, (2, 1))],
)
def test_parallelism_flags_choose_the_pools_as_upstream(intra, inter, session, pools):
    from tfserve_nb.model_server.main import tensorflow_thread_pools

    assert tensorflow_thread_pools(intra, inter, session) == pools
