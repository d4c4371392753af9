"""Custom ops: the op libraries a model server has beside TensorFlow's own.

Upstream's ``tensorflow_model_server`` is linked with ``SUPPORTED_TENSORFLOW_OPS``
(``tensorflow_serving/model_servers/BUILD``), TF Text's ``ops_lib`` among them, so a SavedModel
using TF Text's ops (tokenizers, normalizers, ...) loads there. A Python process registers such
ops by importing the package that ships them; :data:`OP_PACKAGES` lists the ones we know
(``tensorflow_text``, from the ``tensorflow-text`` distribution, whose minor version must be
TensorFlow's; tfserve-nb's ``text`` extra installs it). None is a dependency of ours.

Contract of :func:`ops_registered_for`, the context manager a SavedModel's graph is imported
in (``SavedModelServable``):

- On entry, if every op type the ``MetaGraphDef`` uses (its graph's nodes and its function
  library's) is registered, nothing is imported. Otherwise each package of
  :data:`OP_PACKAGES` that is installed is imported, at most once per process (the first time
  a version needs an op TensorFlow lacks; later versions find the ops registered), so that its
  ops are registered before the graph is imported. A package that is not installed is skipped;
  one that fails to import is logged and remembered, and the load goes on. Thread-safe.
- In its body, TensorFlow's ``Op type not registered 'X' in binary running on HOST. Make sure
  the Op and Kernel are registered ...`` (``NotFoundError``; upstream's load fails with the
  same NOT_FOUND text) becomes a :class:`~tfserve_nb.core.status.ServingStatusError`
  NOT_FOUND with that text and a hint after it: for an op of a known package, that the package
  is not installed (with the ``pip install`` that matches the running TensorFlow), could not be
  imported (and why), or does not register that op (another version); for an op of no known
  package, which known packages are not installed. Other errors pass through unchanged.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..core.status import Code, ServingStatusError

log = logging.getLogger(__name__)

_UNREGISTERED_OP = re.compile(r"Op type not registered '([^']+)'")
"""TensorFlow's text for an op type not in its registry (``OpRegistry::LookUp``)."""


@dataclass(eq=False)
class OpPackage:
    """A Python package whose import registers custom ops. Which ops are its: those named in
    ``ops`` (its older ops, without a namespace) and those whose name starts with
    ``op_prefix`` (its namespaced ones, ``TFText>...``)."""

    module: str
    """The package to import (``tensorflow_text``)."""
    distribution: str
    """Its name on the package index (``tensorflow-text``)."""
    title: str
    """Its name in texts (``TF Text``)."""
    ops: frozenset[str]
    op_prefix: str
    extra: str
    """tfserve-nb's extra that installs it (``text``)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _imported: bool = field(default=False, init=False, repr=False)
    _import_error: str | None = field(default=None, init=False, repr=False)

    def owns(self, op: str) -> bool:
        """Whether ``op`` is one of this package's ops."""
        return op in self.ops or op.startswith(self.op_prefix)

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def register(self) -> None:
        """Import the package if it is installed and was not imported yet (once per process;
        a failure is logged and kept for :meth:`hint`, not raised). A package installed while
        the process runs is found by the next call."""
        with self._lock:
            if self._imported or self._import_error is not None:
                return
            importlib.invalidate_caches()  # the path finders' listings may predate an install
            if not self.installed():
                return
            try:
                importlib.import_module(self.module)
            except Exception as exc:  # a wheel built for another TensorFlow: undefined symbols
                self._import_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "%s's ops are not available: importing %s failed: %s",
                    self.title,
                    self.module,
                    self._import_error,
                )
                return
            self._imported = True
            log.info("Registered %s's ops (%s %s)", self.title, self.module, self._version())

    def install_command(self) -> str:
        """``pip install "tensorflow-text==2.21.*"``, for the running TensorFlow."""
        major, minor = _tf().__version__.split(".")[:2]
        return f'pip install "{self.distribution}=={major}.{minor}.*"'

    def hint(self, op: str) -> str:
        """What to do about ``op``, one of this package's ops that TensorFlow does not have."""
        if self._import_error is not None:
            return (
                f"'{op}' is an op of {self.title}: {self.distribution} is installed but "
                f"importing {self.module} failed ({self._import_error}); install the "
                f"{self.distribution} matching TensorFlow {_tf().__version__} "
                f"({self.install_command()}), then restart the model server"
            )
        if not self.installed():
            return (
                f"'{op}' is an op of {self.title}, whose package {self.distribution} is not "
                f"installed: {self.install_command()} in the model server's Python "
                f"environment (tfserve-nb's [{self.extra}] extra), then load the model again"
            )
        return (
            f"'{op}' is an op of {self.title} that the installed {self.distribution} "
            f"{self._version()} does not register: the model was saved with another version "
            f"of {self.distribution}"
        )

    def _version(self) -> str:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "(version unknown)"


