"""``--rest_api_timeout_in_ms`` inside the REST handler, with a fake core whose model runs until
the test lets it finish: what happens to the run, its servable handle and the threads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tests.helpers.waiting import wait_until
from tfserve_nb.model_server.rest.handler import HttpRestApiHandler
from tfserve_nb.model_server.server_core import ServerCoreOptions
from tfserve_nb.protocol.signature import PREDICT_METHOD_NAME, Signature, TensorSpec

SIGNATURE = Signature(
    "serving_default",
    PREDICT_METHOD_NAME,
    {"x": TensorSpec("x", "DT_FLOAT", (None, 1), "x:0")},
    {"y": TensorSpec("y", "DT_FLOAT", (None, 1), "y:0")},
)
BODY = b'{"instances": [[1.0]]}'


class BlockingServable:
    """Echoes ``x`` as ``y`` once :attr:`release` is set; records the threads it ran on."""

    signatures = {"serving_default": SIGNATURE}

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[str] = []

    def run(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], aliases: Sequence[str]
    ) -> dict[str, np.ndarray]:
        self.threads.append(threading.current_thread().name)
        self.release.wait()
        return {"y": inputs["x"]}


class FakeCore:
    """Hands out the one servable as version 1 and counts the handles held."""

    options = ServerCoreOptions()

    def __init__(self, servable: BlockingServable) -> None:
        self._servable = servable
        self.handles = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def servable(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> Iterator[tuple[int, BlockingServable]]:
        with self._lock:
            self.handles += 1
        try:
            yield 1, self._servable
        finally:
            with self._lock:
                self.handles -= 1


def predict(handler: HttpRestApiHandler) -> tuple[int, dict]:
    reply = handler.process("POST", "/v1/models/m:predict", {}, BODY)
    return reply.status, json.loads(reply.body)


def make(
    timeout_in_ms: int, num_threads: int
) -> tuple[HttpRestApiHandler, FakeCore, BlockingServable]:
    """A handler with the given deadline and pool size over a fake core."""
    servable = BlockingServable()
    core = FakeCore(servable)
    handler = HttpRestApiHandler(
        core,  # type: ignore[arg-type]
        timeout_in_ms=timeout_in_ms,
        num_threads=num_threads,
    )
    return handler, core, servable


def test_a_run_past_the_deadline_answers_504_and_keeps_its_handle_until_it_ends():
    handler, core, servable = make(50, 2)
    try:
        assert predict(handler) == (504, {"error": "Timed out waiting for notification"})
        assert core.handles == 1  # the run goes on: its version must not be unloaded
        servable.release.set()
        wait_until(lambda: core.handles == 0, "the timed-out run to release its handle")
        assert predict(handler) == (200, {"predictions": [[1.0]]})
    finally:
        servable.release.set()
        handler.close()


def test_runs_queued_behind_a_full_pool_are_dropped_and_threads_stay_bounded():
    handler, core, servable = make(50, 1)
    try:
        for _ in range(5):
            assert predict(handler)[0] == 504
        assert servable.threads == ["rest-inference_0"]  # the queued ones never ran
        assert core.handles == 1  # ... and gave their handles back
        names = [t.name for t in threading.enumerate() if t.name.startswith("rest-inference")]
        assert names == ["rest-inference_0"]
    finally:
        servable.release.set()
        handler.close()
    wait_until(lambda: core.handles == 0, "the running request to finish")


def test_without_a_deadline_the_model_runs_on_the_request_thread():
    handler, core, servable = make(0, 1)
    servable.release.set()
    try:
        assert predict(handler) == (200, {"predictions": [[1.0]]})
        assert servable.threads == [threading.current_thread().name]
        assert core.handles == 0
    finally:
        handler.close()


# --- process_async: the HTTP server's entry (the whole request on one pool thread) ------------


def predict_async(handler: HttpRestApiHandler, requests: int = 1) -> list[tuple[int, dict]]:
    """``requests`` concurrent predicts through :meth:`process_async` on a fresh event loop."""

    async def all_of_them() -> list[tuple[int, dict]]:
        replies = await asyncio.gather(
            *(
                handler.process_async("POST", "/v1/models/m:predict", {}, BODY)
                for _ in range(requests)
            )
        )
        return [(reply.status, json.loads(reply.body)) for reply in replies]

    return asyncio.run(all_of_them())


def test_async_a_run_past_the_deadline_answers_504_and_keeps_its_handle_until_it_ends():
    handler, core, servable = make(50, 2)
    try:
        assert predict_async(handler) == [(504, {"error": "Timed out waiting for notification"})]
        assert core.handles == 1  # the run goes on: its version must not be unloaded
        servable.release.set()
        wait_until(lambda: core.handles == 0, "the timed-out run to release its handle")
        assert predict_async(handler) == [(200, {"predictions": [[1.0]]})]
        assert all(name.startswith("rest-inference") for name in servable.threads)
    finally:
        servable.release.set()
        handler.close()


def test_async_requests_queued_behind_a_full_pool_are_dropped_and_threads_stay_bounded():
    handler, core, servable = make(50, 1)
    try:
        replies = predict_async(handler, 5)
        assert [status for status, _ in replies] == [504] * 5
        assert servable.threads == ["rest-inference_0"]  # the queued ones never ran
        assert core.handles == 1  # ... and took no handle
        names = [t.name for t in threading.enumerate() if t.name.startswith("rest-inference")]
        assert names == ["rest-inference_0"]
    finally:
        servable.release.set()
        handler.close()
    wait_until(lambda: core.handles == 0, "the running request to finish")


def test_async_answers_in_time_are_the_models_and_without_a_deadline_too():
    for timeout_in_ms in (30000, 0):
        handler, core, servable = make(timeout_in_ms, 2)
        servable.release.set()
        try:
            assert predict_async(handler, 3) == [(200, {"predictions": [[1.0]]})] * 3
            assert all(name.startswith("rest-inference") for name in servable.threads)
            assert core.handles == 0
        finally:
            handler.close()


def test_async_after_close_answers_unavailable():
    handler, _, _ = make(50, 1)
    handler.close()
    assert predict_async(handler) == [(503, {"error": "The server is shutting down"})]
