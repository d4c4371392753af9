"""A 50 MB numeric REST predict body against a real server process: its resident memory grows
by a few times the body at most (not a Python float per number), and bystander clients (REST
and gRPC, one-row predicts) keep being answered while it is decoded.

The measurement is :func:`bench.resources.measure` (``python -m bench.resources`` reports the
same numbers); the assertions are loose (the machine is shared), the precise numbers printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.resources import CASES, FLOAT_MODEL, MODELS, max_model, measure, numeric_body
from tests.helpers.conformance import write_config
from tests.helpers.server_process import ServerProcess
from tfserve_nb.config import ModelConfig

BODY_BYTES = 50 * 10**6
MAX_RSS_RATIO = 6.0
MAX_BYSTANDER_P99_MS = 1000.0


@pytest.fixture(scope="module")
def model_config(tmp_path_factory: pytest.TempPathFactory, digits_models) -> Path:
    """A config serving ``digits`` (float32[?,64]), ``int_max`` and ``float_max`` (int32 and
    float32[?,64], each row's maximum)."""
    from tfserve_nb import export_model

    root = tmp_path_factory.mktemp("rest_resources")
    configs = [ModelConfig(FLOAT_MODEL, str(digits_models.make_base_path(root)))]
    for kind, dtype in (("int", "int32"), ("short", "float32")):
        export_model(max_model(dtype), root / MODELS[kind], 1)
        configs.append(ModelConfig(MODELS[kind], str(root / MODELS[kind])))
    return write_config(root / "models.config", configs)


@pytest.mark.parametrize("case", CASES)
def test_a_large_numeric_body_costs_a_few_times_itself_and_stalls_nobody(
    tmp_path: Path, model_config: Path, case: str
) -> None:
    body, rows = numeric_body(case, BODY_BYTES)
    server = ServerProcess(tmp_path, f"--model_config_file={model_config}", "--ephemeral_ports")
    try:
        result = measure(server.popen.pid, server.rest_port, server.grpc_port, case, body, rows)
    finally:
        server.stop()
    print(result.describe())
    assert result.status == 200, server.logs()[-2000:]
    assert not result.bystander_errors, result.bystander_errors[:3]
    assert all(lat.count for lat in result.bystanders.values()), result.describe()
    assert result.ratio < MAX_RSS_RATIO, result.describe()
    assert result.worst_p99_ms < MAX_BYSTANDER_P99_MS, result.describe()
