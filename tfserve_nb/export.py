"""Keras model → a numbered SavedModel version that TF Serving can load.

::

    exported = export_model(model, "models/digits")      # → /abs/.../models/digits/1/

What :func:`export_model` guarantees about ``<base_path>/<version>/``:

- **Layout.** A SavedModel with one meta graph tagged ``serve``; the model's forward pass is the
  signature ``signature_name`` (method ``tensorflow/serving/predict``). Inputs are named after
  ``keras.Input(name=...)``; outputs are the keys of a dict output, otherwise ``output_0``,
  ``output_1``, ... (Keras 3's names). Optionally
  ``assets.extra/tf_serving_warmup_requests`` (a TFRecord of ``PredictionLog``).
- **Atomicity.** Everything is written into a sibling directory whose name is not an integer
  (``.tmp-export-<version>-<random>``, invisible to a polling server), checked, and only then
  renamed into place. A server never sees a half-written version.
- **Checked.** Before the rename the version is loaded back with the embedded server's own
  loader (``serve`` meta graph, ``tf.saved_model.load``): its ``SignatureDef`` must have the
  expected input and output names, and every warmup request must run through the signature (a
  failing warmup would make TF Serving refuse the version).
- **Nothing of yours is lost.** An existing version is replaced only with ``overwrite=True``:
  the old directory is renamed aside, the new one renamed in, then the old one deleted; if the
  second rename fails the old one is put back. Between those two renames (microseconds) the
  version is absent from the directory. On any failure the temporary directory is removed.

Not safe for two processes exporting automatically numbered versions into one base path at the
same time: both may pick the same number, and the second then fails with :class:`ExportError`.

TensorFlow and Keras are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ExportError
from .servables.signature import DEFAULT_SERVING_SIGNATURE_DEF_KEY, Signature, TensorSpec

if TYPE_CHECKING:
    from .servables.saved_model import SavedModelServable

__all__ = ["MAX_WARMUP_RECORDS", "WARMUP_FILE", "ExportedModel", "export_model"]

WARMUP_FILE = Path("assets.extra", "tf_serving_warmup_requests")
"""Where TF Serving looks for warmup requests, relative to a version directory."""

MAX_WARMUP_RECORDS = 1000
"""TF Serving replays at most this many warmup records."""

_TEMP_PREFIX = ".tmp-export-"
_REPLACED_PREFIX = ".tmp-replaced-"
_VERSION_NAME = re.compile(r"\s*[+-]?[0-9]+\s*")  # what TF Serving's safe_strto64 accepts


@dataclass(frozen=True, repr=False)
class ExportedModel:
    """One version written by :func:`export_model`.

    ``name`` is the base path's last component, the model name servers use by default;
    ``path`` is ``<base_path>/<version>``; both paths are absolute. ``signature`` describes the
    exported signature as written in the SavedModel.
    """

    name: str
    version: int
    path: Path
    base_path: Path
    signature: Signature

    def __repr__(self) -> str:
        return (
            f"ExportedModel(name={self.name!r}, version={self.version}, path='{self.path}', "
            f"signature={self.signature.key!r}, inputs={_describe_tensors(self.signature.inputs)},"
            f" outputs={_describe_tensors(self.signature.outputs)})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("model", html.escape(self.name)),
            ("version", str(self.version)),
            ("path", f"<code>{html.escape(str(self.path))}</code>"),
            ("signature", html.escape(self.signature.key)),
            ("inputs", _tensors_html(self.signature.inputs)),
            ("outputs", _tensors_html(self.signature.outputs)),
        ]
        body = "".join(
            f'<tr><th style="text-align:left">{head}</th><td style="text-align:left">{cell}</td>'
            "</tr>"
            for head, cell in rows
        )
        return f'<table class="tfserve-nb-exported-model">{body}</table>'


def _describe_tensors(tensors: Mapping[str, TensorSpec]) -> str:
    return "{" + ", ".join(f"{alias}: {spec.describe()}" for alias, spec in tensors.items()) + "}"


def _tensors_html(tensors: Mapping[str, TensorSpec]) -> str:
    return "<br>".join(
        f"{html.escape(alias)} <code>{html.escape(spec.describe())}</code>"
        for alias, spec in tensors.items()
    )


def export_model(
    model: Any,
    base_path: str | os.PathLike[str],
    version: int | None = None,
    *,
    overwrite: bool = False,
    warmup_examples: Any = None,
    signature_name: str = DEFAULT_SERVING_SIGNATURE_DEF_KEY,
) -> ExportedModel:
    """Export a built Keras 3 model as version ``version`` under ``base_path``.

    ``base_path`` is made absolute (TF Serving needs absolute paths) and created if missing.
    ``version`` defaults to one more than the highest existing version (directories whose names
    parse as integers: ``0001`` is 1, ``v1`` is not a version), or 1 if there is none. An
    existing version is replaced only with ``overwrite=True``.

    ``warmup_examples`` are written as TF Serving warmup requests: one request is a batch, given
    as an array (single-input models) or a dict input name → array; pass a list of those for
    several requests (at most :data:`MAX_WARMUP_RECORDS`). Arrays are cast to the signature's
    dtypes where numpy can do so without changing kind (float64 → float32, not float → int).

    With a ``signature_name`` other than ``serving_default``, Keras also registers the same
    function as ``serving_default``, so clients that name no signature still reach it.

    Raises :class:`ExportError` naming the problem and the fix: not a Keras model, a model never
    called, ``base_path`` a file, a bad or already existing ``version``, unusable warmup examples,
    or a SavedModel that does not read back as expected. On error nothing under ``base_path``
    changes (except that ``base_path`` itself may have been created).
    """
    keras_model = _check_model(model)
    number = _check_version(version)
    if not isinstance(signature_name, str) or not signature_name:
        raise ExportError(f"signature_name must be a non-empty string; got {signature_name!r}.")
    base = _prepare_base_path(base_path)
    input_signature = _input_signature(keras_model)
    requests = _as_request_list(warmup_examples)

    existing = _version_dirs(base)
    next_free = max([0, *existing]) + 1
    if number is None:
        number = next_free
    elif number in existing and not overwrite:
        raise ExportError(
            f"Version {number} of model {base.name!r} already exists at {existing[number][0]}. "
            f"Pass overwrite=True to replace it, or leave version=None to export it as version "
            f"{next_free}."
        )

    staged = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{number}-", dir=base))
    try:
        _write_saved_model(keras_model, input_signature, staged, signature_name)
        servable = _load(staged, signature_name)
        signature = servable.signatures[signature_name]
        _check_signature(signature, _expected_inputs(input_signature), _expected_outputs(model))
        warmup = [_warmup_inputs(i, request, signature) for i, request in enumerate(requests)]
        if warmup:
            _write_warmup(staged, warmup, base.name, signature_name)
            _run_warmup(servable, signature, warmup)
        del servable
        _move_into_place(staged, base / str(number), existing.get(number, []))
    except BaseException as exc:
        shutil.rmtree(staged, ignore_errors=True)
        if isinstance(exc, Exception) and not isinstance(exc, ExportError):
            raise ExportError(
                f"Could not export {_describe_model(keras_model)} as version {number} under "
                f"{base}: {type(exc).__name__}: {exc}"
            ) from exc
        raise
    return ExportedModel(base.name, number, base / str(number), base, signature)


# --- arguments -----------------------------------------------------------------------------------


def _check_model(model: Any) -> Any:
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


def _check_version(version: Any) -> int | None:
    """``version`` as an int (``None`` stays ``None``); non-integers and values < 1 are refused."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int | np.integer):
        raise ExportError(
            f"version must be a positive integer or None (next free version); got {version!r} "
            f"of type {type(version).__name__}."
        )
    if version < 1:
        raise ExportError(
            f"version must be a positive integer (TF Serving versions start at 1); got {version}."
        )
    return int(version)