TF_TEXT = OpPackage(
    module="tensorflow_text",
    distribution="tensorflow-text",
    title="TF Text",
    # TF Text 2.21's ops outside its ``TFText>`` namespace (test_custom_ops checks the list
    # against the installed package's op libraries).
    ops=frozenset(
        {
            "CaseFoldUTF8",
            "ConstrainedSequence",
            "FastBertNormalize",
            "FastWordpieceTokenizeWithOffsets",
            "FindSourceOffsets",
            "MaxSpanningTree",
            "NormalizeUTF8",
            "NormalizeUTF8WithOffsetsMap",
            "PhraseTokenize",
            "RegexSplitWithOffsets",
            "RougeL",
            "SentenceFragments",
            "SentenceFragmentsV2",
            "SentencepieceDetokenizeOp",
            "SentencepieceIdToStringOp",
            "SentencepieceOp",
            "SentencepieceStringToIdOp",
            "SentencepieceTokenizeOp",
            "SentencepieceTokenizeWithOffsetsOp",
            "SentencepieceVocabSizeOp",
            "SplitMergeTokenizeWithOffsets",
            "TokenizerFromLogits",
            "UnicodeScriptTokenizeWithOffsets",
            "WhitespaceTokenizeWithOffsets",
            "WordpieceTokenizeWithOffsets",
        }
    ),
    op_prefix="TFText>",
    extra="text",
)
"""TF Text (``tensorflow_text``): upstream links its ``ops_lib`` into the model server."""

OP_PACKAGES: tuple[OpPackage, ...] = (TF_TEXT,)
"""The custom-op packages registered for a graph that needs ops TensorFlow lacks."""


def _tf() -> Any:
    import tensorflow as tf

    return tf


def unregistered_ops(meta_graph: Any) -> set[str]:
    """The op types ``meta_graph`` (a ``MetaGraphDef``) uses, in its graph or its function
    library, that are not in TensorFlow's op registry (calls of the library's own functions
    are not ops)."""
    from tensorflow.python.framework import op_def_registry

    graph_def = meta_graph.graph_def
    functions = {function.signature.name for function in graph_def.library.function}
    used = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        used.update(node.op for node in function.node_def)
    return {op for op in used - functions if op_def_registry.get(op) is None}


def _hint(op: str) -> str | None:
    for package in OP_PACKAGES:
        if package.owns(op):
            return package.hint(op)
    missing = [package for package in OP_PACKAGES if not package.installed()]
    if not missing:
        return None
    return "; ".join(
        f"if '{op}' is an op of {package.title}, install {package.distribution}: "
        f"{package.install_command()}"
        for package in missing
    )


@contextlib.contextmanager
def ops_registered_for(meta_graph: Any) -> Iterator[None]:
    """Register the custom ops ``meta_graph`` needs, then import it in the body; an op still
    not registered fails the body with NOT_FOUND and what to install (see the module's
    docstring)."""
    if unregistered_ops(meta_graph):
        for package in OP_PACKAGES:
            package.register()
    try:
        yield
    except _tf().errors.NotFoundError as exc:
        match = _UNREGISTERED_OP.search(exc.message)
        hint = _hint(match.group(1)) if match else None
        if hint is None:
            raise
        raise ServingStatusError(Code.NOT_FOUND, f"{exc.message} {hint}.") from None
