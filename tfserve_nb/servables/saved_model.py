"""Loading a SavedModel version and running its signatures as TF Serving does.

:class:`SavedModelLoader` is the :class:`~tfserve_nb.core.loader.Loader` the source adapter makes
for each version path; its servable is a :class:`SavedModelServable`: upstream's
``SavedModelBundle``, a TensorFlow ``Session`` over the version's ``MetaGraphDef`` with its
variables restored and its init ops run, plus the signature descriptions read from
``saved_model.pb`` exactly as TF Serving reports them.

A signature runs as upstream's ``Session::Run`` runs it: the request's tensors are fed to the
graph tensors its input ``TensorInfo`` entries *name*, and the tensors its output entries name are
fetched (:class:`SignatureRunner`). Nothing else of a ``TensorInfo`` is used: its shapes and
dtypes are descriptions (TF 1.x exports such as upstream's ``saved_model_half_plus_three`` declare
ones that disagree with the graph), and TensorFlow's kernels decide what a tensor of another shape
does, with TensorFlow's codes and texts. Every SavedModel the TF 1.x loader reads loads: TF 1.x
graphs, TF 2 object-based exports (``tf.saved_model.save``) and Keras 3 ``model.export`` alike.

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
from ..protocol.signature import (
    NUMPY_DTYPES,
    Signature,
    dtype_name_of,
    dtype_string,
    signatures_from_meta_graph,
)
from .custom_ops import ops_registered_for


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


def _status_of(exc: Exception) -> ServingStatusError:
    """A TensorFlow error (or a feed numpy cannot convert) as a ServingStatusError with
    TensorFlow's code and text."""
    code = getattr(exc, "error_code", None)
    if code is not None:
        return ServingStatusError(Code(code), exc.message)  # type: ignore[attr-defined]
    return invalid_argument(str(exc))


class SignatureRunner:
    """One signature of a loaded version, run in the version's session by tensor name.

    The inputs are fed, in the order of their graph tensor names, to the tensors the signature's
    input ``TensorInfo`` entries name; the outputs asked for are fetched from the tensors its
    output entries name. Each set of fetched outputs is prepared once, as a
    ``Session::MakeCallable`` callable (upstream's ``Session::Run`` without Python's own feed
    checks, which refuse shapes that TensorFlow's kernels accept). Before a run, each input's
    dtype is checked against its graph tensor's with the text of TensorFlow's call frame
    (``Expects arg[0] to be float but int32 is provided``); nothing else is checked here.
    Thread-safe: callables may run concurrently.
    """

    def __init__(self, session: Any, signature: Signature) -> None:
        graph = session.graph
        self._session = session
        self._feeds = sorted(signature.inputs.values(), key=lambda spec: spec.tensor_name)
        self._feed_dtypes: list[str | None] = []
        for spec in self._feeds:
            try:
                dtype = graph.get_tensor_by_name(spec.tensor_name).dtype.as_datatype_enum
            except (KeyError, ValueError):  # a composite tensor, or a name not in the graph
                self._feed_dtypes.append(None)
                continue
            from tensorflow.core.framework import types_pb2

            self._feed_dtypes.append(types_pb2.DataType.Name(dtype))
        self._outputs = signature.outputs
        self._callables: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def __call__(
        self, inputs: Mapping[str, np.ndarray], aliases: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """The outputs named in ``aliases`` (all of them if ``None``) for ``inputs`` (one array
        per input alias). Raises ServingStatusError with TensorFlow's code and text."""
        names = tuple(self._outputs) if aliases is None else tuple(aliases)
        run = self._callables.get(names) or self._prepare(names)
        feeds = self.check_dtypes(inputs)
        try:
            outputs = run(*feeds)
        except (_tf().errors.OpError, TypeError, ValueError) as exc:
            raise _status_of(exc) from None
        # a 0-d output comes back as a numpy scalar: hand out arrays only
        return {
            name: out if type(out) is np.ndarray else np.asarray(out)
            for name, out in zip(names, outputs, strict=True)
        }

    def check_dtypes(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The feeds, in feed order, after checking each dtype against its graph tensor's.
        Raises INVALID_ARGUMENT ``Expects arg[i] to be float but int32 is provided``."""
        feeds = [inputs[spec.alias] for spec in self._feeds]
        for index, (array, dtype) in enumerate(zip(feeds, self._feed_dtypes, strict=True)):
            if dtype is not None and dtype in NUMPY_DTYPES and dtype_name_of(array) != dtype:
                raise invalid_argument(
                    f"Expects arg[{index}] to be {dtype_string(dtype)} but "
                    f"{dtype_string(dtype_name_of(array))} is provided"
                )
        return feeds

    def _prepare(self, names: tuple[str, ...]) -> Any:
        from tensorflow.core.protobuf import config_pb2

        with self._lock:
            run = self._callables.get(names)
            if run is not None:
                return run
            options = config_pb2.CallableOptions(
                feed=[spec.tensor_name for spec in self._feeds],
                fetch=[self._outputs[name].tensor_name for name in names],
            )
            try:
                run = self._session._make_callable_from_options(options)
            except _tf().errors.OpError as exc:
                raise _status_of(exc) from None
            self._callables[names] = run
            return run


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
        session_config: Any = None,
    ) -> None:
        from tensorflow.python.saved_model import loader_impl

        tf = _tf()
        self.path = path
        self.meta_graph = read_meta_graph(path, tags)
        self.signatures = signatures_from_meta_graph(self.meta_graph)
        self._session = tf.compat.v1.Session(graph=tf.Graph(), config=session_config)
        try:
            with self._session.graph.as_default(), ops_registered_for(self.meta_graph):
                loader_impl.SavedModelLoader(path).load(self._session, list(tags))
        except BaseException:
            self._session.close()
            raise
        self._runners = {
            key: SignatureRunner(self._session, signature)
            for key, signature in self.signatures.items()
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
        """Run ``signature`` on ``inputs`` (their names already checked against it) and return
        the outputs named in ``aliases``. TensorFlow errors become a ServingStatusError with
        TensorFlow's code and text; with batching, so do the batch scheduler's refusals
        (e.g. UNAVAILABLE when its queue is full), and a TensorFlow error fails every request
        of the batch it happened in."""
        runner = self._runners[signature.key]
        batching = self._batching
        if batching is None:
            return runner(inputs, aliases)
        runner.check_dtypes(inputs)  # a request TensorFlow would refuse fails alone, at once
        outputs = self._scheduler(signature.key, runner, batching).submit(inputs)
        return {alias: outputs[alias] for alias in aliases}

    def _scheduler(
        self, key: str, runner: SignatureRunner, batching: BatchingOptions
    ) -> BatchScheduler:
        """The signature's batch scheduler, created on first use."""
        scheduler = self._schedulers.get(key)
        if scheduler is not None:
            return scheduler
        with self._schedulers_lock:
            scheduler = self._schedulers.get(key)
            if scheduler is None:
                scheduler = BatchScheduler(
                    runner, batching.parameters, shared=batching.scheduler, metrics=batching.metrics
                )
                if self._closed:  # a request racing close() is refused by the closed queue
                    scheduler.close()
                self._schedulers[key] = scheduler
            return scheduler

    def close(self) -> None:
        """Close the batch schedulers (queued requests still run, new ones are refused:
        UNAVAILABLE), then the session. Call it once no request holds the servable (the manager
        unloads a version after its last handle is released). Idempotent."""
        with self._schedulers_lock:
            self._closed = True
            schedulers = list(self._schedulers.values())
        for scheduler in schedulers:
            scheduler.close()
        self._session.close()


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
