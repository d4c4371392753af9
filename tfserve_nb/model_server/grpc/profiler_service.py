"""``tensorflow.ProfilerService`` on the gRPC port (``--enable_profiler``: off unless asked,
where upstream has it on, because of the all-interfaces port below), so
``tf.profiler.experimental.client.trace('grpc://HOST:PORT', logdir, ms)`` and TensorBoard's
"capture profile" trace the server.

Upstream registers TensorFlow's own ``ProfilerServiceImpl`` on its gRPC server. TensorFlow's
Python does not offer that service as a servicer, but it can start it on a port of its own
(``tf.profiler.experimental.server.start``), in this process, profiling this process. So
:class:`ProfilerServiceProxy` forwards every ``/tensorflow.ProfilerService/*`` call, as raw bytes
with its deadline, metadata and cancellation, to TensorFlow's profiler server over
``127.0.0.1``, and answers with its bytes, codes and texts: the service, its messages and its
behaviour are TensorFlow's, whatever its version.

TensorFlow's profiler server listens on all interfaces (``[::]``, any address) and cannot be told
otherwise. To keep the server's own ports the only ones it opens until asked, the profiler server
starts on the first ProfilerService call (on a free port picked then), and stays up until the
process exits (TensorFlow has no way to stop it). Thread-safe.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import grpc

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/tensorflow.ProfilerService/"
"""The method-name prefix of TensorFlow's profiler service (``profiler_service.proto``)."""

_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def _free_port() -> int:
    """A TCP port free on every interface now (TensorFlow binds it on ``[::]``)."""
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address: tuple[Any, ...] = ("::", 0)
    except OSError:  # no IPv6 here
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("", 0)  # every IPv4 interface, as TensorFlow will bind it
    with probe:
        probe.bind(address)
        return int(probe.getsockname()[1])


def start_tensorflow_profiler_server() -> int:
    """Start TensorFlow's profiler server in this process; returns its port."""
    import tensorflow as tf

    port = _free_port()
    tf.profiler.experimental.server.start(port)
    log.warning(
        "Started TensorFlow's profiler server for the ProfilerService: it listens on all "
        "interfaces at port %d (TensorFlow cannot bind it to one); --enable_profiler=false "
        "turns the service off",
        port,
    )
    return port


class ProfilerServiceProxy(grpc.GenericRpcHandler):
    """Serves ``tensorflow.ProfilerService`` by forwarding to TensorFlow's profiler server,
    which ``start_backend`` starts (returning its port) on the first call."""

    def __init__(self, start_backend: Any = start_tensorflow_profiler_server) -> None:
        self._start_backend = start_backend
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._closed = False

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if not method.startswith(SERVICE_PREFIX):
            return None

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            return self._forward(method, request, context)

        # no (de)serializers: requests and responses stay bytes
        return grpc.unary_unary_rpc_method_handler(forward)

    def _backend(self) -> grpc.Channel:
        with self._lock:
            if self._closed:
                raise RuntimeError("the profiler service is closed")
            if self._channel is None:
                port = self._start_backend()
                self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_UNLIMITED)
            return self._channel

    def _forward(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            channel = self._backend()
        except Exception as exc:  # TensorFlow could not start its server
            log.exception("Cannot start TensorFlow's profiler server")
            context.abort(grpc.StatusCode.UNAVAILABLE, f"Profiler service unavailable: {exc}")
        call = channel.unary_unary(method)
        metadata = [
            (key, value)
            for key, value in context.invocation_metadata()
            if not key.startswith((":", "grpc-")) and key != "user-agent"
        ]
        future = call.future(request, timeout=context.time_remaining(), metadata=metadata)
        context.add_callback(future.cancel)  # the client went away: stop the trace too
        try:
            response: bytes = future.result()
        except grpc.FutureCancelledError:
            context.abort(grpc.StatusCode.CANCELLED, "Cancelled")
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")  # type: ignore[attr-defined]
        return response

    def close(self) -> None:
        """Close the channel to TensorFlow's profiler server (which stays up)."""
        with self._lock:
            self._closed = True
            if self._channel is not None:
                self._channel.close()
                self._channel = None
