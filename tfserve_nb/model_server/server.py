"""The whole embedded server in one process: core, gRPC, REST, config-file polling.

After TF Serving's ``model_servers/server.cc``: ``Server.build_and_start`` loads the initial
models first and only then opens the ports, so a client that can connect can predict.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import stat
import threading
from collections.abc import Sequence

from grpc_health.v1.health import HealthServicer

from ..batching.batching_parameters import batching_parameters_for_server
from ..config import ModelConfig, parse_config_file
from ..core.status import ServingStatusError
from ..errors import ConfigError
from . import monitoring
from .grpc import services
from .grpc.channel_arguments import parse_grpc_channel_arguments
from .grpc.profiler_service import ProfilerServiceProxy
from .rest import http_server
from .rest.handler import HttpRestApiHandler
from .server_core import LoaderFactory, ServerCore, ServerCoreOptions

log = logging.getLogger("tfserve_nb.model_server")


def core_options(flags: argparse.Namespace) -> ServerCoreOptions:
    """The core's options from the command line; raises ServingStatusError for a batching
    parameters file that cannot be read or is invalid (a start-up failure)."""
    batching = batching_parameters_for_server(flags.enable_batching, flags.batching_parameters_file)
    return ServerCoreOptions(
        file_system_poll_wait_seconds=flags.file_system_poll_wait_seconds,
        allow_version_labels_for_unavailable_models=(
            flags.allow_version_labels_for_unavailable_models
        ),
        max_num_load_retries=flags.max_num_load_retries,
        load_retry_interval_seconds=flags.load_retry_interval_micros / 1e6,
        num_load_threads=flags.num_load_threads or 2,
        saved_model_tags=tuple(t for t in flags.saved_model_tags.split(",") if t),
        batching_parameters=batching,
        batching_metrics=monitoring.METRICS if batching and flags.monitoring_config_file else None,
        enable_per_model_batching_parameters=flags.enable_per_model_batching_parameters,
        enable_model_warmup=flags.enable_model_warmup,
        # upstream uses the flag only when > 0; otherwise each record runs once
        num_request_iterations_for_warmup=max(flags.num_request_iterations_for_warmup, 1),
        enable_signature_method_name_check=flags.enable_signature_method_name_check,
        enable_serialization_as_tensor_content=flags.enable_serialization_as_tensor_content,
        prefer_tflite_model=flags.prefer_tflite_model,
        num_tflite_interpreters=max(flags.num_tflite_pools, 1),
    )


def request_threads() -> int:
    """How many requests the gRPC front-end runs at once by default: four per core, at least
    16 — enough to keep the cores busy, and to fill batches when batching is on. More threads
    cost CPU on every request (they contend for the interpreter lock): with 64 clients and
    batching, 192 threads took up to a third more CPU per request than 16 on two cores, for no more
    throughput."""
    return max(16, 4 * (os.cpu_count() or 1))


def _socket_identity(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of the Unix socket at ``path``; ``None`` if there is none."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISSOCK(found.st_mode) else None


def _remove_socket(path: str, identity: tuple[int, int] | None) -> None:
    """Remove the Unix socket at ``path`` if it is still the one we bound (gRPC removes it as it
    stops; a socket another server has bound there since, or any other file, is left alone)."""
    if identity is not None and _socket_identity(path) == identity:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class Server:
    """A running embedded model server: gRPC on a TCP port, a Unix socket or both, and REST.
    ``stop`` is idempotent and removes the socket file."""

    def __init__(self, core: ServerCore) -> None:
        self.core = core
        self.grpc_port = 0
        self.rest_port = 0
        self._grpc: object | None = None
        self._health: HealthServicer | None = None
        self._rest: http_server.RestServer | None = None
        self._rest_api: HttpRestApiHandler | None = None
        self._profiler: ProfilerServiceProxy | None = None
        self._socket_path = ""
        self._socket_identity: tuple[int, int] | None = None
        self._stop = threading.Event()

    @classmethod
    def build_and_start(
        cls,
        flags: argparse.Namespace,
        configs: Sequence[ModelConfig],
        loader_factory: LoaderFactory | None = None,
    ) -> Server:
        """Load ``configs`` (blocking until AVAILABLE), then open the front-ends.
        ``loader_factory`` replaces the SavedModel loaders (the benchmark's transport floor
        serves canned answers through the same front-ends with it)."""
        server = cls(ServerCore.create(configs, core_options(flags), loader_factory))
        try:
            server._start_front_ends(flags)
        except BaseException:
            server.stop()
            raise
        if flags.model_config_file and flags.model_config_file_poll_wait_seconds > 0:
            threading.Thread(
                target=server._poll_config_file,
                args=(flags.model_config_file, flags.model_config_file_poll_wait_seconds),
                name="config-file-poll",
                daemon=True,
            ).start()
        return server

    def _start_front_ends(self, flags: argparse.Namespace) -> None:
        host = flags.bind_address
        tcp = bool(flags.port or flags.ephemeral_ports)
        if tcp or flags.grpc_socket_path:
            address = f"{host}:{0 if flags.ephemeral_ports else flags.port}" if tcp else None
            workers = flags.grpc_max_threads or request_threads()
            if flags.enable_grpc_healthcheck_service:
                self._health = services.health_servicer()
            handlers = []
            if flags.enable_profiler:
                self._profiler = ProfilerServiceProxy()
                handlers.append(self._profiler)
            self._grpc, self.grpc_port = services.create_server(
                self.core,
                address,
                workers,
                socket_path=flags.grpc_socket_path,
                health=self._health,
                channel_arguments=parse_grpc_channel_arguments(flags.grpc_channel_arguments),
                handlers=handlers,
            )
            self._socket_path = flags.grpc_socket_path
            self._socket_identity = _socket_identity(flags.grpc_socket_path)
            if self._profiler is not None:
                log.info("Profiler service is enabled")
            if tcp:
                log.info("Running gRPC ModelServer at %s:%d ...", host, self.grpc_port)
            if flags.grpc_socket_path:
                log.info("Running gRPC ModelServer at UNIX socket %s ...", flags.grpc_socket_path)
        if flags.rest_api_port and flags.rest_api_port == flags.port and not flags.ephemeral_ports:
            log.error(
                "server_options.http_port cannot be same as grpc_port. Please use a different "
                "port for HTTP/REST API. Skipped exporting HTTP/REST API."
            )
        elif flags.rest_api_port or flags.ephemeral_ports:
            port = 0 if flags.ephemeral_ports else flags.rest_api_port
            routes = {}
            if flags.monitoring_config_file:
                path = monitoring.read_prometheus_path(flags.monitoring_config_file)
                if path is not None:
                    routes[path] = monitoring.METRICS.page
            self._rest_api = HttpRestApiHandler(
                self.core,
                enable_cors=flags.rest_api_enable_cors_support,
                extra_routes=routes,
                timeout_in_ms=flags.rest_api_timeout_in_ms,
                num_threads=flags.rest_api_num_threads,
            )
            self._rest, self.rest_port = http_server.create_server(
                self._rest_api,
                host,
                port,
                max_request_body_bytes=flags.rest_api_max_request_body_bytes,
            )
            log.info("Exporting HTTP/REST API at:%s:%d ...", host, self.rest_port)

    def _poll_config_file(self, path: str, wait_seconds: int) -> None:
        """Every ``wait_seconds``, reload the config file if it differs from the config in
        force; a reload that failed is tried again at the next poll, as upstream does."""
        while not self._stop.wait(wait_seconds):
            try:
                with open(path) as f:
                    configs = parse_config_file(f.read(), path)
            except (OSError, ConfigError) as exc:
                log.error("Failed to read ModelServerConfig file: %s", exc)
                continue
            if configs != self.core.config:
                log.info("Config file %s changed; reloading", path)
                try:
                    self.core.reload_config(configs)
                except ServingStatusError as exc:
                    log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", exc)

    def stop(self, grace: float = 2.0) -> None:
        """Stop serving: requests in flight get ``grace`` seconds, reloads still waiting for
        a model to become available give up at once (UNAVAILABLE), then everything unloads."""
        self._stop.set()
        self.core.cancel_waits()  # else a blocked reload holds its gRPC thread (and exit) up
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()
            self._rest = None
        if self._rest_api is not None:
            self._rest_api.close()
            self._rest_api = None
        if self._grpc is not None:
            if self._health is not None:
                self._health.enter_graceful_shutdown()  # NOT_SERVING while draining
            self._grpc.stop(grace).wait()  # type: ignore[attr-defined]
            self._grpc = None
        if self._profiler is not None:
            self._profiler.close()
            self._profiler = None
        if self._socket_path:
            _remove_socket(self._socket_path, self._socket_identity)
            self._socket_path = ""
        self.core.stop()
