"""Loading a SavedModel version and running its signatures with TensorFlow.

:class:`SavedModelLoader` is the :class:`~tfserve_nb.core.loader.Loader` the source adapter makes
for each version path; its servable is a :class:`SavedModelServable`, which owns the loaded
object, the signature descriptions (read from ``saved_model.pb`` exactly as TF Serving reports
them) and one prepared callable per signature (:class:`SignatureFunction`).

With batching (``--enable_batching``, :class:`BatchingOptions`), a servable runs each signature
through a :class:`~tfserve_nb.batching.batch_scheduler.BatchScheduler` of its own, created on the
signature's first request and closed when the version unloads, so concurrent requests to one
(model, version, signature) are merged into one call; the server's batch threads are shared.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..batching.batch_scheduler import BatchScheduler, SharedBatchScheduler
from ..batching.batching_parameters import BatchingParameters, read_batching_parameters_file
from ..batching.metrics import BatchingMetrics
from ..core.loader import Loader
from ..core.status import Code, ServingStatusError, invalid_argument
from .signature import Signature, TensorSpec


def _tf() -> Any:
    import tensorflow as tf

    return tf


def read_meta_graph(path: str, tags: Sequence[str] = ("serve",)) -> Any:
    """The ``MetaGraphDef`` of the SavedModel at ``path`` whose tag set is ``tags``."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb_path = os.path.join(path, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    try:
        with open(pb_path, "rb") as f:
            saved_model.ParseFromString(f.read())
    except FileNotFoundError:
        raise ServingStatusError(
            Code.NOT_FOUND,
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}",
        ) from None
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return meta_graph
    found = [sorted(m.meta_info_def.tags) for m in saved_model.meta_graphs]
    raise ServingStatusError(
        Code.NOT_FOUND,
        f"Could not find meta graph def matching supplied tags: {{ {' '.join(tags)} }}. "
        f"To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
        f"`saved_model_cli` (found: {found})",
    )


def _tensor_spec(alias: str, info: Any) -> TensorSpec:
    from tensorflow.core.framework import types_pb2

    shape_proto = info.tensor_shape
    shape = (
        None
        if shape_proto.unknown_rank
        else tuple(None if d.size < 0 else d.size for d in shape_proto.dim)
    )
    return TensorSpec(alias, types_pb2.DataType.Name(info.dtype), shape, info.name)


def signatures_from_meta_graph(meta_graph: Any) -> dict[str, Signature]:
    """Framework-free descriptions of every signature in ``meta_graph`` (a ``MetaGraphDef``, or
    anything else with a ``signature_def`` map, such as a ``SignatureDefMap``)."""
    return {
        key: Signature(
            key,
            sig.method_name,
            {a: _tensor_spec(a, i) for a, i in sorted(sig.inputs.items())},
            {a: _tensor_spec(a, i) for a, i in sorted(sig.outputs.items())},
        )
        for key, sig in meta_graph.signature_def.items()
    }


class SignatureFunction:
    """A signature's ``ConcreteFunction``, prepared once per loaded version.

    Calling a ``ConcreteFunction`` with keyword arguments binds them to its ``FunctionType``
    and casts each to its ``TensorSpec`` on every call, about a quarter of a batch-1 call of a
    small model. Here the binding is done once: inputs are fed positionally, in the order the
    function flattens its keyword parameters (``function_type.parameters``), to its graph
    function (``inference_fn.call_flat``) with its captured variables, and the flat outputs
    are named once from ``function_type.pack_output``. Callers check inputs against the
    signature first (``predict_util``: names, dtypes and shapes), which is what the per-call
    cast would have checked. A function whose parameters or outputs are not plain tensors
    (composite tensors) is called the ordinary way. Thread-safe.
    """

    def __init__(self, fn: Any) -> None:
        tf = _tf()
        self._fn = fn
        self._constant = tf.constant
        self._op_error = tf.errors.OpError
        function_type = fn.function_type
        parameters = list(function_type.parameters.values())
        self._input_names = tuple(p.name for p in parameters)
        outputs = fn.structured_outputs
        self._flat = (
            len(parameters) == len(function_type.flat_inputs)
            and all(isinstance(p.type_constraint, tf.TensorSpec) for p in parameters)
            and isinstance(outputs, Mapping)
            and all(isinstance(spec, tf.TensorSpec) for spec in outputs.values())
        )
        self._output_names: tuple[str, ...] = ()
        if self._flat:
            packed = function_type.pack_output(list(range(len(outputs))))
            by_index = {index: name for name, index in packed.items()}
            self._output_names = tuple(by_index[i] for i in range(len(outputs)))
        self._call_flat = fn.inference_fn.call_flat

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output of the function on ``inputs`` (one array per parameter name).
        TensorFlow errors become a ServingStatusError with TensorFlow's code and text."""
        constant = self._constant
        try:
            if not self._flat:
                result = self._fn(**{k: constant(v) for k, v in inputs.items()})
                return {name: tensor.numpy() for name, tensor in result.items()}
            outputs = self._call_flat(
                *[constant(inputs[name]) for name in self._input_names],
                *self._fn.captured_inputs,
            )
        except self._op_error as exc:
            raise ServingStatusError(Code(exc.error_code), exc.message) from None
        except (TypeError, ValueError) as exc:
            raise invalid_argument(str(exc)) from None
        return {n: t.numpy() for n, t in zip(self._output_names, outputs, strict=True)}


PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"
"""A version's own ``BatchingParameters`` (text proto) in its SavedModel directory."""


@dataclass(frozen=True)
class BatchingOptions:
    """How servables batch their signatures (``--enable_batching``): upstream's
    ``BatchingParameters``, the server's shared pool of batch threads, and where batching
    measurements go (``None``: nowhere).

    With ``per_model`` (``--enable_per_model_batching_parameters``) each version batches with
    the parameters in its own :data:`PER_MODEL_BATCHING_FILE`, and a version without that file
    is not batched (upstream's ``GetPerModelBatchingParams``); see :meth:`for_version`."""

    parameters: BatchingParameters
    scheduler: SharedBatchScheduler
    metrics: BatchingMetrics | None = None
    per_model: bool = False

    def for_version(self, path: str) -> BatchingOptions | None:
        """The options a version at ``path`` batches with (``None``: not batched). Raises
        ServingStatusError for a per-model file that cannot be read or parsed (the load fails
        with it)."""
        if not self.per_model:
            return self
        params_file = os.path.join(path, PER_MODEL_BATCHING_FILE)
        if not os.path.exists(params_file):
            return None
        parameters = read_batching_parameters_file(params_file)
        return dataclasses.replace(self, parameters=parameters, per_model=False)


class SavedModelServable:
    """A loaded SavedModel version. Thread-safe: signatures may run concurrently.

    With ``batching``, :meth:`run` goes through one batch scheduler per signature until
    :meth:`close`.
    """

    def __init__(
        self,
        path: str,
        tags: Sequence[str] = ("serve",),
        batching: BatchingOptions | None = None,
    ) -> None:
        tf = _tf()
        self.path = path
        self.meta_graph = read_meta_graph(path, tags)
        self.signatures = signatures_from_meta_graph(self.meta_graph)
        self._loaded = tf.saved_model.load(path, tags=list(tags))
        self._functions = {
            key: SignatureFunction(fn)
            for key, fn in self._loaded.signatures.items()
            if key in self.signatures
        }
        self._batching = batching
        self._schedulers: dict[str, BatchScheduler] = {}
        self._schedulers_lock = threading.Lock()
        self._closed = False

    @property
    def signature_def_map(self) -> Any:
        """The ``signature_def`` protobuf map, as ``GetModelMetadata`` returns it."""
        return self.meta_graph.signature_def

    def run(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], aliases: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` on ``inputs`` (already checked against it) and return
        the outputs named in ``aliases``. TensorFlow errors become a ServingStatusError with
        TensorFlow's code and text; with batching, so do the batch scheduler's refusals
        (e.g. UNAVAILABLE when its queue is full), and a TensorFlow error fails every request
        of the batch it happened in."""
        fn = self._functions.get(signature.key)
        if fn is None:
            raise ServingStatusError(
                Code.UNIMPLEMENTED,
                f"Signature {signature.key} has no callable function in {self.path}",
            )
        batching = self._batching
        if batching is None:
            outputs = fn(inputs)
        else:
            outputs = self._scheduler(signature.key, fn, batching).submit(inputs)
        return {alias: outputs[alias] for alias in aliases}

    def _scheduler(
        self, key: str, fn: SignatureFunction, batching: BatchingOptions
    ) -> BatchScheduler:
        """The signature's batch scheduler, created on first use."""
        scheduler = self._schedulers.get(key)
        if scheduler is not None:
            return scheduler
        with self._schedulers_lock:
            scheduler = self._schedulers.get(key)
            if scheduler is None:
                scheduler = BatchScheduler(
                    fn, batching.parameters, shared=batching.scheduler, metrics=batching.metrics
                )
                if self._closed:  # a request racing close() is refused by the closed queue
                    scheduler.close()
                self._schedulers[key] = scheduler
            return scheduler

    def close(self) -> None:
        """Close the batch schedulers: queued requests still run, new ones are refused
        (UNAVAILABLE). Idempotent; a no-op without batching."""
        with self._schedulers_lock:
            self._closed = True
            schedulers = list(self._schedulers.values())
        for scheduler in schedulers:
            scheduler.close()


class SavedModelLoader(Loader):
    """Loads the SavedModel at ``path`` (tag set ``tags``) when the manager asks, batching its
    signatures with ``batching`` if given.

    ``warmup``, if given, is called with the loaded servable before :meth:`load` returns (e.g.
    to replay the version's warmup requests); if it raises, the servable is closed and the load
    fails with that error.
    """

    def __init__(
        self,
        path: str,
        tags: Sequence[str] = ("serve",),
        batching: BatchingOptions | None = None,
        warmup: Callable[[SavedModelServable], None] | None = None,
    ) -> None:
        self.path = path
        self.tags = tuple(tags)
        self.batching = batching
        self.warmup = warmup
        self._servable: SavedModelServable | None = None

    def load(self) -> None:
        batching = self.batching.for_version(self.path) if self.batching else None
        servable = SavedModelServable(self.path, self.tags, batching)
        if self.warmup is not None:
            try:
                self.warmup(servable)
            except BaseException:
                servable.close()
                raise
        self._servable = servable

    def unload(self) -> None:
        if self._servable is not None:
            self._servable.close()
        self._servable = None

    def servable(self) -> SavedModelServable:
        if self._servable is None:
            raise RuntimeError(f"SavedModel at {self.path} is not loaded")
        return self._servable
