"""What an export needs to know of the Keras model: that it is one and was built, how to name
it in an error, its input signature, and the input and output names its SignatureDef must have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ExportError


def check_model(model: Any) -> Any:
    """``model`` itself if it is a Keras 3 model, else :class:`ExportError` naming its type."""
    import keras

    if not isinstance(model, keras.Model):
        kind = type(model)
        raise ExportError(
            f"export_model needs a Keras 3 model (keras.Model); got {kind.__module__}."
            f"{kind.__qualname__}. Build the model with Keras 3 (`import keras`); a plain "
            f"tf.Module can be written with tf.saved_model.save into <base_path>/<version>/."
        )
    return model


def describe_model(model: Any) -> str:
    return f"Keras model {model.name!r} ({type(model).__name__})"


def model_input_signature(model: Any) -> Any:
    """The input specs Keras's own ``Model.export`` derives (names from ``keras.Input``)."""
    from keras.src.export.export_utils import get_input_signature

    try:
        return get_input_signature(model)
    except ValueError as exc:
        raise ExportError(
            f"{describe_model(model)} has never been called, so its input shapes are unknown "
            f"({exc}). Call it once on a batch of real inputs, e.g. model(x[:1]), or train it, "
            f"then export."
        ) from exc


def expected_inputs(input_signature: Any) -> list[str | None]:
    """Input names the signature must have; ``None`` where Keras leaves the naming to TF."""
    import keras

    return [spec.name for spec in keras.tree.flatten(input_signature)]


def expected_outputs(model: Any) -> list[str] | None:
    """Output aliases Keras 3 gives a functional model: a flat dict's keys, else ``output_<i>``.

    ``None`` (no expectation) when the output structure is unknown before tracing (subclassed
    models) or nested.
    """
    import keras

    try:
        structure = model.output
    except (AttributeError, ValueError):
        return None
    if isinstance(structure, Mapping):
        items, aliases = list(structure.values()), sorted(structure)
    else:
        items = list(structure) if isinstance(structure, list | tuple) else [structure]
        aliases = [f"output_{i}" for i in range(len(items))]
    return None if any(keras.tree.is_nested(item) for item in items) else aliases
