"""Closed-loop clients: each sends a request, waits for the answer, sends the next.

The clients of one measurement run in :data:`CLIENT_PROCESSES` worker processes (a spawned
``multiprocessing`` pool the benchmark keeps for the whole run), never in the server's process
or the benchmark's own. Each worker runs its share of the clients as asyncio tasks on one event
loop: gRPC through one ``grpc.aio`` channel (HTTP/2 streams, as TF Serving clients share a
channel), HTTP/1.1 through one keep-alive connection per client. Requests are sent as prepared
bytes and answers are not decoded (only their status is checked), so the client costs the same
for every server measured; the benchmark checks each server's answers once, before loading it.

This module imports neither TensorFlow nor the package: a worker starts in a fraction of a
second.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

CLIENT_PROCESSES = 2
"""Worker processes the clients are spread over (the machine's cores, at the time of writing:
two; more processes than cores only adds context switches)."""

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
MAX_MESSAGE_BYTES = 2**31 - 1


@dataclass(frozen=True)
class Target:
    """Where requests go and what they are.

    ``protocol`` is ``"grpc"`` (``payload``: a serialized ``PredictRequest``) or ``"http"``
    (``payload``: a JSON body POSTed to ``path``).
    """

    protocol: str
    host: str
    port: int
    payload: bytes
    path: str = ""


@dataclass(frozen=True)
class Window:
    """When to measure: requests answered between ``start + warmup`` and
    ``start + warmup + duration`` (``time.time()`` seconds, the same clock in every process).
    Clients stop early once ``stop_file`` (if given) exists."""

    start: float
    warmup: float
    duration: float
    stop_file: str = ""

    @property
    def begin(self) -> float:
        return self.start + self.warmup

    @property
    def end(self) -> float:
        return self.begin + self.duration


@dataclass
class Tally:
    """What one worker saw in the window: latencies (seconds) of successful requests, and
    failures with their first message."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def merge(self, other: Tally) -> None:
        self.latencies.extend(other.latencies)
        if other.errors and not self.errors:
            self.first_error = other.first_error
        self.errors += other.errors


def run_clients(target: Target, clients: int, window: Window) -> Tally:
    """Run ``clients`` closed-loop clients against ``target`` until the window ends (the
    entry point of a worker process). Requests keep going through the warmup, untallied."""
    return asyncio.run(_run(target, clients, window))


def warm_up(seconds: float) -> None:
    """Import what the clients need and hold the worker for ``seconds`` (so that one such task
    per worker, given together, reaches every worker)."""
    import grpc  # noqa: F401

    time.sleep(seconds)


Send = Callable[[], Awaitable[str | None]]
"""One request; returns ``None`` on success, else what went wrong."""


async def _run(target: Target, clients: int, window: Window) -> Tally:
    tally = Tally()
    if target.protocol == "grpc":
        import grpc

        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        async with grpc.aio.insecure_channel(f"{target.host}:{target.port}", options) as channel:
            predict = channel.unary_unary(PREDICT_METHOD)  # bytes in, bytes out

            def grpc_sender() -> Send:
                async def send() -> str | None:
                    try:
                        await predict(target.payload, timeout=60)
                    except grpc.aio.AioRpcError as exc:
                        return f"{exc.code().name}: {exc.details()}"
                    return None

                return send

            await asyncio.gather(*(_client(grpc_sender(), window, tally) for _ in range(clients)))
    else:
        senders = [await _http_sender(target) for _ in range(clients)]
        await asyncio.gather(*(_client(send, window, tally) for send in senders))
    return tally


async def _client(send: Send, window: Window, tally: Tally) -> None:
    await asyncio.sleep(max(0.0, window.start - time.time()))
    while True:
        sent = time.time()
        if sent >= window.end or (window.stop_file and os.path.exists(window.stop_file)):
            return
        error = await send()
        done = time.time()
        if window.begin <= done <= window.end:
            if error is None:
                tally.latencies.append(done - sent)
            else:
                tally.errors += 1
                tally.first_error = tally.first_error or error


async def _http_sender(target: Target) -> Send:
    """A client on its own keep-alive connection (reopened if the server closes it)."""
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(target.payload)}\r\n\r\n"
    ).encode()
    request = head + target.payload
    connection: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send() -> str | None:
        if not connection:
            connection.append(await asyncio.open_connection(target.host, target.port))
        reader, writer = connection[0]
        try:
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            close = False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            body = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError) as exc:
            connection.clear()
            return f"connection: {exc!r}"
        if close:
            writer.close()
            connection.clear()
        status = status_line.split(b" ", 2)[1:2]
        if status != [b"200"]:
            return f"HTTP {status_line.decode(errors='replace').strip()}: {body[:200]!r}"
        return None

    return send
