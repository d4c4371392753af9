"""Request batching, after TF Serving's ``SharedBatchScheduler`` and ``BatchingSession``.

Two classes, as upstream:

- :class:`SharedBatchScheduler` owns ``num_batch_threads`` batch threads. The model server makes
  one, from the batching parameters, and shares it between every model version, so the thread
  count bounds the whole server's batch concurrency.
- :class:`BatchScheduler` is one queue on it (upstream's ``AddQueue`` + ``BatchingSession``): the
  server core makes one per (model, version, signature), with the signature's run function as
  ``process_batch``, and closes it when the version unloads. Request threads call
  :meth:`BatchScheduler.submit`, which blocks until the request's rows have been run.

How a request travels (upstream semantics, upstream error texts):

1. ``submit`` checks the request: at least one tensor, none scalar, equal 0th dimensions
   (INVALID_ARGUMENT ``Batching Run() ...``), at most ``max_batch_size`` rows (INVALID_ARGUMENT
   ``Task size N is larger than maximum input batch size M``).
2. It joins the open batch of its queue. Requests whose tensors cannot be concatenated never
   share a batch: each scheduler keeps one internal queue per input structure (names, dtypes and
   non-batch shapes; only ranks when ``pad_variable_length_inputs``). Upstream would merge them
   and fail the whole batch. If the request does not fit, the open batch is closed and a new one
   opened, unless the queue already holds ``max_enqueued_batches`` batches (the open one counted):
   then UNAVAILABLE ``The batch scheduling queue to which this task was submitted is full; ...``.
   With ``enable_large_batch_splitting`` a request that does not fit is cut to fill the open
   batch and then whole batches of ``max_execution_batch_size`` rows; its parts are run wherever
   they land and their outputs concatenated back.
3. A batch thread takes a batch when it is full, when its oldest task has waited
   ``batch_timeout_micros``, or when its scheduler closes; queues are served round-robin. With a
   timeout of 0 a batch runs as soon as a thread is free, so batches grow only while every batch
   thread is busy.
4. The thread concatenates each input once (``np.concatenate``), pads it up to the first
   ``allowed_batch_sizes`` entry that is large enough by repeating the first row of the last
   request, calls ``process_batch`` once, checks that every output has the padded 0th dimension
   and hands each request its rows (views into the batched output).
5. If anything fails, every request of the batch gets the error; other batches are unaffected.
   A batch whose requests all passed their ``submit(timeout=...)`` while queued is not run:
   RESOURCE_EXHAUSTED ``Run() timeout exceeded while waiting in batching queue``.

``pad_variable_length_inputs`` pads each request's tensors in every non-batch dimension up to the
largest in the batch. As upstream (``AddPadding`` in ``batching_util.cc``), the padding value is the
tensor's own first element, not zero; ranks above 6 are refused (INVALID_ARGUMENT ``Only tensors
with rank from 1 to 6 can be padded.``) and an empty tensor that needs padding fails its batch.
Outputs are not un-padded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np

from ..core.status import Code, ServingStatusError, invalid_argument
from .batching_parameters import DEFAULT_THREAD_POOL_NAME, BatchingParameters
from .batching_util import pad_to_common_shape, round_to_allowed, split_sizes
from .metrics import BatchingMetrics

__all__ = [
    "QUEUE_CLOSED_MESSAGE",
    "QUEUE_FULL_MESSAGE",
    "BatchScheduler",
    "ProcessBatch",
    "SharedBatchScheduler",
]

ProcessBatch = Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]]
"""Runs one batch: input name → tensor with the batch in dimension 0, to output name → tensor
with the same 0th dimension. Called from batch threads, concurrently: must be thread-safe. Must not
modify its inputs (a lone request's arrays are passed through uncopied); should raise
``ServingStatusError`` with the right code."""

QUEUE_FULL_MESSAGE = "The batch scheduling queue to which this task was submitted is full"
"""Start of the UNAVAILABLE message for a full queue; upstream appends the queue's counts."""

QUEUE_CLOSED_MESSAGE = "The batch scheduling queue to which this task was submitted is closed"
"""UNAVAILABLE message for a request that arrives after its scheduler closed (not upstream's:
upstream's manager stops handing out an unloading version before its queue closes)."""

_TIMEOUT_MESSAGE = "Run() timeout exceeded while waiting in batching queue"
_MAX_PADDABLE_RANK = 6


class _Request:
    """What one ``submit`` call waits for: one result per part (one unless split)."""

    __slots__ = ("deadline", "done", "error", "remaining", "results")

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        # Acquired here, released by the batch thread that completes the last part: a one-shot
        # event that costs one lock.
        self.done = threading.Lock()
        self.done.acquire()
        self.error: ServingStatusError | None = None
        self.results: list[dict[str, np.ndarray] | None] = []
        self.remaining = 0


class _Task:
    """A request, or one part of a split request, waiting in a batch."""

    __slots__ = ("enqueue_time", "inputs", "part", "request", "size")

    def __init__(
        self,
        request: _Request,
        part: int,
        inputs: Mapping[str, np.ndarray],
        size: int,
        enqueue_time: float,
    ) -> None:
        self.request = request
        self.part = part
        self.inputs = inputs
        self.size = size
        self.enqueue_time = enqueue_time


class _Batch:
    """Tasks to be run together; ``start`` is when the first one joined."""

    __slots__ = ("size", "start", "tasks")

    def __init__(self) -> None:
        self.tasks: list[_Task] = []
        self.size = 0
        self.start = 0.0


class _Queue:
    """Batches of one scheduler and one input structure; the last batch is the open one.

    Guarded by the shared scheduler's lock. Dropped as soon as it holds no task.
    """

    __slots__ = ("batches", "key", "owner")

    def __init__(self, owner: BatchScheduler, key: tuple[Any, ...]) -> None:
        self.owner = owner
        self.key = key
        self.batches: deque[_Batch] = deque([_Batch()])

    def open_batch_due(self, now: float, draining: bool) -> bool:
        open_batch = self.batches[-1]
        return bool(open_batch.tasks) and (
            draining
            or open_batch.size >= self.owner._execution_limit
            or now >= open_batch.start + self.owner._timeout
        )

    def schedulable(self, now: float, draining: bool) -> bool:
        return len(self.batches) > 1 or self.open_batch_due(now, draining)

    def take_batch(self, now: float, draining: bool) -> _Batch | None:
        if len(self.batches) > 1:
            return self.batches.popleft()
        if self.open_batch_due(now, draining):
            batch = self.batches[0]
            self.batches[0] = _Batch()
            return batch
        return None

    def empty(self) -> bool:
        return len(self.batches) == 1 and not self.batches[0].tasks


class SharedBatchScheduler:
    """A fixed pool of batch threads that runs the batches of any number of :class:`BatchScheduler`.

    Threads start in the constructor and are daemons. Thread-safe. :meth:`close` stops accepting
    work for every scheduler on the pool, runs what is queued and joins the threads.
    """

    def __init__(
        self, num_batch_threads: int, thread_pool_name: str = DEFAULT_THREAD_POOL_NAME
    ) -> None:
        if num_batch_threads < 1:
            raise invalid_argument(f"num_batch_threads must be positive; was {num_batch_threads}")
        self.thread_pool_name = thread_pool_name
        self._cond = threading.Condition(threading.Lock())
        self._queues: list[_Queue] = []
        self._next_queue = 0
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._thread_logic, name=f"{thread_pool_name}_{i}", daemon=True)
            for i in range(num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    def from_parameters(cls, parameters: BatchingParameters) -> SharedBatchScheduler:
        """The pool the parameters ask for (``num_batch_threads``, ``thread_pool_name``)."""
        return cls(parameters.num_batch_threads, parameters.thread_pool_name)

    def close(self) -> None:
        """Refuse new requests (UNAVAILABLE), run every queued batch, then join the threads.

        Idempotent. Must not be called from a batch thread (``process_batch``).
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> SharedBatchScheduler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _thread_logic(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    now = time.monotonic()
                    work = self._take_batch_locked(now)
                    if work is not None:
                        break
                    if self._stopping and not self._queues:
                        return
                    cond.wait(self._wait_timeout_locked(now))
            owner, batch = work
            owner._run_batch(batch)

    def _take_batch_locked(self, now: float) -> tuple[BatchScheduler, _Batch] | None:
        """The next due batch, visiting queues round-robin, or ``None``."""
        queues = self._queues
        count = len(queues)
        for i in range(count):
            index = (self._next_queue + i) % count
            queue = queues[index]
            owner = queue.owner
            batch = queue.take_batch(now, owner._closed or self._stopping)
            if batch is None:
                continue
            if queue.empty():
                del queues[index]
                del owner._queues[queue.key]
            else:
                index += 1
            self._next_queue = index if index < len(queues) else 0
            owner._num_enqueued_tasks -= len(batch.tasks)
            owner._in_flight += 1
            if any(q.schedulable(now, q.owner._closed or self._stopping) for q in queues):
                self._cond.notify()
            return owner, batch
        return None

    def _wait_timeout_locked(self, now: float) -> float | None:
        """Seconds until the earliest open batch times out; ``None`` if no batch is open."""
        due = [q.batches[-1].start + q.owner._timeout for q in self._queues if q.batches[-1].tasks]
        return max(0.0, min(due) - now) if due else None


class BatchScheduler:
    """Merges concurrent requests along dimension 0 and runs them with one ``process_batch`` call.

    One per (model, version, signature): requests of different schedulers are never merged.
    ``shared`` is the server's :class:`SharedBatchScheduler`; without one the scheduler makes
    and owns a private pool of ``parameters.num_batch_threads`` threads (upstream's
    ``BasicBatchScheduler``). ``metrics`` receives upstream's batching measurements.

    Thread-safe: :meth:`submit` is called from any number of request threads. ``process_batch``
    runs on batch threads and must not call :meth:`submit` or :meth:`close`.
    """

    def __init__(
        self,
        process_batch: ProcessBatch,
        parameters: BatchingParameters,
        *,
        shared: SharedBatchScheduler | None = None,
        metrics: BatchingMetrics | None = None,
    ) -> None:
        self.parameters = parameters
        self._process_batch = process_batch
        self._metrics = metrics
        self._owns_shared = shared is None
        self._shared = (
            shared if shared is not None else SharedBatchScheduler.from_parameters(parameters)
        )
        self._cond = self._shared._cond
        self._max_batch_size = parameters.max_batch_size
        self._execution_limit = parameters.execution_batch_size_limit
        self._timeout = parameters.batch_timeout_micros / 1e6
        self._max_enqueued_batches = parameters.max_enqueued_batches
        self._split = parameters.enable_large_batch_splitting
        self._allowed_batch_sizes = parameters.allowed_batch_sizes
        self._pad_variable = parameters.pad_variable_length_inputs
        # Guarded by self._cond:
        self._queues: dict[tuple[Any, ...], _Queue] = {}
        self._num_enqueued_tasks = 0
        self._in_flight = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called (requests are refused from then on)."""
        with self._cond:
            return self._closed

    @property
    def num_enqueued_tasks(self) -> int:
        """Tasks accepted and not yet taken by a batch thread (a split request counts its parts)."""
        with self._cond:
            return self._num_enqueued_tasks

    def submit(
        self, inputs: Mapping[str, np.ndarray], *, timeout: float | None = None
    ) -> dict[str, np.ndarray]:
        """Run ``inputs`` (name → array, batch in dimension 0) as part of a batch; return its rows
        of every output of ``process_batch``.

        Blocks until the batch holding the request has run. ``timeout`` (seconds, e.g. a gRPC
        deadline's remainder) only lets a batch be skipped when all of its requests expired in
        the queue. Raises :class:`ServingStatusError` with upstream's code and text (see the
        module docstring); an exception from ``process_batch`` that is not a
        ``ServingStatusError`` becomes UNKNOWN with its ``str`` as message, chained.
        The input arrays must not be modified until ``submit`` returns.
        """
        size = self._batch_size_of(inputs)
        if size > self._max_batch_size:
            raise invalid_argument(
                f"Task size {size} is larger than maximum input batch size {self._max_batch_size}"
            )
        key = self._key_of(inputs)
        request = _Request(None if timeout is None else time.monotonic() + timeout)
        with self._cond:
            if self._closed or self._shared._stopping:
                raise ServingStatusError(Code.UNAVAILABLE, QUEUE_CLOSED_MESSAGE)
            queue = self._queues.get(key)
            self._check_capacity_locked(queue, size)
            if queue is None:
                queue = self._queues[key] = _Queue(self, key)
                self._shared._queues.append(queue)
            now = time.monotonic()
            opened = self._enqueue_locked(queue, request, inputs, size, now)
            if opened or queue.schedulable(now, False):
                self._cond.notify()
        request.done.acquire()
        if request.error is not None:
            raise ServingStatusError(request.error.code, request.error.message) from request.error
        results = cast("list[dict[str, np.ndarray]]", request.results)
        if len(results) == 1:
            return results[0]
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    def close(self) -> None:
        """Refuse new requests (UNAVAILABLE), run every queued one, wait for running batches.

        Called when the version unloads. Idempotent. If the scheduler made its own pool, its
        threads are joined too. Must not be called from ``process_batch``.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._num_enqueued_tasks == 0 and self._in_flight == 0)
        if self._owns_shared:
            self._shared.close()

    def __enter__(self) -> BatchScheduler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- request threads ------------------------------------------------------------------------

    def _batch_size_of(self, inputs: Mapping[str, np.ndarray]) -> int:
        """Upstream's ``ComputeInputSize``: the shared 0th-dimension size, recorded per tensor."""
        if not inputs:
            raise invalid_argument("Batching Run() must have at least one input tensor")
        size = -1
        for array in inputs.values():
            if array.ndim == 0:
                raise invalid_argument(
                    "Batching Run() input tensors must have at least one dimension"
                )
            if size < 0:
                size = array.shape[0]
            elif array.shape[0] != size:
                raise invalid_argument(
                    "Batching Run() input tensors must have equal 0th-dimension size"
                )
        if self._metrics is not None:
            for _ in inputs:
                self._metrics.record_input_batch_size(size)
        return size

    def _key_of(self, inputs: Mapping[str, np.ndarray]) -> tuple[Any, ...]:
        """What requests must share to be merged: names, dtypes, non-batch shapes (or ranks).

        Byte and unicode strings of different widths concatenate, so only their kind counts.
        """
        parts = []
        for name, array in inputs.items():
            dtype = array.dtype
            if self._pad_variable:
                if array.ndim > _MAX_PADDABLE_RANK:
                    raise invalid_argument("Only tensors with rank from 1 to 6 can be padded.")
                shape: object = array.ndim
            else:
                shape = array.shape[1:]
            parts.append((name, dtype.kind if dtype.kind in "SU" else dtype, shape))
        return tuple(sorted(parts))  # names are unique: only they are compared

    def _check_capacity_locked(self, queue: _Queue | None, size: int) -> None:
        """Upstream's ``ValidateBatchTaskQueueCapacity``, texts included."""
        num_batches = len(queue.batches) if queue is not None else 1
        open_size = queue.batches[-1].size if queue is not None else 0
        limit = self._execution_limit
        if self._split:
            capacity = (self._max_enqueued_batches - num_batches) * limit + (limit - open_size)
            if size > capacity:
                raise ServingStatusError(
                    Code.UNAVAILABLE,
                    f"{QUEUE_FULL_MESSAGE}; task size is {size} but scheduling capacity is only "
                    f"{capacity} (num_enqueued_batches={num_batches}, max_enqueued_batches="
                    f"{self._max_enqueued_batches}, open_batch_size={open_size}, "
                    f"max_execution_batch_size={limit})",
                )
        elif open_size + size > limit and num_batches >= self._max_enqueued_batches:
            raise ServingStatusError(
                Code.UNAVAILABLE,
                f"{QUEUE_FULL_MESSAGE}; currently {num_batches} batches enqueued and "
                f"max_enqueued_batches is {self._max_enqueued_batches}",
            )

    def _enqueue_locked(
        self,
        queue: _Queue,
        request: _Request,
        inputs: Mapping[str, np.ndarray],
        size: int,
        now: float,
    ) -> bool:
        """Add the request (split if allowed and needed); return whether a batch was opened."""
        batches = queue.batches
        limit = self._execution_limit
        room = limit - batches[-1].size
        part_sizes = split_sizes(size, room, limit) if self._split and size > room else [size]
        request.results = [None] * len(part_sizes)
        request.remaining = len(part_sizes)
        opened = False
        offset = 0
        for part, part_size in enumerate(part_sizes):
            if len(part_sizes) == 1:
                part_inputs = inputs
            else:
                part_inputs = {n: a[offset : offset + part_size] for n, a in inputs.items()}
            offset += part_size
            batch = batches[-1]
            if batch.size + part_size > limit:
                batch = _Batch()
                batches.append(batch)
            if not batch.tasks:
                batch.start = now
                opened = True
            batch.tasks.append(_Task(request, part, part_inputs, part_size, now))
            batch.size += part_size
        self._num_enqueued_tasks += len(part_sizes)
        return opened

    # -- batch threads --------------------------------------------------------------------------

    def _run_batch(self, batch: _Batch) -> None:
        """Run one batch taken from a queue and complete its tasks, whatever happens."""
        tasks = batch.tasks
        error: ServingStatusError | None = None
        outputs: list[dict[str, np.ndarray]] = []
        try:
            now = time.monotonic()
            if self._metrics is not None:
                for task in tasks:
                    self._metrics.record_queuing_latency((now - task.enqueue_time) * 1e6)
            if all(t.request.deadline is not None and t.request.deadline <= now for t in tasks):
                error = ServingStatusError(Code.RESOURCE_EXHAUSTED, _TIMEOUT_MESSAGE)
            else:
                outputs = self._run_merged(tasks, batch.size)
        except ServingStatusError as e:
            error = e
        except Exception as e:
            error = ServingStatusError(Code.UNKNOWN, str(e))
            error.__cause__ = e
        finished = []
        with self._cond:
            self._in_flight -= 1
            for i, task in enumerate(tasks):
                request = task.request
                if error is not None:
                    if request.error is None:
                        request.error = error
                else:
                    request.results[task.part] = outputs[i]
                request.remaining -= 1
                if request.remaining == 0:
                    finished.append(request)
            if self._closed:
                self._cond.notify_all()
        for request in finished:
            request.done.release()

    def _run_merged(self, tasks: list[_Task], size: int) -> list[dict[str, np.ndarray]]:
        """Merge and pad the inputs, call ``process_batch``, split the outputs per task."""
        # Padding rows repeat the first row of the last task that has rows.
        source = next((i for i in range(len(tasks) - 1, -1, -1) if tasks[i].size), None)
        padded_size = size
        if source is not None:
            padded_size = round_to_allowed(self._allowed_batch_sizes, size)
        padding = padded_size - size
        if self._metrics is not None:
            self._metrics.record_padding_size(padding, padded_size)
            self._metrics.record_processed_batch_size(padded_size)
        merged: dict[str, np.ndarray] = {}
        for name in tasks[0].inputs:
            parts = [task.inputs[name] for task in tasks]
            if self._pad_variable and len(parts) > 1:
                parts = pad_to_common_shape(parts)
            if padding:
                row = parts[cast(int, source)][:1]
                parts.append(np.broadcast_to(row, (padding, *row.shape[1:])))
            merged[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        try:
            batched_outputs = self._process_batch(merged)
        finally:
            if self._metrics is not None:
                self._metrics.record_wrapped_run()
        results: list[dict[str, np.ndarray]] = [{} for _ in tasks]
        for name, value in batched_outputs.items():
            output = np.asarray(value)
            if output.ndim == 0:
                raise ServingStatusError(
                    Code.FAILED_PRECONDITION, "Batched output tensor has 0 dimensions"
                )
            if output.shape[0] != padded_size:
                raise ServingStatusError(
                    Code.FAILED_PRECONDITION,
                    "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                    "dimension sizes of the input tensors",
                )
            if len(tasks) == 1 and not padding:
                results[0][name] = output
                continue
            offset = 0
            for task, result in zip(tasks, results, strict=True):
                result[name] = output[offset : offset + task.size]
                offset += task.size
        return results
