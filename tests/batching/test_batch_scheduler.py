"""The batch scheduler with a fake ``process_batch``: merging, padding, splitting, errors, close.

Deterministic batches come from a model that blocks inside its first batch: while the only batch
thread is held there, further requests pile up in the queue (``num_enqueued_tasks`` tells how
many), and releasing the thread runs them as one batch. No test asserts on timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest

from tests.helpers.waiting import wait_until
from tfserve_nb.batching.batch_scheduler import (
    QUEUE_CLOSED_MESSAGE,
    QUEUE_FULL_MESSAGE,
    BatchScheduler,
    SharedBatchScheduler,
)
from tfserve_nb.batching.batching_parameters import BatchingParameters
from tfserve_nb.core.status import Code, ServingStatusError

WAIT = 30.0  # generous deadline for conditions that are expected to come true quickly
CONTRACT_FULL_TEXT = "The batch scheduling queue to which this task was submitted is full"


def compute(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The unbatched reference: a per-row function with two outputs."""
    x = inputs["x"]
    return {"y": x * 2 + 1, "row_sum": x.sum(axis=tuple(range(1, x.ndim)))}


class FakeModel:
    """``process_batch`` that records every batch it sees and can hold its first batch."""

    def __init__(
        self,
        *,
        hold_first: bool = False,
        fn: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]] = compute,
    ) -> None:
        self.fn = fn
        self.batches: list[dict[str, np.ndarray]] = []
        self.completed = 0
        self._lock = threading.Lock()
        self._hold_first = hold_first
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(self, inputs: dict[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        with self._lock:
            self.batches.append({name: np.array(value) for name, value in inputs.items()})
            first = len(self.batches) == 1
        if first and self._hold_first:
            self.holding.set()
            assert self.release.wait(WAIT)
        outputs = self.fn(inputs)
        with self._lock:
            self.completed += 1
        return outputs

    @property
    def batch_sizes(self) -> list[int]:
        with self._lock:
            return [len(next(iter(b.values()))) for b in self.batches]


class RecordingMetrics:
    """A :class:`BatchingMetrics` that keeps every measurement."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.input_sizes: list[int] = []
        self.latencies: list[float] = []
        self.processed: list[int] = []
        self.padding: list[tuple[int, int]] = []
        self.runs = 0

    def record_input_batch_size(self, size: int) -> None:
        with self.lock:
            self.input_sizes.append(size)

    def record_queuing_latency(self, micros: float) -> None:
        with self.lock:
            self.latencies.append(micros)

    def record_processed_batch_size(self, size: int) -> None:
        with self.lock:
            self.processed.append(size)

    def record_padding_size(self, padding_size: int, execution_batch_size: int) -> None:
        with self.lock:
            self.padding.append((padding_size, execution_batch_size))

    def record_wrapped_run(self) -> None:
        with self.lock:
            self.runs += 1


def params(**overrides: object) -> BatchingParameters:
    values: dict[str, object] = {"num_batch_threads": 1, "max_batch_size": 64}
    values.update(overrides)
    return BatchingParameters(**values)  # type: ignore[arg-type]


@contextmanager
def scheduler(
    model: FakeModel, **overrides: object
) -> Iterator[tuple[BatchScheduler, ThreadPoolExecutor]]:
    with (
        ThreadPoolExecutor(max_workers=32) as pool,
        BatchScheduler(model, params(**overrides)) as s,
    ):
        yield s, pool


def rows(n: int, start: float = 0.0, width: int = 3) -> np.ndarray:
    return (np.arange(n * width, dtype=np.float32) + start).reshape(n, width)


def hold_then_queue(
    s: BatchScheduler,
    model: FakeModel,
    pool: ThreadPoolExecutor,
    requests: list[dict[str, np.ndarray]],
    hold_with: Mapping[str, np.ndarray] | None = None,
) -> tuple[Future[dict[str, np.ndarray]], list[Future[dict[str, np.ndarray]]]]:
    """Occupy the batch thread with a first request, queue ``requests`` one by one behind it."""
    first = pool.submit(s.submit, hold_with if hold_with is not None else {"x": rows(1, -100)})
    assert model.holding.wait(WAIT)
    futures = []
    for request in requests:
        enqueued = s.num_enqueued_tasks
        futures.append(pool.submit(s.submit, request))
        # All parts of a request are queued at once.
        wait_until(
            lambda n=enqueued: s.num_enqueued_tasks > n,
            "the request is queued",
            timeout=WAIT,
            interval=0.001,
        )
    return first, futures


def assert_outputs_equal(
    actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]
) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])


# -- results and merging ----------------------------------------------------------------------


def test_single_request_returns_the_unbatched_result() -> None:
    model = FakeModel()
    with scheduler(model) as (s, _):
        x = rows(3)
        assert_outputs_equal(s.submit({"x": x}), compute({"x": x}))
    assert model.batch_sizes == [3]


def test_queued_requests_run_as_one_batch_and_get_their_own_rows() -> None:
    model = FakeModel(hold_first=True)
    with scheduler(model) as (s, pool):
        inputs = [rows(n, start=10 * i) for i, n in enumerate([1, 2, 3, 1])]
        first, futures = hold_then_queue(s, model, pool, [{"x": x} for x in inputs])
        model.release.set()
        first.result(WAIT)
        for x, future in zip(inputs, futures, strict=True):
            assert_outputs_equal(future.result(WAIT), compute({"x": x}))
    assert model.batch_sizes == [1, 7]
    np.testing.assert_array_equal(model.batches[1]["x"], np.concatenate(inputs))


def test_many_threads_results_identical_to_unbatched_and_merged() -> None:
    model = FakeModel()
    rng = np.random.default_rng(0)
    requests = [rng.standard_normal((int(rng.integers(1, 5)), 3)) for _ in range(200)]
    start = threading.Barrier(32)

    def client(x: np.ndarray) -> dict[str, np.ndarray]:
        return s.submit({"x": x})

    # A long timeout: a batch closes when full (16 rows) or when the timeout ends, so threads
    # released together by the barrier are bound to share batches.
    with scheduler(model, max_batch_size=16, batch_timeout_micros=200_000) as (s, pool):
        warm = [pool.submit(start.wait) for _ in range(32)]
        for f in warm:
            f.result(WAIT)
        futures = [pool.submit(client, x) for x in requests]
        for x, future in zip(requests, futures, strict=True):
            assert_outputs_equal(future.result(WAIT), compute({"x": x}))
    sizes = model.batch_sizes
    assert sum(sizes) == sum(len(x) for x in requests)
    assert max(sizes) <= 16
    assert len(sizes) < len(requests)  # merging happened


def test_timeout_zero_still_merges_while_the_thread_is_busy() -> None:
    model = FakeModel(hold_first=True)
    with scheduler(model, batch_timeout_micros=0) as (s, pool):
        first, futures = hold_then_queue(s, model, pool, [{"x": rows(1)} for _ in range(5)])
        model.release.set()
        for f in [first, *futures]:
            f.result(WAIT)
    assert model.batch_sizes == [1, 5]


def test_full_batches_close_at_max_batch_size() -> None:
    model = FakeModel(hold_first=True)
    with scheduler(model, max_batch_size=4) as (s, pool):
        first, futures = hold_then_queue(s, model, pool, [{"x": rows(2)} for _ in range(5)])
        model.release.set()
        for f in [first, *futures]:
            f.result(WAIT)
    assert model.batch_sizes == [1, 4, 4, 2]


def test_incompatible_requests_are_never_merged() -> None:
    model = FakeModel(hold_first=True)
    requests = [
        {"x": rows(1, width=3)},
        {"x": rows(1, width=4)},  # another non-batch shape
        {"x": rows(1, width=3).astype(np.float64)},  # another dtype
        {"x": rows(2, width=3)},
        {"x": rows(1, width=3), "z": rows(1)},  # other input names
    ]
    with scheduler(model) as (s, pool):
        first, futures = hold_then_queue(s, model, pool, requests)
        model.release.set()
        first.result(WAIT)
        for request, future in zip(requests, futures, strict=True):
            assert_outputs_equal(future.result(WAIT), compute(request))
    assert sorted(model.batch_sizes[1:]) == [1, 1, 1, 3]


def test_strings_of_different_widths_merge() -> None:
    def upper(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"u": np.char.upper(inputs["x"])}

    model = FakeModel(hold_first=True, fn=upper)
    short, long = np.array([b"ab"]), np.array([b"abcdef", b"x"])
    with scheduler(model) as (s, pool):
        first, (f_short, f_long) = hold_then_queue(
            s, model, pool, [{"x": short}, {"x": long}], hold_with={"x": np.array([b"a"])}
        )
        model.release.set()
        first.result(WAIT)
        assert f_short.result(WAIT)["u"].tolist() == [b"AB"]
        assert f_long.result(WAIT)["u"].tolist() == [b"ABCDEF", b"X"]
    assert model.batch_sizes == [1, 3]


def test_zero_row_request() -> None:
    model = FakeModel()
    with scheduler(model, allowed_batch_sizes=(4, 64)) as (s, _):
        out = s.submit({"x": rows(0)})
    assert out["y"].shape == (0, 3)
    assert out["row_sum"].shape == (0,)


def test_schedulers_on_one_shared_pool_keep_their_requests_apart() -> None:
    model_a, model_b = FakeModel(), FakeModel()
    p = params(num_batch_threads=2, batch_timeout_micros=100_000)
    with (
        SharedBatchScheduler.from_parameters(p) as shared,
        ThreadPoolExecutor(max_workers=16) as pool,
    ):
        a = BatchScheduler(model_a, p, shared=shared)
        b = BatchScheduler(model_b, p, shared=shared)
        fa = [pool.submit(a.submit, {"x": rows(1, 100 + i)}) for i in range(20)]
        fb = [pool.submit(b.submit, {"x": rows(1, -100 - i)}) for i in range(20)]
        for i, f in enumerate(fa):
            assert_outputs_equal(f.result(WAIT), compute({"x": rows(1, 100 + i)}))
        for i, f in enumerate(fb):
            assert_outputs_equal(f.result(WAIT), compute({"x": rows(1, -100 - i)}))
        a.close()
        b.close()
    assert sum(model_a.batch_sizes) == sum(model_b.batch_sizes) == 20
    assert all((batch["x"] > 0).all() for batch in model_a.batches)
    assert all((batch["x"] < 0).all() for batch in model_b.batches)


# -- padding ----------------------------------------------------------------------------------


def test_batches_are_padded_to_allowed_sizes_with_the_last_requests_first_row() -> None:
    model = FakeModel(hold_first=True)
    requests = [rows(1, 0), rows(2, 100)]
    with scheduler(model, max_batch_size=8, allowed_batch_sizes=(2, 4, 8)) as (s, pool):
        first, futures = hold_then_queue(s, model, pool, [{"x": x} for x in requests])
        model.release.set()
        first.result(WAIT)
        for x, future in zip(requests, futures, strict=True):
            out = future.result(WAIT)
            assert_outputs_equal(out, compute({"x": x}))
    assert model.batch_sizes == [2, 4]  # 1 → 2 and 3 → 4: process_batch sees allowed sizes only
    merged = model.batches[1]["x"]
    np.testing.assert_array_equal(merged[3], requests[-1][0])
    np.testing.assert_array_equal(model.batches[0]["x"][1], model.batches[0]["x"][0])


def test_padding_metrics() -> None:
    model = FakeModel()
    metrics = RecordingMetrics()
    p = params(max_batch_size=8, allowed_batch_sizes=(4, 8))
    with BatchScheduler(model, p, metrics=metrics) as s:
        s.submit({"x": rows(3), "z": rows(3)})
    assert metrics.input_sizes == [3, 3]  # once per input tensor, as upstream
    assert metrics.processed == [4]
    assert metrics.padding == [(1, 4)]
    assert metrics.runs == 1
    assert len(metrics.latencies) == 1
    assert metrics.latencies[0] >= 0


def test_variable_length_inputs_are_padded_with_each_tensors_first_element() -> None:
    model = FakeModel(hold_first=True)
    short = np.array([[7, 8]], dtype=np.int32)
    long = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    with scheduler(model, pad_variable_length_inputs=True) as (s, pool):
        first, (f_short, f_long) = hold_then_queue(s, model, pool, [{"x": short}, {"x": long}])
        model.release.set()
        first.result(WAIT)
        assert_outputs_equal(f_short.result(WAIT), compute({"x": np.array([[7, 8, 7]])}))
        assert_outputs_equal(f_long.result(WAIT), compute({"x": long}))
    np.testing.assert_array_equal(model.batches[1]["x"], [[7, 8, 7], [1, 2, 3], [4, 5, 6]])


def test_variable_length_padding_refuses_rank_above_six() -> None:
    with (
        scheduler(FakeModel(), pad_variable_length_inputs=True) as (s, _),
        pytest.raises(ServingStatusError) as info,
    ):
        s.submit({"x": np.zeros((1,) * 7)})
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message == "Only tensors with rank from 1 to 6 can be padded."


# -- errors -----------------------------------------------------------------------------------


def failing_on_negative(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if (inputs["x"] < 0).any():
        raise ServingStatusError(Code.INVALID_ARGUMENT, "negative input")
    return compute(inputs)


def test_a_failing_batch_fails_each_of_its_requests_and_nothing_else() -> None:
    model = FakeModel(hold_first=True, fn=failing_on_negative)
    with scheduler(model, max_batch_size=2) as (s, pool):
        requests = [rows(1, -5), rows(1, 1), rows(1, 2), rows(1, 3)]  # batches: [-5, 1], [2, 3]
        first, futures = hold_then_queue(s, model, pool, [{"x": x} for x in requests])
        model.release.set()
        with pytest.raises(ServingStatusError):
            first.result(WAIT)
        for future in futures[:2]:
            error = future.exception(WAIT)
            assert isinstance(error, ServingStatusError)
            assert (error.code, error.message) == (Code.INVALID_ARGUMENT, "negative input")
        for x, future in zip(requests[2:], futures[2:], strict=True):
            assert_outputs_equal(future.result(WAIT), compute({"x": x}))
        assert_outputs_equal(s.submit({"x": rows(1, 9)}), compute({"x": rows(1, 9)}))
    assert model.batch_sizes == [1, 2, 2, 1]


def test_other_exceptions_become_unknown_with_the_cause_chained() -> None:
    def broken(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise RuntimeError("kaput")

    with (
        scheduler(FakeModel(fn=broken)) as (s, _),
        pytest.raises(ServingStatusError) as info,
    ):
        s.submit({"x": rows(1)})
    assert (info.value.code, info.value.message) == (Code.UNKNOWN, "kaput")
    assert isinstance(info.value.__cause__, ServingStatusError)
    assert isinstance(info.value.__cause__.__cause__, RuntimeError)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (np.float32(1), "Batched output tensor has 0 dimensions"),
        (
            np.zeros(5),
            "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension "
            "sizes of the input tensors",
        ),
    ],
)
def test_outputs_without_the_batch_dimension_are_failed_precondition(
    output: np.ndarray, message: str
) -> None:
    with (
        scheduler(FakeModel(fn=lambda inputs: {"y": output})) as (s, _),
        pytest.raises(ServingStatusError) as info,
    ):
        s.submit({"x": rows(2)})
    assert (info.value.code, info.value.message) == (Code.FAILED_PRECONDITION, message)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "Batching Run() must have at least one input tensor"),
        ({"x": np.float32(1)}, "Batching Run() input tensors must have at least one dimension"),
        (
            {"x": rows(1), "z": rows(2)},
            "Batching Run() input tensors must have equal 0th-dimension size",
        ),
    ],
)
def test_unbatchable_requests_are_invalid_argument(
    inputs: dict[str, np.ndarray], message: str
) -> None:
    model = FakeModel()
    with (
        scheduler(model) as (s, _),
        pytest.raises(ServingStatusError) as info,
    ):
        s.submit(inputs)
    assert (info.value.code, info.value.message) == (Code.INVALID_ARGUMENT, message)
    assert model.batches == []


def test_requests_that_expire_in_the_queue_are_not_run() -> None:
    model = FakeModel(hold_first=True)
    with scheduler(model) as (s, pool):
        first = pool.submit(s.submit, {"x": rows(1)})
        assert model.holding.wait(WAIT)
        expired = pool.submit(s.submit, {"x": rows(1)}, timeout=0.0)
        wait_until(
            lambda: s.num_enqueued_tasks == 1, "the request is queued", timeout=WAIT, interval=0.001
        )
        model.release.set()
        first.result(WAIT)
        error = expired.exception(WAIT)
    assert isinstance(error, ServingStatusError)
    assert error.code is Code.RESOURCE_EXHAUSTED
    assert error.message == "Run() timeout exceeded while waiting in batching queue"
    assert model.batch_sizes == [1]


def test_a_batch_runs_if_any_of_its_requests_is_still_in_time() -> None:
    model = FakeModel(hold_first=True)
    with scheduler(model) as (s, pool):
        first = pool.submit(s.submit, {"x": rows(1)})
        assert model.holding.wait(WAIT)
        expired = pool.submit(s.submit, {"x": rows(1, 10)}, timeout=0.0)
        wait_until(
            lambda: s.num_enqueued_tasks == 1, "the request is queued", timeout=WAIT, interval=0.001
        )
        in_time = pool.submit(s.submit, {"x": rows(1, 20)})
        wait_until(
            lambda: s.num_enqueued_tasks == 2, "the request is queued", timeout=WAIT, interval=0.001
        )
        model.release.set()
        first.result(WAIT)
        assert_outputs_equal(expired.result(WAIT), compute({"x": rows(1, 10)}))
        assert_outputs_equal(in_time.result(WAIT), compute({"x": rows(1, 20)}))
    assert model.batch_sizes == [1, 2]


# -- queue limits -----------------------------------------------------------------------------


def test_full_queue_is_unavailable_with_upstream_text() -> None:
    model = FakeModel(hold_first=True)
    with scheduler(model, max_batch_size=2, max_enqueued_batches=2) as (s, pool):
        # Behind the held batch: [2 rows] (closed), [1 row] (open) — two batches, the limit.
        first, futures = hold_then_queue(s, model, pool, [{"x": rows(2)}, {"x": rows(1)}])
        fits = pool.submit(s.submit, {"x": rows(1)})  # still fits the open batch
        wait_until(
            lambda: s.num_enqueued_tasks == 3, "the request is queued", timeout=WAIT, interval=0.001
        )
        with pytest.raises(ServingStatusError) as info:
            s.submit({"x": rows(1)})
        model.release.set()
        for f in [first, *futures, fits]:
            f.result(WAIT)
    assert info.value.code is Code.UNAVAILABLE
    assert QUEUE_FULL_MESSAGE == CONTRACT_FULL_TEXT
    assert info.value.message == (
        f"{CONTRACT_FULL_TEXT}; currently 2 batches enqueued and max_enqueued_batches is 2"
    )
    assert model.batch_sizes == [1, 2, 2]


def test_oversized_request_is_invalid_argument_without_splitting() -> None:
    model = FakeModel()
    with (
        scheduler(model, max_batch_size=4) as (s, _),
        pytest.raises(ServingStatusError) as info,
    ):
        s.submit({"x": rows(5)})
    assert (info.value.code, info.value.message) == (
        Code.INVALID_ARGUMENT,
        "Task size 5 is larger than maximum input batch size 4",
    )
    assert model.batches == []


def test_large_batch_splitting_runs_parts_and_reassembles_them() -> None:
    model = FakeModel()
    overrides = {
        "max_batch_size": 8,
        "enable_large_batch_splitting": True,
        "max_execution_batch_size": 3,
        "allowed_batch_sizes": (2, 4, 8),
    }
    with scheduler(model, **overrides) as (s, _):
        x = rows(7)
        assert_outputs_equal(s.submit({"x": x}), compute({"x": x}))
        # Splitting does not lift max_batch_size, as upstream.
        with pytest.raises(ServingStatusError) as info:
            s.submit({"x": rows(9)})
    assert info.value.message == "Task size 9 is larger than maximum input batch size 8"
    assert model.batch_sizes == [4, 4, 2]  # parts of 3, 3, 1 rows, each padded
    np.testing.assert_array_equal(np.concatenate([b["x"][:3] for b in model.batches])[:7], x)


def test_split_request_fills_the_open_batch_first() -> None:
    model = FakeModel(hold_first=True)
    overrides = {
        "max_batch_size": 8,
        "enable_large_batch_splitting": True,
        "max_execution_batch_size": 4,
    }
    with scheduler(model, **overrides) as (s, pool):
        small, big = rows(1, 100), rows(6)
        first, (f_small, f_big) = hold_then_queue(s, model, pool, [{"x": small}, {"x": big}])
        wait_until(
            lambda: s.num_enqueued_tasks == 3, "the parts are queued", timeout=WAIT, interval=0.001
        )
        model.release.set()
        first.result(WAIT)
        assert_outputs_equal(f_small.result(WAIT), compute({"x": small}))
        assert_outputs_equal(f_big.result(WAIT), compute({"x": big}))
    assert model.batch_sizes == [1, 4, 3]


def test_full_queue_with_splitting_names_the_capacity() -> None:
    model = FakeModel(hold_first=True)
    overrides = {
        "max_batch_size": 8,
        "enable_large_batch_splitting": True,
        "max_execution_batch_size": 2,
        "max_enqueued_batches": 2,
    }
    with scheduler(model, **overrides) as (s, pool):
        first, futures = hold_then_queue(s, model, pool, [{"x": rows(3)}])
        with pytest.raises(ServingStatusError) as info:
            s.submit({"x": rows(2)})
        model.release.set()
        for f in [first, *futures]:
            f.result(WAIT)
    assert info.value.code is Code.UNAVAILABLE
    assert info.value.message == (
        f"{CONTRACT_FULL_TEXT}; task size is 2 but scheduling capacity is only 1 "
        "(num_enqueued_batches=2, max_enqueued_batches=2, open_batch_size=1, "
        "max_execution_batch_size=2)"
    )


# -- close ------------------------------------------------------------------------------------


def test_close_runs_queued_requests_then_refuses_new_ones() -> None:
    model = FakeModel()
    pool = ThreadPoolExecutor(max_workers=8)
    # A timeout far beyond the test: only close() can make these batches due.
    s = BatchScheduler(
        model, params(batch_timeout_micros=3_600_000_000, thread_pool_name="close_test")
    )
    futures = [pool.submit(s.submit, {"x": rows(1, i)}) for i in range(5)]
    wait_until(
        lambda: s.num_enqueued_tasks == 5, "the requests are queued", timeout=WAIT, interval=0.001
    )
    s.close()
    assert model.completed == 1  # run before close() returned
    assert model.batch_sizes == [5]
    for i, f in enumerate(futures):
        assert_outputs_equal(f.result(WAIT), compute({"x": rows(1, i)}))
    assert not [t for t in threading.enumerate() if t.name.startswith("close_test_")]
    with pytest.raises(ServingStatusError) as info:
        s.submit({"x": rows(1)})
    assert (info.value.code, info.value.message) == (Code.UNAVAILABLE, QUEUE_CLOSED_MESSAGE)
    s.close()  # idempotent
    pool.shutdown()


def test_close_waits_for_the_running_batch_and_leaves_the_shared_pool_running() -> None:
    model = FakeModel(hold_first=True)
    other_model = FakeModel()
    p = params()
    with SharedBatchScheduler.from_parameters(p) as shared, ThreadPoolExecutor(4) as pool:
        s = BatchScheduler(model, p, shared=shared)
        other = BatchScheduler(other_model, p, shared=shared)
        running = pool.submit(s.submit, {"x": rows(1)})
        assert model.holding.wait(WAIT)
        closing = pool.submit(s.close)
        wait_until(lambda: s.closed, "close() has begun", timeout=WAIT, interval=0.001)
        with pytest.raises(ServingStatusError) as info:
            s.submit({"x": rows(1)})
        assert info.value.code is Code.UNAVAILABLE
        assert not closing.done()  # the held batch is still running
        model.release.set()
        closing.result(WAIT)
        assert model.completed == 1  # the batch ran to its end before close() returned
        running.result(WAIT)
        assert_outputs_equal(other.submit({"x": rows(2)}), compute({"x": rows(2)}))
        other.close()
