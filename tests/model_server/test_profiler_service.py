"""model_server.profiler_service: the forwarding of ``tensorflow.ProfilerService`` calls, against
a stand-in backend (a real gRPC server on 127.0.0.1) — bytes both ways, codes and texts kept, the
backend started only by the first call. TensorFlow's real profiler server, traced by its own
client: ``test_conformance_grpc_flags.py::test_profiler_service_traces_the_server``."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from tfserve_nb.model_server.grpc.profiler_service import ProfilerServiceProxy


class Backend(grpc.GenericRpcHandler):
    """Answers ``Profile`` with its request reversed and ``Terminate`` with an error."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method

        def behave(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.calls.append((method, request))
            if method.endswith("/Terminate"):
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no such session")
            return request[::-1]

        return grpc.unary_unary_rpc_method_handler(behave)


@pytest.fixture
def servers() -> Iterator[tuple[grpc.Channel, Backend, list[int]]]:
    """A front server with the proxy, whose backend starts on first use; ``(channel to the
    front, backend, ports the proxy started)``."""
    backend = Backend()
    back = grpc.server(futures.ThreadPoolExecutor(2))
    back.add_generic_rpc_handlers((backend,))
    back_port = back.add_insecure_port("127.0.0.1:0")
    back.start()
    started: list[int] = []

    def start_backend() -> int:
        started.append(back_port)
        return back_port

    proxy = ProfilerServiceProxy(start_backend)
    front = grpc.server(futures.ThreadPoolExecutor(2))
    front.add_generic_rpc_handlers((proxy,))
    front_port = front.add_insecure_port("127.0.0.1:0")
    front.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{front_port}")
    try:
        yield channel, backend, started
    finally:
        channel.close()
        front.stop(None).wait()
        proxy.close()
        back.stop(None).wait()


def test_calls_go_through_as_bytes_and_start_the_backend_once(servers):
    channel, backend, started = servers
    assert started == []  # nothing listens for the profiler until someone asks
    profile = channel.unary_unary("/tensorflow.ProfilerService/Profile")
    assert profile(b"\x01\x02\x03", timeout=10) == b"\x03\x02\x01"
    assert profile(b"ab", timeout=10) == b"ba"
    assert backend.calls == [
        ("/tensorflow.ProfilerService/Profile", b"\x01\x02\x03"),
        ("/tensorflow.ProfilerService/Profile", b"ab"),
    ]
    assert len(started) == 1


def test_the_backends_codes_and_texts_come_back(servers):
    channel, _, _ = servers
    with pytest.raises(grpc.RpcError) as failed:
        channel.unary_unary("/tensorflow.ProfilerService/Terminate")(b"", timeout=10)
    assert (failed.value.code(), failed.value.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "no such session",
    )


def test_other_services_are_not_taken(servers):
    channel, backend, started = servers
    with pytest.raises(grpc.RpcError) as missing:
        channel.unary_unary("/tensorflow.OtherService/Profile")(b"", timeout=10)
    assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert (backend.calls, started) == ([], [])
