"""HTTP/1.1 framing on the REST port, byte for byte over raw sockets: chunked bodies,
``Expect: 100-continue``, malformed lengths, HEAD, long targets, idle time-outs, a bounded number
of connections under a low descriptor limit, the body cap and the decompression cap. Upstream's
statuses and texts where it has them (``http_rest_api_handler.cc``, libevent's ``evhttp``), ours
(JSON, documented in ``docs/conformance.md`` §4) where it answers with libevent's HTML."""

from __future__ import annotations

import json
import os
import resource
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.conformance import assert_serving, half_plus_two_answer, rest_json
from tests.helpers.server_process import ServerProcess
from tests.helpers.waiting import wait_until
from tfserve_nb.model_server import main
from tfserve_nb.model_server.rest import error_response, http_server

BODY_CAP = 4 * 1024 * 1024
"""``--rest_api_max_request_body_bytes`` of the module's server."""
PREDICT = "/v1/models/hp2:predict"
ONE = json.dumps({"instances": [[1.0]]}).encode()
DEADLINE = 30.0


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, half_plus_two_models
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("http_framing")
    process = ServerProcess(
        root,
        "--model_name=hp2",
        f"--model_base_path={half_plus_two_models.make_base_path(root)}",
        f"--rest_api_max_request_body_bytes={BODY_CAP}",
        "--ephemeral_ports",
    )
    yield process
    process.stop()


class Reply:
    """One HTTP response as read off the wire."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self) -> object:
        assert self.headers.get("content-type") == "application/json", self.headers
        return json.loads(self.body)


class Connection:
    """A raw TCP connection to the REST port: bytes out, responses in (every read bounded by
    a socket time-out)."""

    def __init__(self, server: ServerProcess, timeout: float = DEADLINE) -> None:
        self.socket = socket.create_connection(("127.0.0.1", server.rest_port), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.socket.close()

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def request(self, method: str, path: str, body: bytes = b"", headers: str = "") -> None:
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        self.send(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{length}{headers}\r\n".encode() + body)

    def _fill(self) -> bool:
        data = self.socket.recv(1 << 20)
        self.buffer += data
        return bool(data)

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"connection closed before a response: {self.buffer[:200]!r}"
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def read_reply(self, method: str = "POST") -> Reply:
        status, headers = self.read_head()
        length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            assert self._fill(), "connection closed inside a response body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Reply(status, headers, body)

    def closed_by_server(self) -> bool:
        """Whether the server closes its side (EOF) within the socket's time-out."""
        try:
            return not self._fill()
        except TimeoutError:
            return False

    def state_now(self) -> str:
        """``open``, ``closed`` (EOF: closed cleanly) or ``reset``, without waiting."""
        try:
            data = self.socket.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return "open"
        except ConnectionResetError:
            return "reset"
        self.buffer += data
        return "open" if data else "closed"


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def test_chunked_request_bodies_are_read_and_the_connection_stays_in_step(server):
    with Connection(server) as connection:
        connection.send(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + chunked(ONE[:5], ONE[5:12], ONE[12:])
        )
        reply = connection.read_reply()
        assert (reply.status, reply.json) == (200, {"predictions": [[2.5]]})
        connection.request("GET", "/v1/models/hp2")  # the same connection: nothing left over
        reply = connection.read_reply()
        assert reply.status == 200
        assert reply.json["model_version_status"][0]["state"] == "AVAILABLE"  # type: ignore[index]


