"""gRPC front-end: ``PredictionService`` and ``ModelService`` servicers and the server, with
the standard ``grpc.health.v1.Health`` service when asked (``--enable_grpc_healthcheck_service``)
and any other services as generic handlers (the profiler's, ``profiler_service.py``), on a TCP
port, a Unix socket (``--grpc_socket_path``) or both.

Servicers keep the proto's service and method names. Every ``ServingStatusError`` becomes a gRPC
status with the same code and TF Serving's (truncated) text; anything unexpected becomes INTERNAL
with its message, and the server keeps serving.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from ...core.status import Code, ServingStatusError, truncate_message
from .. import service_impls
from ..monitoring import METRICS
from ..server_core import ServerCore
from .channel_arguments import ChannelArgument, merged_options

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 2**31 - 1
"""Like ``tensorflow_model_server``, accept messages of any size (gRPC's default is 4 MB)."""

MAX_PENDING_REQUESTS = 16_384
"""How many calls gRPC's core may hold that have arrived but that the server has not taken up
yet (``grpc.server.max_pending_requests`` and its hard limit; the core's defaults are 1,000 and
3,000). grpcio's Python server takes calls up one by one on a thread that competes for the
interpreter lock with the requests it runs; past the default limits the core ended some of
them CANCELLED: 10-28 of 1,500 concurrent calls on fresh connections, from a native client
(h2load), against a bare grpcio server whose handler holds the lock for 1 ms, and against this
server. With these limits: none of 9,000 (tests/reliability/test_grpc_streams.py)."""


def _rpc(
    impl: Callable[[ServerCore, Any], Any], api: str | None = None
) -> Callable[[Any, Any, grpc.ServicerContext], Any]:
    """A servicer method running ``impl``; inference APIs (``api`` given) are counted and
    timed in the metrics as upstream does (entrypoint ``GRPC``)."""

    @functools.wraps(impl)
    def method(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        start = time.perf_counter()
        version = None
        try:
            response = impl(self.core, request)
            code, message = Code.OK, ""
            if api is not None and response.HasField("model_spec"):
                version = response.model_spec.version.value
        except ServingStatusError as exc:
            code, message = exc.code, exc.message
        except Exception as exc:  # a bug must not take the server down
            log.exception("%s failed", impl.__name__)
            code, message = Code.INTERNAL, f"{type(exc).__name__}: {exc}"
        if api is not None:
            METRICS.record_request(
                request.model_spec.name,
                api,
                "GRPC",
                code,
                (time.perf_counter() - start) * 1e6,
                version,
            )
        if code is not Code.OK:
            context.abort(grpc.StatusCode[code.name], truncate_message(message))
        return response

    return method


class PredictionServiceServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServerCore) -> None:
        self.core = core

    Predict = _rpc(service_impls.predict, "Predict")
    Classify = _rpc(service_impls.classify, "Classify")
    Regress = _rpc(service_impls.regress, "Regress")
    MultiInference = _rpc(service_impls.multi_inference)  # upstream records no metrics for it
    GetModelMetadata = _rpc(service_impls.get_model_metadata)


class ModelServiceServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServerCore) -> None:
        self.core = core

    GetModelStatus = _rpc(service_impls.get_model_status)
    HandleReloadConfigRequest = _rpc(service_impls.handle_reload_config_request)


HEALTH_CHECKED_SERVICES = ("", "ModelService", "PredictionService")
"""What the health service answers SERVING for: the whole server (``""``, as gRPC's default
health service does) and the two service names upstream sets."""


def health_servicer() -> health.HealthServicer:
    """``grpc.health.v1.Health`` answering SERVING for :data:`HEALTH_CHECKED_SERVICES` and
    NOT_FOUND for other names; ``enter_graceful_shutdown()`` turns them NOT_SERVING."""
    servicer = health.HealthServicer()
    for service in HEALTH_CHECKED_SERVICES:
        servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return servicer


def create_server(
    core: ServerCore,
    address: str | None,
    max_workers: int = 16,
    *,
    socket_path: str = "",
    health: health.HealthServicer | None = None,
    channel_arguments: Sequence[ChannelArgument] = (),
    handlers: Sequence[grpc.GenericRpcHandler] = (),
) -> tuple[grpc.Server, int]:
    """A started gRPC server serving ``PredictionService`` and ``ModelService`` (and ``health``
    and ``handlers`` if given), as upstream's ``Server::BuildAndStart`` builds it.

    It listens on ``address`` (``host:port``; port 0 picks a free one; ``None``: no TCP port)
    and, if ``socket_path`` is given, on that Unix socket too (clients dial ``unix:PATH``; a stale
    socket file there is replaced). ``channel_arguments`` (``--grpc_channel_arguments``) are
    applied after the server's own options and override them. Returns the server and the bound
    TCP port (0 without one). Raises :class:`GrpcBindError` when an address cannot be bound.
    Stop it with ``server.stop(grace)``; the socket file goes with it.
    """
    options = merged_options(
        [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.server.max_pending_requests", MAX_PENDING_REQUESTS),
            ("grpc.server.max_pending_requests_hard_limit", MAX_PENDING_REQUESTS),
        ],
        list(channel_arguments),
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers, thread_name_prefix="grpc"), options=options
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServiceServicer(core), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServiceServicer(core), server)
    if health is not None:
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if handlers:
        server.add_generic_rpc_handlers(tuple(handlers))
    port = 0
    if address is not None:
        port = _add_port(server, address)
    if socket_path:
        _add_port(server, f"unix:{socket_path}")
    server.start()
    return server, port


class GrpcBindError(OSError):
    """The gRPC server cannot listen on an address (in use, or a socket path that cannot be
    created); ``address`` names it."""

    def __init__(self, address: str) -> None:
        super().__init__(f"Could not bind the gRPC server to {address}")
        self.address = address


def _add_port(server: grpc.Server, address: str) -> int:
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # grpcio raises for an address it cannot bind
        port = 0
    if port == 0:
        raise GrpcBindError(address)
    return port
