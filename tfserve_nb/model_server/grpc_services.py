"""gRPC front-end: ``PredictionService`` and ``ModelService`` servicers and the server, with
the standard ``grpc.health.v1.Health`` service when asked (``--enable_grpc_healthcheck_service``).

Servicers keep the proto's service and method names. Every ``ServingStatusError`` becomes a gRPC
status with the same code and TF Serving's (truncated) text; anything unexpected becomes INTERNAL
with its message, and the server keeps serving.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from ..core.status import Code, ServingStatusError, truncate_message
from . import service_impls
from .monitoring import METRICS
from .server_core import ServerCore

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 2**31 - 1
"""Like ``tensorflow_model_server``, accept messages of any size (gRPC's default is 4 MB)."""


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
    address: str,
    max_workers: int = 16,
    *,
    health: health.HealthServicer | None = None,
) -> tuple[grpc.Server, int]:
    """A started gRPC server bound to ``address`` (``host:port``; port 0 picks a free one),
    serving ``health`` too if given. Returns the server and the bound port. Stop it with
    ``server.stop(grace)``."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServiceServicer(core), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServiceServicer(core), server)
    if health is not None:
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"Could not bind the gRPC server to {address}")
    server.start()
    return server, port
