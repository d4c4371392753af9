"""Keras model → a numbered SavedModel version that TF Serving can load.

::

    exported = export_model(model, "models/digits")      # → /abs/.../models/digits/1/

What :func:`export_model` guarantees about ``<base_path>/<version>/``:

- **Layout.** A SavedModel with one meta graph tagged ``serve``; the model's forward pass is the
  signature ``signature_name`` (method ``tensorflow/serving/predict``). Inputs are named after
  ``keras.Input(name=...)``; outputs are the keys of a dict output, otherwise ``output_0``,
  ``output_1``, ... (Keras 3's names). Optionally
  ``assets.extra/tf_serving_warmup_requests`` (a TFRecord of ``PredictionLog``), and
  classification and regression signatures over serialized ``tf.Example``
  (:class:`ClassifySignature`, :class:`RegressSignature`) for TF Serving's ``Classify``,
  ``Regress`` and ``MultiInference`` APIs and REST ``:classify`` / ``:regress``::

      export_model(model, "models/iris", signatures={
          "classification": ClassifySignature(["setosa", "versicolor", "virginica"])})
- **Atomicity.** Everything is written into a sibling directory whose name is not an integer
  (``.tmp-export-<version>-<writer>-<random>``, invisible to a polling server), checked, and
  only then renamed into place. A server never sees a half-written version. An export that was
  killed leaves its directory behind; the next export into the base path removes those whose
  writer process (named by pid and start time in ``<writer>``) is gone — never one a live
  export is writing, nor one of another host or user.
- **Readable by other users.** Directories and files are created as the umask says (0755 and
  0644 under the usual 022), so a server running as another user (``docker --user``, a service
  account) can read them.
- **Checked.** Before the rename the version is loaded back with the embedded server's own
  loader (``serve`` meta graph, ``tf.saved_model.load``): its ``SignatureDef`` must have the
  expected input and output names, every warmup request must run through the signature (a
  failing warmup would make TF Serving refuse the version), and every classification or
  regression signature must pass TF Serving's own checks of that API, method name included.
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
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .core.servable_id import parse_version_number
from .errors import ExportError
from .processes import owned_temp_dir, remove_abandoned
from .protocol.signature import (
    CLASSIFY_METHOD_NAME,
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    REGRESS_METHOD_NAME,
    Signature,
    TensorSpec,
)

if TYPE_CHECKING:
    from .servables.saved_model import SavedModelServable

__all__ = [
    "MAX_WARMUP_RECORDS",
    "WARMUP_FILE",
    "ClassifySignature",
    "ExportedModel",
    "RegressSignature",
    "export_model",
]

WARMUP_FILE = Path("assets.extra", "tf_serving_warmup_requests")
"""Where TF Serving looks for warmup requests, relative to a version directory."""

MAX_WARMUP_RECORDS = 1000
"""TF Serving replays at most this many warmup records."""

_TEMP_PREFIX = ".tmp-export-"
_REPLACED_PREFIX = ".tmp-replaced-"


@dataclass(frozen=True)
class ClassifySignature:
    """A classification signature for :func:`export_model`'s ``signatures``: what TF Serving's
    ``Classify`` and REST ``:classify`` answer with.

    Input ``inputs``: a batch of serialized ``tf.Example`` (DT_STRING ``[?]``), one feature per
    model input, named like its ``keras.Input`` and holding its values (float inputs as a
    ``float_list``, integer and bool inputs as an ``int64_list``, string inputs as a
    ``bytes_list``; multi-dimensional inputs flattened). Outputs: ``scores``, the model's single
    output as DT_FLOAT ``[?, num_classes]``, and with ``class_names`` also ``classes``, those
    names (DT_STRING ``[?, num_classes]``). A model ending in one sigmoid unit, given two class
    names, is scored ``[1 - p, p]``. Method: ``tensorflow/serving/classify``.
    """

    class_names: Sequence[str] | None = None
    method_name: ClassVar[str] = CLASSIFY_METHOD_NAME

    def _output_aliases(self) -> list[str]:
        return ["classes", "scores"] if self.class_names is not None else ["scores"]

    def _check(self, where: str, output_shape: tuple[int | None, ...]) -> None:
        """:class:`ExportError` unless the model's per-example output shape suits."""
        names = self.class_names
        if names is not None and (
            isinstance(names, str | bytes) or not all(isinstance(n, str) for n in names)
        ):
            raise ExportError(
                f"{where}: class_names must be a list of strings, one per model output unit; "
                f"got {names!r}."
            )
        if len(output_shape) != 1:
            raise ExportError(
                f"{where}: the model's output has shape {('?', *output_shape)}; a classifier "
                f"needs one score per class, [?, num_classes]."
            )
        width = output_shape[0]
        if names is not None and width is not None and width != len(names) and width != 1:
            raise ExportError(
                f"{where}: the model outputs {width} scores per example but {len(names)} "
                f"class_names are given; give one name per output unit."
            )
        if names is not None and width == 1 and len(names) != 2:
            raise ExportError(
                f"{where}: the model outputs one score per example (a sigmoid unit), which "
                f"scores two classes [1 - p, p]; give two class_names, not {len(names)}."
            )

    def _outputs(self, output: Any) -> dict[str, Any]:
        """The signature's outputs from the model's output tensor (TensorFlow graph code)."""
        import tensorflow as tf

        scores = tf.cast(output, tf.float32)
        if self.class_names is None:
            return {"scores": scores}
        if len(self.class_names) == 2 and scores.shape[-1] == 1:
            scores = tf.concat([1.0 - scores, scores], axis=1)
        classes = tf.tile(tf.constant([list(self.class_names)]), [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    def _check_served(self, signature_def: Any) -> None:
        """TF Serving's own structural checks of a classification signature."""
        from .servables.classifier import pre_process_classification

        pre_process_classification(signature_def, method_name_check=True)


@dataclass(frozen=True)
class RegressSignature:
    """A regression signature for :func:`export_model`'s ``signatures``: what TF Serving's
    ``Regress`` and REST ``:regress`` answer with.

    Input ``inputs``: a batch of serialized ``tf.Example``, as for :class:`ClassifySignature`.
    Output ``outputs``: the model's single output, one value per example, as DT_FLOAT ``[?]``
    or ``[?, 1]`` (the model's shape). Method: ``tensorflow/serving/regress``.
    """

    method_name: ClassVar[str] = REGRESS_METHOD_NAME

    def _output_aliases(self) -> list[str]:
        return ["outputs"]

    def _check(self, where: str, output_shape: tuple[int | None, ...]) -> None:
        """:class:`ExportError` unless the model gives one value per example."""
        if output_shape not in ((), (1,)):
            raise ExportError(
                f"{where}: the model's output has shape {('?', *output_shape)}; a regression "
                f"needs one value per example, [?] or [?, 1]."
            )

    def _outputs(self, output: Any) -> dict[str, Any]:
        import tensorflow as tf

        return {"outputs": tf.cast(output, tf.float32)}

    def _check_served(self, signature_def: Any) -> None:
        """TF Serving's own structural checks of a regression signature."""
        from .servables.regressor import pre_process_regression

        pre_process_regression(signature_def, method_name_check=True)


ExampleSignature = ClassifySignature | RegressSignature
"""A signature over serialized ``tf.Example``."""

_FEATURE_DTYPES = {
    **dict.fromkeys(("float16", "bfloat16", "float32", "float64"), "float32"),
    **dict.fromkeys(
        ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"), "int64"
    ),
    "string": "string",
}
"""The ``tf.Example`` feature type (float, int64 or bytes list) each input dtype is read from."""


@dataclass(frozen=True, repr=False)
class ExportedModel:
    """One version written by :func:`export_model`.

    ``name`` is the base path's last component, the model name servers use by default;
    ``path`` is ``<base_path>/<version>``; both paths are absolute. ``signature`` describes the
    exported predict signature as written in the SavedModel; ``example_signatures`` the
    classification and regression signatures, by name.
    """

    name: str
    version: int
    path: Path
    base_path: Path
    signature: Signature
    example_signatures: Mapping[str, Signature] = field(default_factory=dict)

    def __repr__(self) -> str:
        extra = "".join(
            f", {key}={s.method_name.rsplit('/', 1)[-1]}"
            for key, s in self.example_signatures.items()
        )
        return (
            f"ExportedModel(name={self.name!r}, version={self.version}, path='{self.path}', "
            f"signature={self.signature.key!r}, inputs={_describe_tensors(self.signature.inputs)},"
            f" outputs={_describe_tensors(self.signature.outputs)}{extra})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("model", html.escape(self.name)),
            ("version", str(self.version)),
            ("path", f"<code>{html.escape(str(self.path))}</code>"),
            ("signature", html.escape(self.signature.key)),
            ("inputs", _tensors_html(self.signature.inputs)),
            ("outputs", _tensors_html(self.signature.outputs)),
            *(
                (
                    html.escape(s.method_name.rsplit("/", 1)[-1]),
                    f"{html.escape(key)}: {_tensors_html(s.inputs)} &rarr; "
                    f"{_tensors_html(s.outputs)}",
                )
                for key, s in self.example_signatures.items()
            ),
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
    signatures: Mapping[str, ExampleSignature] | None = None,
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
    function as ``serving_default``, so clients that name no signature still reach it (unless
    ``signatures`` names one ``serving_default``).

    ``signatures`` adds signatures over serialized ``tf.Example``, by name:
    :class:`ClassifySignature` and :class:`RegressSignature`. They need a model with one output
    and named inputs of fixed shape (each input becomes a feature of that name).

    Raises :class:`ExportError` naming the problem and the fix: not a Keras model, a model never
    called, ``base_path`` a file, a bad or already existing ``version``, unusable warmup examples,
    unusable ``signatures``, or a SavedModel that does not read back as expected. On error
    nothing under ``base_path`` changes (except that ``base_path`` itself may have been created,
    and temporary directories that killed exports left there removed).
    """
    keras_model = _check_model(model)
    number = _check_version(version)
    if not isinstance(signature_name, str) or not signature_name:
        raise ExportError(f"signature_name must be a non-empty string; got {signature_name!r}.")
    base = _prepare_base_path(base_path)
    input_signature = _input_signature(keras_model)
    example_signatures = _check_example_signatures(
        signatures, signature_name, keras_model, input_signature
    )
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

    remove_abandoned(base, _TEMP_PREFIX)
    staged = owned_temp_dir(f"{_TEMP_PREFIX}{number}-", dir=base)
    staged.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the version must be readable
    try:
        _write_saved_model(keras_model, input_signature, staged, signature_name, example_signatures)
        servable = _load(staged, [signature_name, *example_signatures])
        signature = servable.signatures[signature_name]
        _check_signature(signature, _expected_inputs(input_signature), _expected_outputs(model))
        for key, spec in example_signatures.items():
            _check_example_signature(servable, key, spec)
        warmup = [_warmup_inputs(i, request, signature) for i, request in enumerate(requests)]
        if warmup:
            _write_warmup(staged, warmup, base.name, signature_name)
            _run_warmup(servable, signature, warmup)
        described = {key: servable.signatures[key] for key in example_signatures}
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
    return ExportedModel(
        base.name,
        number,
        base / str(number),
        base,
        signature,
        described,
    )


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
        version = parse_version_number(child.name)
        if version is not None and child.is_dir():
            versions.setdefault(version, []).append(child)
    return versions


def _umask() -> int:
    """This process's umask, read without changing it where Linux tells it (``os.umask`` sets
    it, for a moment, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def _check_example_signatures(
    signatures: Any, signature_name: str, model: Any, input_signature: Any
) -> dict[str, ExampleSignature]:
    """``signatures`` as a dict, once checked against the model: names that are non-empty
    strings other than ``signature_name``, :class:`ClassifySignature` or
    :class:`RegressSignature` values, named model inputs of fixed shape and a dtype
    ``tf.Example`` can carry, and one model output of a shape the signature can use."""
    import keras

    if not signatures:
        return {}
    if not isinstance(signatures, Mapping):
        raise ExportError(
            f"signatures must map signature names to ClassifySignature or RegressSignature; got "
            f"{type(signatures).__name__}."
        )
    checked: dict[str, ExampleSignature] = {}
    for key, spec in signatures.items():
        where = f"signature {key!r}"
        if not isinstance(key, str) or not key or key == signature_name:
            raise ExportError(
                f"{where}: example signature names must be non-empty strings other than the "
                f"predict signature's ({signature_name!r})."
            )
        if not isinstance(spec, ClassifySignature | RegressSignature):
            raise ExportError(
                f"{where}: expected a ClassifySignature or RegressSignature; got "
                f"{type(spec).__name__}."
            )
        for input_spec in keras.tree.flatten(input_signature):
            _check_feature(where, input_spec)
        outputs = keras.tree.flatten(model.outputs)
        if len(outputs) != 1:
            raise ExportError(
                f"{where}: {_describe_model(model)} has {len(outputs)} outputs; a "
                f"classification or regression signature needs a model with exactly one."
            )
        spec._check(where, tuple(outputs[0].shape[1:]))
        checked[key] = spec
    return checked


def _check_feature(where: str, spec: Any) -> None:
    """:class:`ExportError` unless model input ``spec`` can be read from a ``tf.Example``."""
    if spec.name is None:
        raise ExportError(
            f"{where}: every model input becomes a tf.Example feature of its name; give each "
            f"keras.Input a name."
        )
    if any(d is None for d in spec.shape[1:]):
        raise ExportError(
            f"{where}: input {spec.name!r} has shape {spec.shape}; a tf.Example feature needs a "
            f"fixed shape after the batch dimension."
        )
    if spec.dtype not in _FEATURE_DTYPES:
        raise ExportError(
            f"{where}: input {spec.name!r} has dtype {spec.dtype}, which a tf.Example feature "
            f"(float, int64 or bytes list) cannot carry."
        )


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
    model: Any,
    input_signature: Any,
    export_dir: Path,
    signature_name: str,
    example_signatures: Mapping[str, ExampleSignature],
) -> None:
    """Write ``model``'s forward pass as a SavedModel into the (empty) ``export_dir``, with
    the ``example_signatures`` beside it."""
    import tensorflow as tf
    from keras.export import ExportArchive

    from .servables.util import EXAMPLES_INPUT

    archive = ExportArchive()
    archive.track_and_add_endpoint(signature_name, model, input_signature)
    for key, spec in example_signatures.items():
        archive.add_endpoint(
            key,
            _example_endpoint(model, input_signature, spec),
            [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
        )
    tf_logger = tf.get_logger()  # quiet "INFO:tensorflow:Assets written to ..." in notebooks
    level = tf_logger.level
    tf_logger.setLevel("WARNING")
    try:
        archive.write_out(str(export_dir), verbose=False)
    finally:
        tf_logger.setLevel(level)
    if example_signatures:
        _set_method_names(
            export_dir, {key: spec.method_name for key, spec in example_signatures.items()}
        )


def _example_endpoint(model: Any, input_signature: Any, spec: ExampleSignature) -> Any:
    """The function of an example signature: parse the serialized examples of its argument
    ``inputs`` into the model's inputs (one feature each, cast to the input's dtype), run the
    model, and turn its output into the signature's outputs."""
    import keras
    import tensorflow as tf

    specs = keras.tree.flatten(input_signature)
    features = {s.name: tf.io.FixedLenFeature(s.shape[1:], _FEATURE_DTYPES[s.dtype]) for s in specs}

    def endpoint(inputs: Any) -> dict[str, Any]:
        parsed = tf.io.parse_example(inputs, features)
        args = keras.tree.pack_sequence_as(
            input_signature, [tf.cast(parsed[s.name], s.dtype) for s in specs]
        )
        (output,) = keras.tree.flatten(model(*args))
        return spec._outputs(output)

    return endpoint


def _set_method_names(export_dir: Path, methods: Mapping[str, str]) -> None:
    """Give signatures their TF Serving method (``tf.saved_model.save`` marks every signature
    ``tensorflow/serving/predict``) and write the SavedModel's fingerprint anew."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    path = export_dir / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for meta_graph in saved_model.meta_graphs:
        for key, method in methods.items():
            meta_graph.signature_def[key].method_name = method
    path.write_bytes(saved_model.SerializeToString())
    fingerprinting_utils.write_fingerprint(str(export_dir))


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


def _load(export_dir: Path, signature_names: Sequence[str]) -> SavedModelServable:
    """``export_dir`` loaded the way the embedded server loads a version (``serve`` meta graph,
    ``tf.saved_model.load``); :class:`ExportError` if it lacks one of ``signature_names``."""
    from .servables.saved_model import SavedModelServable

    servable = SavedModelServable(str(export_dir))
    for signature_name in signature_names:
        if signature_name not in servable.signatures:
            raise ExportError(
                f"The SavedModel written to {export_dir} has no signature {signature_name!r} (it "
                f"has {sorted(servable.signatures)}); TF Serving could not serve it."
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


def _check_example_signature(
    servable: SavedModelServable, key: str, spec: ExampleSignature
) -> None:
    """:class:`ExportError` unless example signature ``key`` has the outputs ``spec`` promises
    and passes TF Serving's checks of its API (method name included)."""
    from .core.status import ServingStatusError

    signature_def = servable.signature_def_map[key]
    outputs, expected = sorted(signature_def.outputs), sorted(spec._output_aliases())
    if outputs != expected:
        raise ExportError(
            f"The exported signature {key!r} has outputs {outputs}; expected {expected}."
        )
    try:
        spec._check_served(signature_def)
    except ServingStatusError as exc:
        raise ExportError(
            f"The exported signature {key!r} would be refused by TF Serving: {exc.message}"
        ) from exc


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
