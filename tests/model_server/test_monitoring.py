"""--monitoring_config_file: Prometheus text with TF Serving's metric names on the REST port."""

from __future__ import annotations

import urllib.error
import urllib.request

import numpy as np

from tests.helpers.conformance import run_to_exit
from tests.helpers.server_process import ServerProcess, canonical_predict


def test_prometheus_endpoint_counts_requests(tmp_path, half_plus_two_base):
    config = tmp_path / "monitoring.config"
    config.write_text('prometheus_config { enable: true path: "/metrics/x" }')
    server = ServerProcess(
        tmp_path,
        f"--model_base_path={half_plus_two_base}",
        "--model_name=hp2",
        "--ephemeral_ports",
        f"--monitoring_config_file={config}",
    )
    try:
        for _ in range(3):
            canonical_predict(server.channel, "hp2", np.ones((1, 1), np.float32))
        server.rest("POST", "/v1/models/hp2:predict", b'{"instances": [[1.0]]}')
        server.rest("POST", "/v1/models/nope:predict", b'{"instances": [[1.0]]}')
        url = f"http://127.0.0.1:{server.rest_port}/metrics/x"
        with urllib.request.urlopen(url, timeout=30) as reply:
            assert reply.headers["Content-Type"] == "text/plain"
            page = reply.read().decode()
    finally:
        server.stop()
    lines = page.splitlines()
    assert "# TYPE :tensorflow:serving:request_count counter" in lines
    assert ':tensorflow:serving:request_count{model_name="hp2",status="OK"} 4.0' in lines
    assert ':tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"} 1.0' in lines
    assert "# TYPE :tensorflow:serving:request_latency histogram" in lines
    grpc_count = next(
        line
        for line in lines
        if line.startswith(":tensorflow:serving:request_latency_count{")
        and 'entrypoint="GRPC"' in line
    )
    assert 'API="Predict"' in grpc_count and grpc_count.endswith(" 3.0")
    assert (
        ':tfserve_nb:version_request_count{model_name="hp2",status="OK",version="1"} 4.0' in lines
    )
    assert not any("_created" in line or "_total" in line for line in lines)


def _serve_with_monitoring(tmp_path, base, text: str) -> ServerProcess:
    config = tmp_path / "monitoring.config"
    config.write_text(text)
    return ServerProcess(
        tmp_path,
        f"--model_base_path={base}",
        "--model_name=hp2",
        "--ephemeral_ports",
        f"--monitoring_config_file={config}",
    )


def _get(server: ServerProcess, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}{path}", timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_an_empty_path_serves_the_default_and_rest_latency_is_labelled_rest(
    tmp_path, half_plus_two_base
):
    server = _serve_with_monitoring(
        tmp_path, half_plus_two_base, "prometheus_config { enable: true }"
    )
    try:
        assert server.rest("POST", "/v1/models/hp2:predict", b'{"instances": [[1.0]]}')[0] == 200
        status, page = _get(server, "/monitoring/prometheus/metrics")
    finally:
        server.stop()
    assert status == 200
    rest_count = [
        line
        for line in page.splitlines()
        if line.startswith(":tensorflow:serving:request_latency_count{")
        and 'entrypoint="REST"' in line
        and 'model_name="hp2"' in line
    ]
    assert len(rest_count) == 1 and rest_count[0].endswith(" 1.0"), rest_count


def test_disabled_monitoring_serves_no_page(tmp_path, half_plus_two_base):
    server = _serve_with_monitoring(
        tmp_path, half_plus_two_base, 'prometheus_config { enable: false path: "/m" }'
    )
    try:
        for path in ("/m", "/monitoring/prometheus/metrics"):
            status, _ = _get(server, path)
            assert status == 404, path
        assert server.rest("GET", "/v1/models/hp2")[0] == 200
    finally:
        server.stop()


def test_a_bad_monitoring_config_stops_start_up(tmp_path, half_plus_two_base):
    config = tmp_path / "monitoring.config"
    config.write_text("prometheus_config { enable: maybe }")
    code, output = run_to_exit(
        f"--model_base_path={half_plus_two_base}",
        "--model_name=hp2",
        "--ephemeral_ports",
        f"--monitoring_config_file={config}",
    )
    assert code != 0
    assert f"Invalid protobuf file: '{config}'" in output, output