def _prepare_base_path(base_path: str | os.PathLike[str]) -> Path:
    """The absolute base path, created if missing; :class:`ExportError` if it is not a directory."""
    base = Path(os.path.abspath(os.path.expanduser(os.fspath(base_path))))
    if base.exists() and not base.is_dir():
        raise ExportError(
            f"base_path {base} is a file, not a directory. Pass the directory that holds (or "
            f"will hold) the numbered version folders; it is created if missing."
        )
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Could not create base_path {base}: {exc}") from exc
    return base


def _version_dirs(base: Path) -> dict[int, list[Path]]:
    """Version number → the directories under ``base`` naming it (``1`` and ``0001`` both do)."""
    versions: dict[int, list[Path]] = {}
    for child in sorted(base.iterdir()):
        if child.is_dir() and _VERSION_NAME.fullmatch(child.name):
            versions.setdefault(int(child.name), []).append(child)
    return versions


def _describe_model(model: Any) -> str:
    return f"Keras model {model.name!r} ({type(model).__name__})"


def _input_signature(model: Any) -> Any:
    """The input specs Keras's own ``Model.export`` derives (names from ``keras.Input``)."""
    from keras.src.export.export_utils import get_input_signature

    try:
        return get_input_signature(model)
    except ValueError as exc:
        raise ExportError(
            f"{_describe_model(model)} has never been called, so its input shapes are unknown "
            f"({exc}). Call it once on a batch of real inputs, e.g. model(x[:1]), or train it, "
            f"then export."
        ) from exc


