"""Loading a SavedModel version and running its signatures — the one serving module that
imports TensorFlow.

:class:`SavedModelLoader` is the :class:`~tfserve_nb.core.loader.Loader` the source adapter makes
for each version path; its servable is a :class:`SavedModelServable`, which owns the loaded
object, the signature descriptions (read from ``saved_model.pb`` exactly as TF Serving reports
them) and one prepared callable per signature.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
    """Framework-free descriptions of every signature in ``meta_graph``."""
    return {
        key: Signature(
            key,
            sig.method_name,
            {a: _tensor_spec(a, i) for a, i in sorted(sig.inputs.items())},
            {a: _tensor_spec(a, i) for a, i in sorted(sig.outputs.items())},
        )
        for key, sig in meta_graph.signature_def.items()
    }


class SavedModelServable:
    """A loaded SavedModel version. Thread-safe: signatures may run concurrently."""

    def __init__(self, path: str, tags: Sequence[str] = ("serve",)) -> None:
        tf = _tf()
        self.path = path
        self.meta_graph = read_meta_graph(path, tags)
        self.signatures = signatures_from_meta_graph(self.meta_graph)
        self._loaded = tf.saved_model.load(path, tags=list(tags))
        self._functions = {
            key: fn for key, fn in self._loaded.signatures.items() if key in self.signatures
        }

    @property
    def signature_def_map(self) -> Any:
        """The ``signature_def`` protobuf map, as ``GetModelMetadata`` returns it."""
        return self.meta_graph.signature_def

    def run(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], aliases: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` on ``inputs`` (already checked against it) and return
        the outputs named in ``aliases``. TensorFlow errors become a ServingStatusError with
        TensorFlow's code and text."""
        tf = _tf()
        fn = self._functions.get(signature.key)
        if fn is None:
            raise ServingStatusError(
                Code.UNIMPLEMENTED,
                f"Signature {signature.key} has no callable function in {self.path}",
            )
        try:
            result = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as exc:
            raise ServingStatusError(Code(exc.error_code), exc.message) from None
        except (TypeError, ValueError) as exc:
            raise invalid_argument(str(exc)) from None
        return {alias: result[alias].numpy() for alias in aliases}


class SavedModelLoader(Loader):
    """Loads the SavedModel at ``path`` (tag set ``tags``) when the manager asks."""

    def __init__(self, path: str, tags: Sequence[str] = ("serve",)) -> None:
        self.path = path
        self.tags = tuple(tags)
        self._servable: SavedModelServable | None = None

    def load(self) -> None:
        self._servable = SavedModelServable(self.path, self.tags)

    def unload(self) -> None:
        self._servable = None

    def servable(self) -> SavedModelServable:
        if self._servable is None:
            raise RuntimeError(f"SavedModel at {self.path} is not loaded")
        return self._servable
