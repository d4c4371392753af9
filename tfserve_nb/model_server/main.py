"""``tensorflow_model_server``'s command line, for the embedded model server.

``python -m tfserve_nb.model_server`` and ``tfserve-nb model-server`` take TF Serving's flags
(``--flag=value``; booleans also as ``--flag`` alone) with its defaults and start-up checks, and
exit non-zero with ``Failed to start server. Error: ...`` when the initial models do not load.
Unknown flags are an error. Flags of ours, documented as extras:

- ``--bind_address`` (default ``127.0.0.1``): the interface both ports bind to. Upstream binds
  all interfaces; notebooks run on laptops and shared hosts, so we do not unless told to.
- ``--ephemeral_ports``: bind gRPC and REST to free ports chosen by the OS (ignoring ``--port``
  and ``--rest_api_port``), for tests and notebooks that run several servers.
- ``--rest_api_max_request_body_bytes=N`` (default 1 GiB; 0 or less: no cap): a REST request
  body longer than N bytes is answered 413 ``{"error": ...}`` before it is read (upstream has no
  cap; this one bounds memory, ten times upstream's 100 MB cap on a decompressed body).
- ``--port_file=PATH``: once both front-ends listen, write ``{"grpc_port": P, "rest_port": Q}``
  there (atomically), so a parent learns the bound ports.
- ``--exit_on_stdin_eof``: exit when standard input closes, so a server started by a notebook
  kernel dies with it, however the kernel ends.
- ``--parent_pid=PID``: exit when process PID is gone — also when it forked children that
  keep an inherited standard input open. On Linux its death signals us at once (when PID is
  our parent); everywhere its pid is polled every half second. The backends pass it.

SIGTERM and SIGINT stop the server in every state within a few seconds (see
:mod:`~tfserve_nb.model_server.shutdown`): at once during start-up (which may wait for a first
version), gracefully once it serves.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import ModelConfig, parse_config_file
from ..core.status import Code, ServingStatusError
from ..errors import ConfigError
from ..version import __version__
from .grpc.channel_arguments import ChannelArgumentsError, parse_grpc_channel_arguments
from .shutdown import Shutdown
from .tensorflow_import import import_tensorflow

log = logging.getLogger("tfserve_nb.model_server")

UNSUPPORTED_FLAGS = (
    "use_alts_credentials",
    "ssl_config_file",
    "platform_config_file",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "tensorflow_session_config_file",
)
"""Upstream flags whose features the embedded server does not have: setting one is an error
that says so (use the docker backend for them)."""


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def schedulable_cpus() -> int:
    """The CPUs this process may run on (upstream's ``port::NumSchedulableCPUs``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensorflow_model_server (tfserve-nb embedded)",
        description="TF-Serving-compatible model server (embedded in tfserve-nb).",
        allow_abbrev=False,
    )

    def flag(name: str, type_: Any, default: Any, help_: str) -> None:
        if type_ is bool:
            parser.add_argument(
                f"--{name}", type=_bool, nargs="?", const=True, default=default, help=help_
            )
        else:
            parser.add_argument(f"--{name}", type=type_, default=default, help=help_)

    flag("port", int, 8500, "gRPC port; 0 disables gRPC over TCP")
    flag("grpc_socket_path", str, "", "also serve gRPC on this UNIX socket (clients: unix:PATH)")
    flag("rest_api_port", int, 0, "REST port; 0 disables REST; must differ from --port")
    flag("rest_api_num_threads", int, 0, "threads running REST inference (0 = 4 per core)")
    flag("rest_api_timeout_in_ms", int, 30000, "REST deadline; past it the answer is 504")
    flag("rest_api_enable_cors_support", bool, False, "add CORS headers to REST answers")
    flag("enable_batching", bool, False, "batch requests (see --batching_parameters_file)")
    flag("batching_parameters_file", str, "", "BatchingParameters text proto")
    flag(
        "enable_per_model_batching_parameters",
        bool,
        False,
        "with batching, each version's own batching_params.pbtxt (none: not batched)",
    )
    flag("model_config_file", str, "", "ModelServerConfig text proto; overrides name/base path")
    flag("model_config_file_poll_wait_seconds", int, 0, "re-read the config file; 0 = once")
    flag("model_name", str, "default", "model name in single-model mode")
    flag("model_base_path", str, "", "absolute path of the model's version directories")
    flag("num_load_threads", int, 0, "threads loading versions (0 = 2)")
    flag("num_unload_threads", int, 0, "accepted; unloads run on the load threads")
    flag("max_num_load_retries", int, 5, "retries of a failed load")
    flag("load_retry_interval_micros", int, 60_000_000, "wait between load retries")
    flag("file_system_poll_wait_seconds", int, 1, "version directory polling period")
    flag("flush_filesystem_caches", bool, True, "accepted; nothing to flush")
    flag("tensorflow_session_parallelism", int, 0, "threads for both op pools (0 = auto)")
    flag("tensorflow_intra_op_parallelism", int, 0, "intra-op threads (0 = auto)")
    flag("tensorflow_inter_op_parallelism", int, 0, "inter-op threads (0 = auto)")
    flag("saved_model_tags", str, "serve", "comma-separated tag set of the MetaGraph to load")
    flag(
        "grpc_channel_arguments",
        str,
        "",
        "comma-separated gRPC server channel arguments, e.g. grpc.max_connection_age_ms=2000",
    )
    flag("grpc_max_threads", int, 0, "gRPC worker threads (0 = 4 per core, at least 16)")
    flag("enable_model_warmup", bool, True, "replay assets.extra/tf_serving_warmup_requests")
    flag("num_request_iterations_for_warmup", int, 1, "times each warmup record is replayed")
    flag(
        "enable_signature_method_name_check",
        bool,
        False,
        "check signatures' method_name against the API (classify, regress, predict) called",
    )
    flag("monitoring_config_file", str, "", "MonitoringConfig text proto (Prometheus)")
    flag(
        "allow_version_labels_for_unavailable_models",
        bool,
        False,
        "allow new labels to point at versions not yet AVAILABLE",
    )
    flag("enable_grpc_healthcheck_service", bool, False, "serve grpc.health.v1.Health")
    flag("enable_serialization_as_tensor_content", bool, False, "predict outputs as tensor_content")
    flag(
        "enable_profiler",
        bool,
        False,
        "serve tensorflow.ProfilerService on the gRPC port (its backend listens on all "
        "interfaces, so off unless asked; upstream: on)",
    )
    flag(
        "prefer_tflite_model",
        bool,
        False,
        "serve a version's model.tflite with TF Lite instead of its saved_model.pb, if it has one",
    )
    flag("num_tflite_pools", int, schedulable_cpus(), "TF Lite interpreters per version")
    flag(
        "num_tflite_interpreters_per_pool",
        int,
        1,
        "accepted; upstream batches inside a TF Lite version when > 1, we do not",
    )
    # Accepted, as a CPU build of tensorflow_model_server accepts them, with nothing to do here:
    flag("per_process_gpu_memory_fraction", float, 0.0, "accepted; no GPU is used")
    flag("xla_cpu_compilation_enabled", bool, False, "accepted; XLA:CPU JIT is always on in TF")
    flag("xla_gpu_compilation_enabled", bool, False, "accepted; no GPU is used")
    flag("remove_unused_fields_from_bundle_metagraph", bool, True, "accepted; memory only")
    for name in UNSUPPORTED_FLAGS:
        parser.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"tfserve-nb {__version__}")
    extras = parser.add_argument_group("tfserve-nb extras")
    extras.add_argument(
        "--bind_address",
        default="127.0.0.1",
        help="interface both ports bind to (default 127.0.0.1)",
    )
    extras.add_argument(
        "--rest_api_max_request_body_bytes",
        type=int,
        default=1 << 30,
        help="REST bodies longer than this are answered 413 (default 1 GiB; 0: no cap)",
    )
    extras.add_argument(
        "--ephemeral_ports",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="bind both front-ends to free ports chosen by the OS",
    )
    extras.add_argument("--port_file", default="", help="write the bound ports here as JSON")
    extras.add_argument(
        "--exit_on_stdin_eof",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="exit when standard input closes",
    )
    extras.add_argument(
        "--parent_pid",
        type=int,
        default=0,
        help="exit when the process with this pid is gone (0: no such tie)",
    )
    return parser