def _as_request_list(examples: Any) -> list[Any]:
    """``warmup_examples`` as a list of requests (each an array-like or a mapping)."""
    if examples is None:
        return []
    several = isinstance(examples, list | tuple) and all(
        isinstance(item, Mapping | np.ndarray) for item in examples
    )
    requests = list(examples) if several else [examples]
    if len(requests) > MAX_WARMUP_RECORDS:
        raise ExportError(
            f"{len(requests)} warmup examples given; TF Serving replays at most "
            f"{MAX_WARMUP_RECORDS}. Pass fewer (a handful of typical batch sizes is enough)."
        )
    return requests


# --- writing -------------------------------------------------------------------------------------


def _write_saved_model(
    model: Any, input_signature: Any, export_dir: Path, signature_name: str
) -> None:
    """Write ``model``'s forward pass as a SavedModel into the (empty) ``export_dir``."""
    from keras.export import ExportArchive

    archive = ExportArchive()
    archive.track_and_add_endpoint(signature_name, model, input_signature)
    archive.write_out(str(export_dir), verbose=False)


def _write_warmup(
    export_dir: Path, warmup: Sequence[Mapping[str, np.ndarray]], name: str, signature_name: str
) -> None:
    """Write one ``PredictionLog`` per request to ``export_dir / WARMUP_FILE``."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = export_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for inputs in warmup:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = name
            request.model_spec.signature_name = signature_name
            for alias, array in inputs.items():
                request.inputs[alias].CopyFrom(tf.make_tensor_proto(array))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def _move_into_place(staged: Path, target: Path, replaced: Sequence[Path]) -> None:
    """Rename ``staged`` to ``target`` after moving each of ``replaced`` aside, then delete those.

    If the final rename fails, the moved directories are renamed back before the error
    propagates.
    """
    aside: list[tuple[Path, Path]] = []
    try:
        for old in replaced:
            hidden = old.with_name(f"{_REPLACED_PREFIX}{old.name}-{secrets.token_hex(4)}")
            os.rename(old, hidden)
            aside.append((old, hidden))
        if target.exists():
            raise ExportError(
                f"{target} appeared while exporting (another export into the same base path?). "
                f"Export again, or pass an explicit version."
            )
        os.rename(staged, target)
    except BaseException:
        for old, hidden in reversed(aside):
            os.rename(hidden, old)
        raise
    for _, hidden in aside:
        shutil.rmtree(hidden, ignore_errors=True)


# --- reading back --------------------------------------------------------------------------------


def _load(export_dir: Path, signature_name: str) -> SavedModelServable:
    """``export_dir`` loaded the way the embedded server loads a version (``serve`` meta graph,
    ``tf.saved_model.load``); :class:`ExportError` if it lacks ``signature_name``."""
    from .servables.saved_model import SavedModelServable

    servable = SavedModelServable(str(export_dir))
    if signature_name not in servable.signatures:
        raise ExportError(
            f"The SavedModel written to {export_dir} has no signature {signature_name!r} (it has "
            f"{sorted(servable.signatures)}); TF Serving could not serve it."
        )
    return servable


def _expected_inputs(input_signature: Any) -> list[str | None]:
    """Input names the signature must have; ``None`` where Keras leaves the naming to TF."""
    import keras

    return [spec.name for spec in keras.tree.flatten(input_signature)]


def _expected_outputs(model: Any) -> list[str] | None:
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


def _check_signature(
    signature: Signature, inputs: Sequence[str | None], outputs: Sequence[str] | None
) -> None:
    """:class:`ExportError` unless ``signature`` has the expected inputs and outputs."""
    got_inputs, got_outputs = sorted(signature.inputs), sorted(signature.outputs)
    named = sorted(name for name in inputs if name is not None)
    if len(got_inputs) != len(inputs) or not set(named) <= set(got_inputs):
        raise ExportError(
            f"The exported signature {signature.key!r} has inputs {got_inputs}, but the model's "
            f"inputs are named {named}. Give every keras.Input a unique name made of letters, "
            f"digits and underscores."
        )
    if not got_outputs or (outputs is not None and got_outputs != sorted(outputs)):
        raise ExportError(
            f"The exported signature {signature.key!r} has outputs {got_outputs}; expected "
            f"{sorted(outputs or [])}. The model's outputs did not export as Keras 3 names them."
        )


def _warmup_inputs(index: int, request: Any, signature: Signature) -> dict[str, np.ndarray]:
    """Warmup request ``index`` as input alias → array of the signature's dtype and rank."""
    where = f"warmup example {index}"
    if not isinstance(request, Mapping):
        if len(signature.inputs) != 1:
            raise ExportError(
                f"{where} is a single array, but signature {signature.key!r} has inputs "
                f"{sorted(signature.inputs)}: pass a dict input name → array."
            )
        request = {next(iter(signature.inputs)): request}
    missing = sorted(set(signature.inputs) - set(request))
    extra = sorted(set(request) - set(signature.inputs))
    if missing or extra:
        raise ExportError(
            f"{where} has inputs {sorted(request)}; signature {signature.key!r} needs exactly "
            f"{sorted(signature.inputs)} (missing: {missing}, unknown: {extra})."
        )
    return {
        alias: _warmup_array(where, request[alias], spec)
        for alias, spec in signature.inputs.items()
    }


