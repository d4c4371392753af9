"""Importing TensorFlow for the model server, without the Keras it does not use.

``import tensorflow`` ends with an eager ``import keras.src.optimizers`` (TensorFlow's
``__init__``, "so that any function/method that needs to happen at load time will trigger").
That imports all of Keras 3 and, through it, scikit-learn, SciPy's statistics, pandas and
matplotlib: about 1.2 of the 4 s TensorFlow's import takes. Keras 3 registers nothing with
TensorFlow at import time (no revived types, no savers, no dispatchers), and the server only
runs SavedModels through ``tf.saved_model.load`` and TF Lite, so it skips that import.
``tf.keras`` stays TensorFlow's lazy loader: code that touches it still gets Keras, imported then.

Legacy Keras (``TF_USE_LEGACY_KERAS=1``: ``tf_keras``) does register its optimizers' revived
types at import time; with it TensorFlow is imported unchanged. ``TFSERVE_NB_LAZY_KERAS=0`` does
the same for Keras 3 (TensorFlow's own behaviour, for comparison and as an escape hatch).
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

__all__ = ["EAGER_KERAS_MODULE", "LAZY_KERAS_ENV", "import_tensorflow", "skips_eager_keras"]

EAGER_KERAS_MODULE = "keras.src.optimizers"
"""The module TensorFlow's ``__init__`` imports eagerly (with Keras 3) and ignores the
``ImportError`` of."""

LAZY_KERAS_ENV = "TFSERVE_NB_LAZY_KERAS"
"""Set to ``0`` to import TensorFlow as it imports itself (Keras included)."""


def skips_eager_keras() -> bool:
    """Whether :func:`import_tensorflow` skips TensorFlow's eager Keras import: with Keras 3
    (``TF_USE_LEGACY_KERAS`` not set) unless :data:`LAZY_KERAS_ENV` is ``0``."""
    legacy = os.environ.get("TF_USE_LEGACY_KERAS") in ("true", "True", "1")
    return not legacy and os.environ.get(LAZY_KERAS_ENV, "1") != "0"


def import_tensorflow() -> ModuleType:
    """Import TensorFlow (if not yet imported) and return it; see the module's docstring.

    Call it before anything imports a ``tensorflow`` module (the protos of ``tensorflow.core``
    and ``tensorflow_serving.apis`` import TensorFlow whole). The skip marks
    :data:`EAGER_KERAS_MODULE` as not importable for the duration of the import only: once it
    returns, importing Keras works as usual.
    """
    if "tensorflow" in sys.modules or not skips_eager_keras():
        import tensorflow

        return tensorflow
    blocked = EAGER_KERAS_MODULE not in sys.modules
    if blocked:
        sys.modules[EAGER_KERAS_MODULE] = None  # type: ignore[assignment]
    try:
        import tensorflow
    finally:
        if blocked and sys.modules.get(EAGER_KERAS_MODULE, ...) is None:
            del sys.modules[EAGER_KERAS_MODULE]
    return tensorflow
