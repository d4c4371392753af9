"""Puts :class:`~.http_rest_api_handler.HttpRestApiHandler` on a socket.

A threaded HTTP/1.1 server from the standard library (keep-alive, one thread per connection).
``create_server(handler, host, port)`` binds (port 0 picks a free one) and serves in a daemon
thread; ``shutdown()`` stops it.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .http_rest_api_handler import HttpRestApiHandler


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    # Buffered output: headers and body leave in one write (``handle_one_request`` flushes
    # after each request), not one system call for the headers and another for the body.
    wbufsize = 64 * 1024
    server_version = "tfserve-nb"
    api: HttpRestApiHandler

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        result = self.api.process(self.command, self.path, self.headers, body)
        self.send_response(result.status)
        for key, value in result.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(result.body)))
        self.end_headers()
        self.wfile.write(result.body)

    do_GET = do_POST = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, format: str, *args: object) -> None:  # quiet, like upstream
        pass


class RestServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def create_server(api: HttpRestApiHandler, host: str, port: int) -> tuple[RestServer, int]:
    """A serving REST server on ``host:port`` and its bound port."""
    handler = type("RequestHandler", (_RequestHandler,), {"api": api})
    server = RestServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="rest", daemon=True)
    thread.start()
    return server, server.server_address[1]
