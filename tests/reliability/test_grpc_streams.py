"""1,500 concurrent ``Predict`` streams, each on a fresh connection, all answered.

An attack run saw 2-7 of 1,500 such calls end CANCELLED: gRPC's core ended calls its pending
queue held past its default limits (see
:data:`tfserve_nb.model_server.grpc.services.MAX_PENDING_REQUESTS`). The load comes from
``h2load`` (nghttp2, installed by ``scripts/install-system-deps``), a native client, so that
the test's own Python gRPC state plays no part: 1,500 HTTP/2 connections, one gRPC-framed
``PredictRequest`` each, three rounds. Every stream must end in a whole ``PredictResponse``
(h2load counts the bytes), and the server's own request count must say OK for every one (h2load
cannot read the ``grpc-status`` trailer)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.conformance import predict_request, rest, stubs
from tests.helpers.server_process import ServerProcess

CONNECTIONS = 1500
ROUNDS = 3
OK_COUNT = ':tensorflow:serving:request_count{model_name="hp2",status="OK"}'
MONITORING = 'prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }'

pytestmark = pytest.mark.skipif(
    shutil.which("h2load") is None, reason="h2load (nghttp2-client) is not installed"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, half_plus_two_models) -> ServerProcess:
    root = tmp_path_factory.mktemp("streams")
    (root / "monitoring.txt").write_text(MONITORING)
    process = ServerProcess(
        root,
        "--model_name=hp2",
        f"--model_base_path={half_plus_two_models.make_base_path(root)}",
        f"--monitoring_config_file={root / 'monitoring.txt'}",
        "--ephemeral_ports",
    )
    yield process
    process.stop()


def ok_requests(server: ServerProcess) -> float:
    page = rest(server, "GET", "/monitoring/prometheus/metrics").body.decode()
    match = re.search(rf"^{re.escape(OK_COUNT)} (\S+)$", page, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def framed(message: bytes) -> bytes:
    """A gRPC length-prefixed message (uncompressed)."""
    return b"\0" + struct.pack(">I", len(message)) + message


def test_every_one_of_1500_concurrent_streams_is_answered(
    server: ServerProcess, tmp_path: Path
) -> None:
    request = predict_request("hp2", {"x": np.ones((1, 1), np.float32)})
    response = stubs(server)[0].Predict(request)
    body = tmp_path / "predict.bin"
    body.write_bytes(framed(request.SerializeToString()))
    answer_bytes = len(framed(response.SerializeToString()))
    url = f"http://127.0.0.1:{server.grpc_port}/tensorflow.serving.PredictionService/Predict"
    for _ in range(ROUNDS):
        before = ok_requests(server)
        run = subprocess.run(
            ["h2load", f"-c{CONNECTIONS}", f"-n{CONNECTIONS}", "-m1", "-T60", "-N60",
             f"-d{body}", "-Hcontent-type: application/grpc", "-Hte: trailers", url],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        print(run.stdout.strip().splitlines()[-6:])
        assert f"requests: {CONNECTIONS} total, {CONNECTIONS} started, {CONNECTIONS} done, " in (
            run.stdout
        )
        assert f"{CONNECTIONS} succeeded, 0 failed, 0 errored, 0 timeout" in run.stdout
        assert f"status codes: {CONNECTIONS} 2xx" in run.stdout
        data = int(re.search(r"\((\d+)\) data", run.stdout).group(1))
        assert data == CONNECTIONS * answer_bytes  # every stream got its whole answer
        assert ok_requests(server) == before + CONNECTIONS
