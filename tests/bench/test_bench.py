"""The benchmark's parts, small: the transport floor answers canned zeros through the server's
own front-ends, the load generator drives it over gRPC and HTTP, and the report judges ratios.
(The benchmark itself is ``python -m bench``; no timing is asserted here.)"""

from __future__ import annotations

import math
import time

import numpy as np

from bench.loadgen import Target, Window, run_clients
from bench.models import ModelSpec
from bench.report import InProcessCall, Lifecycle, LoadCell, Results, Round, markdown
from bench.setups import answer, grpc_target, rest_target, start_module
from bench.stats import Summary, summarize
from bench.targets import targets
from tfserve_nb.config import ModelConfig, render_config_file

HALF_PLUS_TWO = ModelSpec("hp2", "x", (1,))


def test_floor_answers_zeros_and_the_load_generator_drives_it(tmp_path, half_plus_two_base):
    config = tmp_path / "models.config"
    config.write_text(render_config_file([ModelConfig("hp2", str(half_plus_two_base))]))
    floor = start_module(
        "bench.floor_server", [f"--model_config_file={config}", "--ephemeral_ports"], tmp_path, "f"
    )
    try:
        targets_ = [
            grpc_target(HALF_PLUS_TWO, floor.ports["grpc_port"]),
            rest_target(HALF_PLUS_TWO, floor.ports["rest_port"], "/v1/models/hp2:predict"),
        ]
        for target in targets_:
            np.testing.assert_array_equal(answer(target, HALF_PLUS_TWO), np.zeros((1, 1)))
            tally = run_clients(target, 3, Window(time.time(), 0.1, 0.3))
            assert tally.errors == 0 and tally.latencies, tally.first_error
        path = "/v1/models/hp2:predict"
        wrong = Target("http", "127.0.0.1", floor.ports["rest_port"], b"{}", path)
        tally = run_clients(wrong, 1, Window(time.time(), 0.0, 0.2))
        assert tally.errors and not tally.latencies and "HTTP/1.1 400" in tally.first_error
    finally:
        floor.stop()


def summary(p50_ms: float, rate: float) -> Summary:
    return Summary(int(rate), 1.0, p50_ms, p50_ms * 2)


def cell(model: str, setup: str, clients: int, *rounds: tuple[float, float]) -> LoadCell:
    """A Python-client cell with one round per (p50 ms, req/s)."""
    return LoadCell(
        model,
        setup,
        clients,
        "python",
        [Round(summary(p50, rate), 1.0, 0.5, float("nan")) for p50, rate in rounds],
    )


MACHINE = {
    "date": "today",
    "cpu": "cpu",
    "cores": 2,
    "ram_gb": 1,
    "os": "os",
    "python": "3",
    "versions": {},
    "busy_percent_before": 50.0,
    "load_before": 1.0,
}


def results_of(cells: list[LoadCell], inprocess: list[InProcessCall]) -> Results:
    life = Lifecycle(3.0, [0.9, 1.2], [0.2], 1000, 0, "", 64, 130, 260, 100)
    return Results("test", "1 x 1 s.", MACHINE, {"shared": ""}, 1.0, inprocess, cells, life)


