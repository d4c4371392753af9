"""Puts :class:`~.handler.HttpRestApiHandler` on a socket.

The HTTP/1.1 server is uvicorn with the httptools parser (llhttp, Node.js's) on uvloop (libuv;
asyncio's own loop where uvloop is not installed, as on Windows), serving an ASGI app on its
own event loop in a daemon thread. The loop only moves bytes; each request runs on the
handler's inference pool (:meth:`~.handler.HttpRestApiHandler.process_async`):
one hand-off to a pool thread and back, as before (a request thread, then the pool), with the
deadline kept by the loop.

Chosen by measurement (digits model, batch-1 REST predicts, closed-loop clients, the servers
taking turns on one two-core machine) over the standard library's ``ThreadingHTTPServer``
(what was here), waitress and cheroot, in 2026-12: p50 at one client 0.96 ms against 0.99 ms
for ``ThreadingHTTPServer``, 1480 requests/s at 64 clients against 1100, p99 84 ms against
600 ms, a quarter less server CPU per request. In the same harness waitress was 1.4 times and
cheroot 1.6 times ``ThreadingHTTPServer``'s p50, at 0.97 and 0.84 times its requests/s (cheroot's
p99 1.3 s): both hand each request from a loop thread to a worker thread. uvicorn on h11 was
1.2 times slower than on httptools; on asyncio's loop instead of uvloop, 7 % slower at one
client. The thread-per-connection server also spent a thread per idle connection.

What the server does with the bytes (each a test in ``tests/reliability/test_http_framing.py``):

- chunked request bodies, ``Expect: 100-continue`` (answered when the body is first read, at
  once), pipelining, keep-alive; ``HEAD`` answers the status and headers a GET would, no body;
- requests it cannot parse (``Content-Length: abc``, ``-1``, both ``Content-Length`` and
  ``Transfer-Encoding``, bad chunk sizes) are answered ``400 {"error": "Invalid HTTP request:
  <llhttp's reason>"}`` and the connection is closed (upstream's libevent answers an HTML page);
- a request line and headers over :data:`MAX_REQUEST_HEAD_BYTES` (1 MiB) together answer 431;
  below that any length is read (upstream's libevent has no limit: a 70 KB model name is a 404
  from the handler, as there);
- a body over ``--rest_api_max_request_body_bytes`` (:data:`MAX_REQUEST_BODY_BYTES`, 1 GiB, by
  default) answers ``413 {"error": ...}`` before it is read (a declared ``Content-Length``) or
  as soon as it is (chunked); the rest of the body is discarded as it arrives and the
  connection stays usable;
- a connection with no request in progress is closed after :data:`KEEP_ALIVE_TIMEOUT` seconds
  (5, uvicorn's default; upstream's libevent closes after 50 s);
- at most :func:`max_connections` connections are open at once (half the process's descriptor
  limit, at most 10,000), so REST can never take the descriptors gRPC needs. A connection past
  that closes the longest-idle connection that has no request in progress; if every one has, it
  is answered ``503 {"error": ...}`` and closed. Should descriptors run out all the same, the
  loop refuses the connections it cannot take (libuv accepts and closes them; asyncio stops
  accepting for a second), never spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from ...waiting import wait_until
from .error_response import encode_error
from .handler import HttpRestApiHandler, RestResponse

log = logging.getLogger(__name__)

MAX_REQUEST_BODY_BYTES = 1 << 30
"""Default of ``--rest_api_max_request_body_bytes``: 1 GiB. Upstream has no cap; this one only
bounds memory. It is ten times upstream's cap on a decompressed body (100 MB), and a JSON body
this size already costs several GiB once parsed, so no request that could be served is
refused."""
MAX_REQUEST_HEAD_BYTES = 1 << 20
"""The request line and headers together may be this long (1 MiB); beyond, 431."""
KEEP_ALIVE_TIMEOUT = 5
"""Seconds a connection with no request in progress stays open."""
_PARSE_URL_LIMIT = 0xFFFF
"""httptools' URL parser keeps 16-bit offsets: longer targets are split here instead."""
_STARTUP_DEADLINE = 30.0

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def max_connections() -> int:
    """How many connections the REST server holds at once: half the soft descriptor limit
    (the other half is for gRPC, model files and TensorFlow), at least 8, at most 10,000."""
    try:
        import resource
    except ImportError:  # Windows: no descriptor limit to share
        return 10_000
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(8, min(10_000, soft // 2))


class _Headers:
    """Request headers looked up by name case-insensitively; the first of repeated ones wins,
    as libevent's ``evhttp_find_header``."""

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._values: dict[str, str] = {}
        for name, value in raw:  # uvicorn lower-cases names
            self._values.setdefault(name.decode("latin-1"), value.decode("latin-1"))

    def get(self, name: str, default: str, /) -> str:
        return self._values.get(name.lower(), default)


def _json_error(status: int, message: str, *, close: bool) -> bytes:
    """A whole HTTP/1.1 response answering ``{"error": message}``."""
    body = encode_error(message)
    head = [
        STATUS_LINE[status],
        b"Content-Type: application/json\r\n",
        b"Content-Length: %d\r\n" % len(body),
    ]
    if close:
        head.append(b"Connection: close\r\n")
    return b"".join([*head, b"\r\n", body])


class _HeadTooLarge(Exception):
    pass


class _Cycle(RequestResponseCycle):
    """uvicorn's request-response cycle, writing a whole answer (``http.response.start`` and
    one final ``http.response.body``, what :func:`_respond` sends) in one write with its header
    names as given (``Content-Type``, as upstream; uvicorn lower-cases them), not two."""

    _start: MutableMapping[str, Any] | None = None

    async def send(self, message: MutableMapping[str, Any]) -> None:  # type: ignore[override]
        if message["type"] == "http.response.start" and not self.response_started:
            self._start = message  # written with the body
            return
        start, self._start = self._start, None
        if start is None or message["type"] != "http.response.body" or message.get("more_body"):
            if start is not None:
                await super().send(start)  # type: ignore[arg-type]
            await super().send(message)  # type: ignore[arg-type]
            return
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        content = [STATUS_LINE[start["status"]]]
        for name, value in (*self.default_headers, *start["headers"]):
            content.extend((name, b": ", value, b"\r\n"))
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content.append(b"\r\n")
        if self.scope["method"] != "HEAD":
            content.append(message.get("body", b""))
        self.transport.write(b"".join(content))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with our limits: JSON bodies for the requests it refuses,
    a bounded head, at most :attr:`max_connections` connections, idle time-outs from the
    first byte on (uvicorn's start after the first answer), and targets over 64 KiB."""

    max_connections = 10_000

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._head_bytes = 0
        self._idle_since = time.monotonic()
        if len(self.connections) > self.max_connections and not self._make_room():
            self.transport.write(
                _json_error(
                    503,
                    f"Too many connections: this server holds {self.max_connections} at once "
                    "and every one has a request in progress; try again later",
                    close=True,
                )
            )
            self.transport.close()
            return
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _idle(self) -> bool:
        """No request in progress (none yet, or the last one answered) and still open."""
        cycle = self.cycle
        return (
            not self.transport.is_closing()
            and (cycle is None or cycle.response_complete)
            and not self.pipeline
        )

    def _make_room(self) -> bool:
        """Close the longest-idle other connection; False if none is idle."""
        open_ = [c for c in self.connections if not c.transport.is_closing()]
        if len(open_) <= self.max_connections:
            return True
        idle = [c for c in open_ if c is not self and isinstance(c, _Protocol) and c._idle()]
        if not idle:
            return False
        min(idle, key=lambda c: c._idle_since).transport.close()
        return True

    def on_response_complete(self) -> None:
        self._idle_since = time.monotonic()
        super().on_response_complete()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            raise _HeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        url = self.url
        if len(url) <= _PARSE_URL_LIMIT:
            super().on_headers_complete()
            self._adopt_cycle()
            return
        # httptools.parse_url cannot hold the offsets: parse a stand-in, then put the real
        # target in the scope (the ASGI task it started has not run yet).
        self.url = b"/"
        super().on_headers_complete()
        self.url = url
        target = url.partition(b"#")[0]
        if b"://" in target[:16]:  # absolute form: scheme://authority/path
            slash = target.find(b"/", target.index(b"://") + 3)
            target = target[slash:] if slash >= 0 else b"/"
        path, _, query = target.partition(b"?")
        self.scope["raw_path"] = path
        self.scope["path"] = urllib.parse.unquote(path.decode("latin-1"))
        self.scope["query_string"] = query
        self._adopt_cycle()

    def _adopt_cycle(self) -> None:
        """Make the cycle uvicorn just made (its task has not run yet) a :class:`_Cycle`."""
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _Cycle

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn inside its ``except httptools.HttpParserError``."""
        error = sys.exc_info()[1]
        if isinstance(error, httptools.HttpParserCallbackError) and isinstance(
            error.__context__, _HeadTooLarge
        ):
            status = 431
            message = f"Request line and headers are longer than {MAX_REQUEST_HEAD_BYTES} bytes"
        else:
            status = 400
            message = f"Invalid HTTP request: {error}" if error else msg
        self.transport.write(_json_error(status, message, close=True))
        self.transport.close()


class _App:
    """The ASGI application: reads the body (capped), asks the handler, writes its answer."""

    def __init__(self, api: HttpRestApiHandler, max_request_body_bytes: int) -> None:
        self.api = api
        self.max_body = max_request_body_bytes if max_request_body_bytes > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off and websockets are not served
            return
        headers = _Headers(scope["headers"])
        body = await self._read_body(headers, receive, send)
        if body is None:
            return
        path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        result = await self.api.process_async(scope["method"], path, headers, body)
        await _respond(send, result)

    async def _read_body(self, headers: _Headers, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None when the client left or the body is over the cap (then
        answered 413 here)."""
        declared = headers.get("content-length", "")
        if self.max_body is not None and declared and int(declared) > self.max_body:
            await self._too_large(send, f"Request body of {declared} bytes")
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()  # the first call answers Expect: 100-continue
            if message["type"] != "http.request":
                return None  # http.disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if self.max_body is not None and size > self.max_body:
                await self._too_large(send, "Request body")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _too_large(self, send: Send, what: str) -> None:
        await _respond(
            send,
            RestResponse(
                413,
                encode_error(
                    f"{what} is larger than --rest_api_max_request_body_bytes={self.max_body}"
                ),
                [("Content-Type", "application/json")],
            ),
        )


async def _respond(send: Send, result: RestResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers]
    headers.append((b"Content-Length", str(len(result.body)).encode()))
    await send({"type": "http.response.start", "status": result.status, "headers": headers})
    await send({"type": "http.response.body", "body": result.body})


class RestServer:
    """A serving REST server; :meth:`shutdown` stops it (answers in progress get up to two
    seconds), :meth:`server_close` releases the socket."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket) -> None:
        self._server = server
        self._socket = sock
        self.port: int = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="rest", daemon=True)
        self._failure: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # SystemExit from uvicorn's start-up, too
            self._failure = exc
            log.exception("The REST server stopped")

    def start(self) -> None:
        """Start the server thread; return once it serves. Raises ``RuntimeError`` with the
        thread's failure if the thread dies first or it has not started within
        ``_STARTUP_DEADLINE`` seconds."""
        self._thread.start()

        def not_started() -> RuntimeError:
            return RuntimeError(f"The REST server did not start: {self._failure!r}")

        def started() -> bool:
            if self._server.started:
                return True
            if not self._thread.is_alive():
                raise not_started()
            return False

        wait_until(started, _STARTUP_DEADLINE, timed_out=not_started, interval=0.005)

    def shutdown(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def server_close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()


def create_server(
    api: HttpRestApiHandler,
    host: str,
    port: int,
    *,
    max_request_body_bytes: int = MAX_REQUEST_BODY_BYTES,
) -> tuple[RestServer, int]:
    """A serving REST server on ``host:port`` (0 picks a free port) and its bound port.
    ``max_request_body_bytes`` <= 0: no cap."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every answer waits 40 ms for a delayed ACK (headers and body are two writes).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    protocol = type("Protocol", (_Protocol,), {"max_connections": max_connections()})
    config = uvicorn.Config(
        _App(api, max_request_body_bytes),
        http=protocol,
        loop="auto",  # uvloop if installed, else asyncio's
        ws="none",
        lifespan="off",
        interface="asgi3",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=2,
        backlog=1024,
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    server = RestServer(uvicorn.Server(config), sock)
    try:
        server.start()
    except BaseException:
        server.shutdown()
        server.server_close()
        raise
    return server, server.port
