"""A stand-in servable for the classify, regress and multi-inference runners: real
``SignatureDef`` protos, outputs chosen by the test, and a record of every run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.protocol.signature import (
    CLASSIFY_METHOD_NAME,
    REGRESS_METHOD_NAME,
    signatures_from_meta_graph,
)


def signature_def(
    inputs: Mapping[str, str] = {"inputs": "DT_STRING"},
    outputs: Mapping[str, str] = {"scores": "DT_FLOAT"},
    method_name: str = CLASSIFY_METHOD_NAME,
) -> Any:
    """A ``SignatureDef`` with ``alias → dtype name`` inputs and outputs (tensors named
    ``<alias>:0``, shapes ``[-1, 2]``)."""
    sig = meta_graph_pb2.SignatureDef(method_name=method_name)
    for target, specs in ((sig.inputs, inputs), (sig.outputs, outputs)):
        for alias, dtype in specs.items():
            target[alias].name = f"{alias}:0"
            target[alias].dtype = types_pb2.DataType.Value(dtype)
            target[alias].tensor_shape.dim.add(size=-1)
            target[alias].tensor_shape.dim.add(size=2)
    return sig


def classify_signature(**outputs: str) -> Any:
    return signature_def(outputs=outputs or {"scores": "DT_FLOAT"})


def regress_signature() -> Any:
    return signature_def(outputs={"outputs": "DT_FLOAT"}, method_name=REGRESS_METHOD_NAME)


@dataclass
class FakeServable:
    """``signature_def_map``/``signatures`` from ``signature_defs``; ``run`` returns
    ``outputs[signature key]`` (only the aliases asked for) and appends ``(key, inputs,
    aliases)`` to ``runs``."""

    signature_defs: Mapping[str, Any]
    outputs: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    runs: list[tuple[str, dict[str, np.ndarray], list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        meta_graph = meta_graph_pb2.MetaGraphDef()
        for key, sig in self.signature_defs.items():
            meta_graph.signature_def[key].CopyFrom(sig)
        self.signature_def_map = meta_graph.signature_def
        self.signatures = signatures_from_meta_graph(meta_graph)

    def run(
        self, signature: Any, inputs: Mapping[str, np.ndarray], aliases: Sequence[str]
    ) -> dict[str, np.ndarray]:
        self.runs.append((signature.key, dict(inputs), list(aliases)))
        return {alias: self.outputs[signature.key][alias] for alias in aliases}


def strings(*rows: Sequence[str]) -> np.ndarray:
    """A 2-D object array of ``bytes``, as TensorFlow returns string tensors."""
    array = np.empty((len(rows), len(rows[0])), dtype=object)
    array[:] = [[s.encode() for s in row] for row in rows]
    return array


def invalid(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The INVALID_ARGUMENT message ``call(*args, **kwargs)`` raises."""
    with pytest.raises(ServingStatusError) as exc:
        call(*args, **kwargs)
    assert exc.value.code is Code.INVALID_ARGUMENT, exc.value
    return exc.value.message