@dataclass
class StartupError(Exception):
    """A flag combination ``tensorflow_model_server`` refuses; ``message`` is its text."""

    message: str


def check_flags(flags: argparse.Namespace) -> None:
    """Upstream's start-up checks, with its texts and in its order. (A REST port equal to the
    gRPC port is not one of them: upstream logs an error and serves gRPC only.) Then ours: a
    ``--grpc_channel_arguments`` item that is not ``key=value`` (upstream reads past its end)."""
    for name in UNSUPPORTED_FLAGS:
        if getattr(flags, name) is not None:
            raise StartupError(
                f"--{name} is a tensorflow_model_server flag the embedded server does not "
                "support; remove it, or use the docker backend (the real tensorflow/serving)"
            )
    if flags.port == 0 and not flags.ephemeral_ports and not flags.grpc_socket_path:
        raise StartupError(
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must "
            "be set."
        )
    if not flags.model_base_path and not flags.model_config_file:
        raise StartupError(
            "Both server_options.model_base_path and server_options.model_config_file are empty!"
        )
    if flags.batching_parameters_file and not flags.enable_batching:
        raise StartupError(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )
    if (
        flags.tensorflow_intra_op_parallelism > 0
        and flags.tensorflow_inter_op_parallelism > 0
        and flags.tensorflow_session_parallelism > 0
    ):
        raise StartupError(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure "
            "all."
        )
    try:
        parse_grpc_channel_arguments(flags.grpc_channel_arguments)
    except ChannelArgumentsError as exc:
        raise StartupError(str(exc)) from None