def test_targets_are_ratios_within_each_round_and_met_only_if_the_worst_round_is():
    cells = [
        cell("m", "transport floor, gRPC", 1, (0.5, 2000), (0.5, 2000), (0.5, 2000)),
        cell("m", "embedded, gRPC", 1, (0.8, 1200), (0.85, 1100), (0.8, 1200)),
        cell("m", "embedded, REST", 1, (1.0, 1000), (1.0, 1000), (1.0, 1000)),
        cell("m", "transport floor, gRPC", 64, (20, 3000), (20, 3000), (20, 3000)),
        cell("m", "embedded, gRPC, batching", 64, (25, 2400), (30, 1800), (25, 2400)),
    ]
    limit = [summary(0.2, 5000)] * 3
    inprocess = [InProcessCall("m", "signature", 1, limit, [0.1] * 3)]
    results = results_of(cells, inprocess)
    found = {t.name: t for t in targets(results)}
    grpc = found["m, Python clients: gRPC batch-1 p50, c=1 ≤ 1.25 x (in-process + transport floor)"]
    assert grpc.values == [0.8 / 0.7, 0.85 / 0.7, 0.8 / 0.7] and grpc.met
    assert grpc.spread == (0.8 / 0.7, 0.8 / 0.7, 0.85 / 0.7)
    floor = found["m, Python clients: 64 clients, batching ≥ 0.7 x transport floor, gRPC req/s"]
    assert floor.values == [0.8, 0.6, 0.8] and not floor.met  # its worst round misses
    fastapi = found["m, Python clients: 64 clients, batching ≥ 10 x FastAPI + model.predict req/s"]
    assert fastapi.values == [] and not fastapi.met
    assert found["m, Python clients: REST row batch-1 p50 ≤ 1.5 x gRPC p50 (c=1)"].met
    assert found["switch with 1 s polling ≤ 1.5 s (slowest sample)"].met
    assert found["memory, one version ≤ 1.3 x bare process"].values == [1.3]
    text = markdown(results, "plot.png")
    assert (
        "| m, Python clients: 64 clients, batching ≥ 0.7 x transport floor, gRPC req/s "
        "| 0.60 | 0.80 | 0.80 | 0.7 | **no** |"
    ) in text
    assert "| 2,400 [1,800-2,400] |" in text  # median [min-max] requests/s
    assert "Other processes were using the machine" in text


def test_the_compute_bound_model_is_judged_against_the_in_process_batched_limit():
    batch = 32
    cells = [
        cell("mobilenet_v2", "embedded, gRPC", 64, (500, 120), (500, 100)),
        cell("mobilenet_v2", "embedded, gRPC, batching", 64, (300, 220), (300, 200)),
    ]
    inprocess = [
        InProcessCall("mobilenet_v2", "prepared", batch, [summary(118, 9)] * 2, [7.0] * 2),
        InProcessCall("mobilenet_v2", "signature", batch, [summary(120, 8.0)] * 2, [7.0] * 2),
    ]
    found = {t.name: t for t in targets(results_of(cells, inprocess))}
    limit = found[
        "mobilenet_v2, Python clients: 64 clients, batching ≥ 0.8 x in-process rows/s at batch 32"
    ]
    assert limit.values == [220 / (9 * batch), 200 / (9 * batch)]  # the faster call
    assert not limit.met and "gain over the unbatched server 1.83 x" in limit.detail
    assert not any("transport floor, gRPC req/s" in n for n in found if n.startswith("mobilenet"))


def test_summaries_use_nearest_rank_percentiles():
    result = summarize([i / 1000 for i in range(1, 101)], 2.0, errors=1, first_error="x")
    assert (result.p50_ms, result.p99_ms, result.rate) == (50.0, 99.0, 50.0)
    assert math.isnan(summarize([], 1.0).p50_ms)


def test_profile_attributes_a_sample_to_its_innermost_known_part():
    from bench.profile import OTHER, part_of

    root = "Thread.run (threading.py:982);_serve (grpc/_server.py:1320)"
    core = f"{root};predict (tfserve_nb/model_server/server_core.py:290)"
    assert part_of(f"{core};_numpy (tensorflow/python/framework/ops.py:440)") == (
        "model call (TensorFlow)"
    )
    assert part_of(core) == "server core (lookup, checks, metrics)"
    assert part_of(f"{core};to_ndarray (tfserve_nb/protocol/tensor_proto.py:80)") == (
        "numpy <-> TensorProto"
    )
    assert part_of(root) == "gRPC and protobuf"
    assert part_of(f"{root};Condition.wait (threading.py:320)") == "threads and locks"
    assert part_of("<module> (somewhere.py:1)") == OTHER


def test_the_compute_heavy_model_is_mobilenet_v2_128x128x3_with_10_classes():
    from bench.models import MODELS

    spec = MODELS["mobilenet_v2"]
    model = spec.build()
    x = spec.example(2)
    assert x.shape == (2, 128, 128, 3)
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)  # softmax over the 10 classes
    assert 2_000_000 < model.count_params() < 2_500_000  # MobileNetV2 at width 1.0
    np.testing.assert_array_equal(spec.build().predict(x, verbose=0), y)  # seeded weights
