"""``--batching_parameters_file``: TF Serving's ``BatchingParameters`` text proto.

The file is a text-format ``tensorflow.serving.BatchingParameters`` message (defined upstream in
``tensorflow_serving/servables/tensorflow/session_bundle_config.proto``; the message is not in the
``tensorflow-serving-api`` wheel, so its descriptor is built here, field for field, and the text
is parsed by protobuf's own ``text_format``)::

    max_batch_size { value: 64 }  batch_timeout_micros { value: 1000 }
    num_batch_threads { value: 2 }  max_enqueued_batches { value: 100 }
    allowed_batch_sizes: 16  allowed_batch_sizes: 64
    pad_variable_length_inputs: true

Defaults for fields left out are upstream's (``SharedBatchScheduler::Options`` / ``QueueOptions``
in ``tensorflow/core/kernels/batching_util/shared_batch_scheduler.h``, ``GetQueueOptions`` in
``servables/tensorflow/bundle_factory_util.h`` and ``model_servers/server.cc``):

=============================== ================================================================
``max_batch_size``              1000 (``QueueOptions::input_batch_size_limit``)
``batch_timeout_micros``        0 (a batch is formed as soon as a batch thread is free)
``max_enqueued_batches``        10; 0 is rewritten to 1 unless large-batch splitting is on
``num_batch_threads``           the number of CPUs this process may run on (``MaxParallelism``)
``thread_pool_name``            ``batch_threads``; ``model_server_batch_threads`` when
                                ``--enable_batching`` is given without a file
``enable_large_batch_splitting`` false
``max_execution_batch_size``    ``max_batch_size`` (used only with splitting)
``allowed_batch_sizes``         empty: no padding
``pad_variable_length_inputs``  false
=============================== ================================================================

Validation follows upstream, with upstream's texts (all ``INVALID_ARGUMENT``): the last
``allowed_batch_sizes`` entry must equal ``max_batch_size`` (``WrapSessionForBatching``; like the
model server, the entries are *not* required to increase: padding goes to the first entry that is
large enough), ``num_batch_threads``, ``max_batch_size`` and ``max_enqueued_batches`` positive,
``batch_timeout_micros`` non-negative, and with splitting ``max_batch_size >=
max_execution_batch_size``. Upstream checks all but ``num_batch_threads`` when a model version
loads; here everything is checked when the parameters are read, so a bad file stops the server
at start-up. Negative sizes, which upstream silently wraps to huge unsigned values, are rejected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)
from google.protobuf.message import Message

from tfserve_nb.core.status import Code, ServingStatusError, invalid_argument

__all__ = [
    "DEFAULT_THREAD_POOL_NAME",
    "MODEL_SERVER_THREAD_POOL_NAME",
    "BatchingParameters",
    "batching_parameters_for_server",
    "parse_batching_parameters",
    "read_batching_parameters_file",
]

DEFAULT_THREAD_POOL_NAME = "batch_threads"
"""``SharedBatchScheduler::Options::thread_pool_name``: used when the file names no pool."""

MODEL_SERVER_THREAD_POOL_NAME = "model_server_batch_threads"
"""The pool name ``model_servers/server.cc`` sets when batching is on without a parameters file."""


def _build_batching_parameters_proto() -> type[Message]:
    """The ``tensorflow.serving.BatchingParameters`` message class, built from its descriptor.

    Field names, numbers and types are upstream's. The descriptor lives in a private pool so it
    cannot clash with another registration of the same proto in the default pool.
    """
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = file.message_type.add(name="BatchingParameters")
    f = descriptor_pb2.FieldDescriptorProto
    int64, string, boolean = (
        ".google.protobuf.Int64Value",
        ".google.protobuf.StringValue",
        ".google.protobuf.BoolValue",
    )
    for name, number, wrapper in (
        ("max_batch_size", 1, int64),
        ("batch_timeout_micros", 2, int64),
        ("max_enqueued_batches", 3, int64),
        ("num_batch_threads", 4, int64),
        ("thread_pool_name", 5, string),
        ("enable_large_batch_splitting", 8, boolean),
        ("max_execution_batch_size", 9, int64),
    ):
        message.field.add(
            name=name,
            number=number,
            type=f.TYPE_MESSAGE,
            type_name=wrapper,
            label=f.LABEL_OPTIONAL,
        )
    message.field.add(
        name="allowed_batch_sizes", number=6, type=f.TYPE_INT64, label=f.LABEL_REPEATED
    )
    message.field.add(
        name="pad_variable_length_inputs", number=7, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL
    )
    pool.AddSerializedFile(file.SerializeToString())
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


_BatchingParametersProto = _build_batching_parameters_proto()


def default_num_batch_threads() -> int:
    """Upstream's ``port::MaxParallelism()``: the CPUs this process may be scheduled on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BatchingParameters:
    """Resolved batching parameters: every field holds the value in effect.

    Constructing one validates it (``ServingStatusError(INVALID_ARGUMENT)`` with upstream's text)
    and applies upstream's rewrite of ``max_enqueued_batches: 0`` to 1 when large-batch splitting
    is off. Immutable, so one instance may be shared by every scheduler and thread.
    """

    max_batch_size: int = 1000
    """Largest request accepted, and (without splitting) largest batch formed."""
    batch_timeout_micros: int = 0
    """How long the oldest task of a non-full batch may wait for company before it runs."""
    max_enqueued_batches: int = 10
    """Batches (the open one included) a queue may hold before ``submit`` answers UNAVAILABLE."""
    num_batch_threads: int = field(default_factory=default_num_batch_threads)
    """Threads that run batches, shared by every queue of one ``SharedBatchScheduler``."""
    thread_pool_name: str = DEFAULT_THREAD_POOL_NAME
    """Name prefix of the batch threads."""
    enable_large_batch_splitting: bool = False
    """Split a task across batches when it does not fit the open batch."""
    max_execution_batch_size: int | None = None
    """Largest batch formed when splitting; ``None`` means ``max_batch_size``."""
    allowed_batch_sizes: tuple[int, ...] = ()
    """Sizes a batch is padded up to (the first entry at least as large); empty: no padding."""
    pad_variable_length_inputs: bool = False
    """Pad non-batch dimensions of merged tensors up to the largest in the batch."""

    def __post_init__(self) -> None:
        if self.num_batch_threads < 1:
            raise invalid_argument(
                f"num_batch_threads must be positive; was {self.num_batch_threads}"
            )
        if self.allowed_batch_sizes and self.allowed_batch_sizes[-1] != self.max_batch_size:
            raise invalid_argument(
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{self.allowed_batch_sizes[-1]}; expected {self.max_batch_size}"
            )
        if self.max_enqueued_batches == 0 and not self.enable_large_batch_splitting:
            # SharedBatchScheduler::AddQueue keeps low-traffic models that set 0 working.
            object.__setattr__(self, "max_enqueued_batches", 1)
        if self.max_batch_size <= 0:
            raise invalid_argument(
                f"input_batch_size_limit must be positive; was {self.max_batch_size}"
            )
        if self.batch_timeout_micros < 0:
            raise invalid_argument(
                f"batch_timeout_micros must be non-negative; was {self.batch_timeout_micros}"
            )
        if self.max_enqueued_batches <= 0:
            raise invalid_argument(
                f"max_enqueued_batches must be positive; was {self.max_enqueued_batches}"
            )
        if self.enable_large_batch_splitting:
            if self.execution_batch_size_limit <= 0:
                raise invalid_argument(
                    "max_execution_batch_size must be positive; was "
                    f"{self.execution_batch_size_limit}"
                )
            if self.max_batch_size < self.execution_batch_size_limit:
                # Upstream appends the three values to the sentence without separators.
                raise invalid_argument(
                    "When enable_large_batch_splitting is true, input_batch_size_limit must be "
                    "greater than or equal to max_execution_batch_size."
                    f"1{self.max_batch_size}{self.execution_batch_size_limit}"
                )

    @property
    def execution_batch_size_limit(self) -> int:
        """Largest batch handed to ``process_batch`` before padding (upstream's
        ``Queue::max_execution_batch_size()``)."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size is not None:
            return self.max_execution_batch_size
        return self.max_batch_size


def parse_batching_parameters(text: str, *, source: str = "<string>") -> BatchingParameters:
    """Parse a text-format ``BatchingParameters`` message and resolve it.

    ``source`` names the text in the error upstream gives for a syntax error or an unknown
    field: INVALID_ARGUMENT ``Invalid protobuf file: '<source>'`` (the parser's own complaint is
    chained as ``__cause__``). Invalid values raise as described in :class:`BatchingParameters`.
    """
    proto = _BatchingParametersProto()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as e:
        raise invalid_argument(f"Invalid protobuf file: '{source}'") from e
    values: dict[str, object] = {
        "allowed_batch_sizes": tuple(proto.allowed_batch_sizes),  # type: ignore[attr-defined]
        "pad_variable_length_inputs": proto.pad_variable_length_inputs,  # type: ignore[attr-defined]
    }
    for name in (
        "max_batch_size",
        "batch_timeout_micros",
        "max_enqueued_batches",
        "num_batch_threads",
        "thread_pool_name",
        "enable_large_batch_splitting",
        "max_execution_batch_size",
    ):
        if proto.HasField(name):
            values[name] = getattr(proto, name).value
    return BatchingParameters(**values)  # type: ignore[arg-type]


def read_batching_parameters_file(path: str | os.PathLike[str]) -> BatchingParameters:
    """Read and parse a ``--batching_parameters_file``.

    A missing or unreadable file raises NOT_FOUND / FAILED_PRECONDITION naming the path; bad
    contents raise as :func:`parse_batching_parameters`.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ServingStatusError(Code.NOT_FOUND, f"{path}; No such file or directory") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ServingStatusError(
            Code.FAILED_PRECONDITION, f"Could not read batching parameters file {path}: {e}"
        ) from e
    return parse_batching_parameters(text, source=str(path))


def batching_parameters_for_server(
    enable_batching: bool, batching_parameters_file: str | None
) -> BatchingParameters | None:
    """What ``tensorflow_model_server`` makes of ``--enable_batching`` and
    ``--batching_parameters_file`` (``model_servers/server.cc``).

    Returns ``None`` when batching is off; defaults with the pool named
    ``model_server_batch_threads`` when it is on without a file; the file's parameters otherwise.
    A file without the flag is INVALID_ARGUMENT, with upstream's text.
    """
    if not enable_batching:
        if batching_parameters_file:
            raise invalid_argument(
                "server_options.batching_parameters_file is set without setting "
                "server_options.enable_batching to true."
            )
        return None
    if not batching_parameters_file:
        return BatchingParameters(thread_pool_name=MODEL_SERVER_THREAD_POOL_NAME)
    return read_batching_parameters_file(batching_parameters_file)