def read_model_configs(flags: argparse.Namespace) -> list[ModelConfig]:
    """The initial model list: the config file, or the single-model flags. An unreadable file
    raises NOT_FOUND ``<path>; <strerror>``, as TensorFlow's file system does."""
    if flags.model_config_file:
        try:
            with open(flags.model_config_file) as f:
                text = f.read()
        except OSError as exc:
            raise ServingStatusError(
                Code.NOT_FOUND, f"{flags.model_config_file}; {exc.strerror or exc}"
            ) from None
        return parse_config_file(text, flags.model_config_file)
    return [ModelConfig(flags.model_name, flags.model_base_path)]


def tensorflow_thread_pools(intra: int, inter: int, session: int) -> tuple[int, int]:
    """The intra- and inter-op pool sizes upstream's ``server.cc`` configures (0: TensorFlow's
    default): intra and inter as given when either is set, else both ``session``. (All three
    set is a start-up error, see :func:`check_flags`.)"""
    if intra > 0 or inter > 0:
        return intra, inter
    return session, session


def configure_tensorflow_threads(flags: argparse.Namespace) -> None:
    import tensorflow as tf

    intra, inter = tensorflow_thread_pools(
        flags.tensorflow_intra_op_parallelism,
        flags.tensorflow_inter_op_parallelism,
        flags.tensorflow_session_parallelism,
    )
    if intra > 0:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter > 0:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


YOUNG_GENERATION_THRESHOLD = 10_000
"""Allocations between two collections of the garbage collector's youngest generation (Python's
default: 700)."""


def tune_garbage_collector() -> None:
    """Make Python's cyclic garbage collector cheap for a server process; call it once the
    modules are imported, before models load.

    Importing TensorFlow, gRPC and protobuf leaves about 380,000 objects the collector tracks
    and would traverse again and again, though they live as long as the process: they are
    frozen (``gc.freeze``). Models loaded later stay collectable, so an unloaded version's
    memory is freed. Young collections run every :data:`YOUNG_GENERATION_THRESHOLD` allocations,
    so a request's short-lived containers (a row-format JSON image of 28x28x1 is 800 lists)
    mostly die before a collection sees them. With 64 concurrent REST requests for the image
    CNN this took the CPU per request from 2.9 to 1.3 ms (the same as one request at a time).
    """
    gc.freeze()
    _, *older = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *older)


def _write_port_file(path: str, grpc_port: int, rest_port: int) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"grpc_port": grpc_port, "rest_port": rest_port}, f)
    os.replace(tmp, path)


def configure_logging() -> None:
    """The server's log format on standard error, INFO and up (once per process)."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d: %(levelname).1s %(name)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )


def _startup_failure(code: str, message: str) -> int:
    """Print upstream's start-up failure line; the exit status is ``main``'s ``return -1``."""
    print(f"Failed to start server. Error: {code}: {message}", flush=True)
    return 255


def load_server_modules() -> None:
    """Import what serving needs, TensorFlow first (without the Keras it would import eagerly,
    see :mod:`.tensorflow_import`). :func:`run` calls it once the flags are checked; a standby
    child (:mod:`tfserve_nb.backends.standby`) calls it before its flags arrive."""
    import_tensorflow()
    from . import server  # noqa: F401  (the front-ends, the core, the servables)


def run(argv: Sequence[str] | None = None, shutdown: Shutdown | None = None) -> int:
    """Run the server until SIGTERM/SIGINT (or stdin EOF with ``--exit_on_stdin_eof``, the
    parent gone with ``--parent_pid``).

    ``shutdown``: the :class:`Shutdown` to use, when the process armed one before its flags
    came (a standby child, whose ties to its parent hold while it waits); default a new one.
    """
    flags = build_parser().parse_args(argv)
    configure_logging()
    try:
        check_flags(flags)
        configs = read_model_configs(flags)
    except StartupError as exc:
        return _startup_failure("INVALID_ARGUMENT", exc.message)
    except ConfigError as exc:
        return _startup_failure("INVALID_ARGUMENT", str(exc))
    except ServingStatusError as exc:
        return _startup_failure(exc.code.name, exc.message)
    # Armed before the heavy imports and the models load: a signal or a parent that dies while
    # we wait for AVAILABLE (a slow load, a base path with no version yet) must end us.
    shutdown = shutdown or Shutdown()
    shutdown.install_signal_handlers()
    if flags.parent_pid:
        shutdown.watch_parent(flags.parent_pid)
    if flags.exit_on_stdin_eof:
        shutdown.watch_stdin()
    load_server_modules()
    from .grpc.services import GrpcBindError
    from .server import Server

    configure_tensorflow_threads(flags)
    tune_garbage_collector()
    try:
        server = Server.build_and_start(flags, configs)
    except ServingStatusError as exc:
        return _startup_failure(exc.code.name, exc.message)
    except GrpcBindError as exc:
        log.error("%s", exc)
        return _startup_failure("INVALID_ARGUMENT", "Failed to BuildAndStart gRPC server")
    except OSError as exc:
        return _startup_failure("UNAVAILABLE", str(exc))
    shutdown.started()  # the ports are open: from now on a stop is graceful (closes them)
    if flags.port_file:
        _write_port_file(flags.port_file, server.grpc_port, server.rest_port)

    shutdown.wait()
    log.info("Shutting down the model server")
    shutdown.stop_within_deadline(server.stop)
    return 0


if __name__ == "__main__":
    sys.exit(run())