def test_expect_100_continue_is_answered_at_once(server):
    """curl sends ``Expect: 100-continue`` with bodies over 1 MB and waits a second for it."""
    body = json.dumps({"instances": [[1.0]] * 250_000}).encode()  # 2 MB
    assert 1 << 20 < len(body) < BODY_CAP
    with Connection(server) as connection:
        start = time.monotonic()
        connection.send(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        assert connection.read_head() == (100, {})
        assert time.monotonic() - start < 0.5
        connection.send(body)
        reply = connection.read_reply()
        assert reply.status == 200
        assert reply.json == {"predictions": [[2.5]] * 250_000}


@pytest.mark.parametrize("length", ["abc", "-1", "1 2", "0x10"])
def test_a_content_length_that_is_not_a_number_answers_400_json(server, length):
    with Connection(server) as connection:
        connection.send(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode() + ONE
        )
        reply = connection.read_reply()
        assert (reply.status, reply.json) == (
            400,
            {"error": "Invalid HTTP request: Invalid character in Content-Length"},
        )
        assert reply.headers["connection"] == "close"
        assert connection.closed_by_server()
    assert_serving(server, "hp2")


def test_both_content_length_and_chunked_is_refused(server):
    """Request smuggling: a body framed two ways is refused, never guessed."""
    with Connection(server) as connection:
        connection.send(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
            + chunked(ONE)
        )
        reply = connection.read_reply()
        assert reply.status == 400
        assert reply.json["error"].startswith("Invalid HTTP request: ")  # type: ignore[index]
    assert_serving(server, "hp2")


def test_head_answers_upstreams_400_without_a_body(server):
    """Upstream routes HEAD to its handler, which calls it a malformed request."""
    expected = error_response.encode_error("Malformed request: HEAD /v1/models/hp2")
    with Connection(server) as connection:
        connection.request("HEAD", "/v1/models/hp2")
        reply = connection.read_reply("HEAD")
        assert reply.status == 400
        assert reply.headers["content-type"] == "application/json"
        assert reply.headers["content-length"] == str(len(expected))
        connection.request("GET", "/v1/models/hp2")  # no body bytes came before this answer
        assert connection.read_reply().status == 200


def test_a_70_kb_model_name_is_looked_up_as_upstream_does(server):
    """libevent reads a request line of any length: a 70 KB name is a model not found."""
    name = "a" * 70_000
    with Connection(server) as connection:
        connection.request("GET", f"/v1/models/{name}")
        reply = connection.read_reply()
        assert (reply.status, reply.json) == (
            404,
            {"error": f"Could not find any versions of model {name}"},
        )
        connection.request("POST", f"/v1/models/{name}:predict?x=1", ONE)
        reply = connection.read_reply()
        assert (reply.status, reply.json) == (
            404,
            {"error": f"Servable not found for request: Latest({name})"},
        )


def test_a_request_head_over_1_mib_answers_431(server):
    with Connection(server) as connection:
        connection.send(f"GET /v1/models/{'a' * (1 << 20)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        reply = connection.read_reply()
        assert (reply.status, reply.json) == (
            431,
            {"error": "Request line and headers are longer than 1048576 bytes"},
        )
    assert_serving(server, "hp2")


@pytest.mark.parametrize("after_a_request", [False, True])
def test_idle_connections_are_closed_after_the_keep_alive_timeout(server, after_a_request):
    timeout = http_server.KEEP_ALIVE_TIMEOUT
    with Connection(server, timeout=timeout + 10) as connection:
        if after_a_request:
            connection.request("GET", "/v1/models/hp2")
            assert connection.read_reply().status == 200
        start = time.monotonic()
        assert connection.closed_by_server()
        assert timeout - 0.5 < time.monotonic() - start < timeout + 5


def test_a_declared_body_over_the_cap_answers_413_before_it_is_sent(server):
    with Connection(server) as connection:
        connection.send(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_CAP + 1}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        reply = connection.read_reply()  # not 100 Continue: the body is not wanted
        assert (reply.status, reply.json) == (
            413,
            {
                "error": f"Request body of {BODY_CAP + 1} bytes is larger than "
                f"--rest_api_max_request_body_bytes={BODY_CAP}"
            },
        )
    assert_serving(server, "hp2")


def test_a_chunked_body_over_the_cap_answers_413_and_the_connection_stays_usable(server):
    with Connection(server) as connection:
        connection.send(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        piece = b" " * (1 << 20)
        for _ in range(BODY_CAP // len(piece) + 1):
            connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        reply = connection.read_reply()
        assert (reply.status, reply.json) == (
            413,
            {"error": f"Request body is larger than --rest_api_max_request_body_bytes={BODY_CAP}"},
        )
        connection.send(b"0\r\n\r\n")  # the rest of the body is discarded as it arrives
        connection.request("POST", PREDICT, ONE)
        reply = connection.read_reply()
        assert (reply.status, reply.json) == (200, {"predictions": [[2.5]]})


def test_the_default_body_cap_is_1_gib():
    flags = main.build_parser().parse_args([])
    assert flags.rest_api_max_request_body_bytes == http_server.MAX_REQUEST_BODY_BYTES == 1 << 30


def _peak_rss(server: ServerProcess) -> int:
    """The server process's peak resident memory, bytes (``VmHWM``)."""
    for line in Path(f"/proc/{server.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_body_inflating_past_100_mb_reads_as_empty_without_inflating_it(server, encoding):
    """Upstream inflates at most ``ZLib::kMaxUncompressedBytes`` (100 MB); past it the body
    reads as empty, so the answer is the empty-document error. 1 MB inflating to 1 GiB."""
    wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
    deflater = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(1 << 20)
    bomb = b"".join(deflater.compress(zeros) for _ in range(1024)) + deflater.flush()
    assert len(bomb) < BODY_CAP
    before = _peak_rss(server)
    with Connection(server) as connection:
        connection.request("POST", PREDICT, bomb, f"Content-Encoding: {encoding}\r\n")
        reply = connection.read_reply()
    assert (reply.status, reply.json) == (400, {"error": "JSON Parse error: The document is empty"})
    assert _peak_rss(server) - before < 300 << 20  # at most the 100 MB cap, plus the body
    assert_serving(server, "hp2")


# --- a bounded number of connections ----------------------------------------------------------

DESCRIPTOR_LIMIT = 256
IDLE_CONNECTIONS = 300


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.fixture
def low_descriptor_server(tmp_path, half_plus_two_models) -> Iterator[ServerProcess]:
    """A server whose process may open at most :data:`DESCRIPTOR_LIMIT` descriptors (the
    limit is lowered here for the moment the child starts, and inherited by it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTOR_LIMIT, hard))
    try:
        process = ServerProcess(
            tmp_path,
            "--model_name=hp2",
            f"--model_base_path={half_plus_two_models.make_base_path(tmp_path)}",
            "--ephemeral_ports",
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    yield process
    process.stop()


def test_idle_connections_past_the_bound_are_closed_and_nothing_spins(low_descriptor_server):
    """300 idle connections against a limit of 256 descriptors: the server keeps at most half
    its limit open (closing the longest-idle ones, cleanly), stays idle itself, and a new REST
    client and a new gRPC client are answered at once."""
    server = low_descriptor_server
    bound = DESCRIPTOR_LIMIT // 2
    connections = [Connection(server) for _ in range(IDLE_CONNECTIONS)]
    try:
        states = wait_until(
            lambda: (s := [c.state_now() for c in connections]).count("open") <= bound and s,
            f"the server to keep at most {bound} connections",
            timeout=http_server.KEEP_ALIVE_TIMEOUT - 1,
        )
        assert "reset" not in states
        cpu = _cpu_seconds(server.popen.pid)
        time.sleep(2.0)  # measuring CPU over a span of time, not waiting for a condition
        assert _cpu_seconds(server.popen.pid) - cpu < 0.5  # the old accept loop spun at 100 %
        start = time.monotonic()
        status, body = rest_json(server, "POST", PREDICT, {"instances": [[1.0]]})
        assert (status, body) == (200, {"predictions": [[2.5]]})
        assert half_plus_two_answer(server, "hp2") == (1, 2.5)
        assert time.monotonic() - start < 5
    finally:
        for connection in connections:
            connection.socket.close()
    assert server.popen.poll() is None
