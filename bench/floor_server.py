"""The transport floor: the embedded model server with its models replaced by canned answers.

``python -m bench.floor_server <tensorflow_model_server flags>`` starts exactly what
``python -m tfserve_nb.model_server`` starts — the same :class:`~tfserve_nb.model_server.server.
Server`, gRPC servicers, REST handler and HTTP server, ServerCore, manager and request checks —
except that each version's loader is a :class:`CannedLoader`: it reads the SavedModel's
signatures (so requests are checked as usual) but loads no TensorFlow function, and answers
every request with zeros of the signature's output shapes. What the floor costs is what the
server costs without the model call.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfserve_nb.core.loader import Loader
from tfserve_nb.core.servable_id import ServableId
from tfserve_nb.model_server import main as model_server_main
from tfserve_nb.model_server.server import Server
from tfserve_nb.protocol.signature import Signature, TensorSpec, signatures_from_meta_graph
from tfserve_nb.servables.saved_model import read_meta_graph


class CannedServable:
    """A SavedModel version's signatures, answered with zeros (built once per batch size)."""

    def __init__(self, path: str) -> None:
        self.meta_graph = read_meta_graph(path)
        self.signatures = signatures_from_meta_graph(self.meta_graph)
        self._answers: dict[tuple[str, int], dict[str, np.ndarray]] = {}

    @property
    def signature_def_map(self) -> Any:
        return self.meta_graph.signature_def

    def run(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], aliases: Sequence[str]
    ) -> dict[str, np.ndarray]:
        rows = len(next(iter(inputs.values())))
        answer = self._answers.get((signature.key, rows))
        if answer is None:
            answer = {alias: _zeros(spec, rows) for alias, spec in signature.outputs.items()}
            self._answers[(signature.key, rows)] = answer
        return {alias: answer[alias] for alias in aliases}


def _zeros(spec: TensorSpec, rows: int) -> np.ndarray:
    """Zeros shaped like ``spec`` with ``rows`` in dimension 0 (other unknown dimensions: 1)."""
    dims = [d or 1 for d in (spec.shape or ())[1:]]
    return np.zeros((rows, *dims), spec.numpy_dtype)


class CannedLoader(Loader):
    """Loads a :class:`CannedServable` for the version at ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._servable: CannedServable | None = None

    def load(self) -> None:
        self._servable = CannedServable(self.path)

    def unload(self) -> None:
        self._servable = None

    def servable(self) -> CannedServable:
        if self._servable is None:
            raise RuntimeError(f"{self.path} is not loaded")
        return self._servable


def _canned_loader(_id: ServableId, path: str) -> Loader:
    return CannedLoader(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; flags as ``tensorflow_model_server``'s (``--port_file``
    receives the bound ports)."""
    flags = model_server_main.build_parser().parse_args(argv)
    model_server_main.check_flags(flags)
    model_server_main.tune_garbage_collector()  # as the model server does
    server = Server.build_and_start(
        flags, model_server_main.read_model_configs(flags), _canned_loader
    )
    tmp = f"{flags.port_file}.tmp"
    with open(tmp, "w") as f:
        json.dump({"grpc_port": server.grpc_port, "rest_port": server.rest_port}, f)
    os.replace(tmp, flags.port_file)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