def _warmup_array(where: str, value: Any, spec: TensorSpec) -> np.ndarray:
    """``value`` cast to ``spec``'s dtype, with a shape ``spec`` accepts."""
    dtype = spec.numpy_dtype
    if dtype is None:
        raise ExportError(
            f"{where}: input {spec.alias!r} has dtype {spec.dtype}, which numpy cannot hold; "
            f"export without warmup_examples."
        )
    try:
        array = np.asarray(value).astype(dtype, casting="same_kind")
    except (TypeError, ValueError) as exc:
        raise ExportError(
            f"{where}: input {spec.alias!r} cannot be cast to {spec.describe()}: {exc}"
        ) from exc
    if spec.shape is not None and (
        array.ndim != len(spec.shape)
        or any(
            want is not None and want != got
            for want, got in zip(spec.shape, array.shape, strict=True)
        )
    ):
        raise ExportError(
            f"{where}: input {spec.alias!r} has shape {array.shape}; the signature expects "
            f"{spec.describe()} (the first dimension is the batch)."
        )
    return array


def _run_warmup(
    servable: SavedModelServable, signature: Signature, warmup: Sequence[Mapping[str, np.ndarray]]
) -> None:
    """Run every warmup request through ``signature``, as TF Serving does before serving."""
    from .core.status import ServingStatusError

    for index, inputs in enumerate(warmup):
        try:
            servable.run(signature, inputs, list(signature.outputs))
        except ServingStatusError as exc:
            raise ExportError(
                f"warmup example {index} fails when run through signature {signature.key!r} "
                f"(TF Serving would refuse to load this version): {exc}"
            ) from exc
