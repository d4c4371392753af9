"""The export itself: :func:`export_model` and the :class:`ExportedModel` it returns.

Checks the arguments, writes the SavedModel into a staged directory, reads it back with the
embedded server's loader and checks its signatures and warmup, then moves it into place (see
the package docstring for the guarantees). A base path in object storage gets the version
written into a local temporary folder first and then pushed (:mod:`tfserve_nb.storage`).
"""

from __future__ import annotations

import dataclasses
import html
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ExportError
from ..processes import owned_temp_dir, remove_abandoned
from ..protocol.signature import (
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    Signature,
    TensorSpec,
)
from ..storage.filesystem import is_remote
from ..storage.push import listing_for_push, open_repository, push_version, refusal
from .example_signatures import (
    ExampleSignature,
    check_example_signature,
    check_example_signatures,
    example_endpoint,
    set_method_names,
)
from .keras_model import (
    check_model,
    describe_model,
    expected_inputs,
    expected_outputs,
    model_input_signature,
)
from .version_directory import (
    TEMP_PREFIX,
    check_version,
    move_into_place,
    prepare_base_path,
    umask,
    version_dirs,
)
from .warmup import as_request_list, run_warmup, warmup_inputs, write_warmup

if TYPE_CHECKING:
    from ..servables.saved_model import SavedModelServable

EXPORT_WORK_PREFIX = "tfserve-nb-export-"
"""Prefix of the local temporary folder (in the system's) that a version for object storage is
exported into before its push; a killed export's folder is removed by the next such export."""


@dataclass(frozen=True, repr=False)
class ExportedModel:
    """One version written by :func:`export_model`.

    ``name`` is the base path's last component, the model name servers use by default;
    ``path`` is ``<base_path>/<version>``; both paths are absolute ``Path`` values, or URIs
    (``s3://bucket/prefix/name/3``) for a version in object storage. ``signature`` describes the
    exported predict signature as written in the SavedModel; ``example_signatures`` the
    classification and regression signatures, by name.
    """

    name: str
    version: int
    path: Path | str
    base_path: Path | str
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
    storage_options: Mapping[str, Any] | None = None,
) -> ExportedModel:
    """Export a built Keras 3 model as version ``version`` under ``base_path``.

    ``base_path`` is made absolute (TF Serving needs absolute paths) and created if missing.
    ``version`` defaults to one more than the highest existing version (directories whose names
    parse as integers: ``0001`` is 1, ``v1`` is not a version), or 1 if there is none. An
    existing version is replaced only with ``overwrite=True``.

    ``base_path`` may be a URI in object storage, ``s3://bucket/prefix/name`` (or ``gs://``):
    the version is exported into a local temporary folder, checked as any export, and pushed
    there (:func:`tfserve_nb.storage.push`, whose docstring tells what is visible when);
    the folder is removed. ``version`` then defaults to one more than the highest version
    present there, complete or partial or being pushed; versions there are never overwritten
    (``overwrite=True`` is refused, an existing ``version`` raises
    :class:`~tfserve_nb.errors.VersionExistsError` before anything is exported).
    ``storage_options`` go to the fsspec file system (endpoint, profile, ...); credentials come
    from the store's standard environment and config files. The returned ``path`` and
    ``base_path`` are URIs.

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
    and temporary directories that killed exports left there removed). In object storage,
    :class:`~tfserve_nb.errors.StorageError` when the store cannot be used.
    """
    keras_model = check_model(model)
    number = check_version(version)
    if not isinstance(signature_name, str) or not signature_name:
        raise ExportError(f"signature_name must be a non-empty string; got {signature_name!r}.")
    options = {
        "warmup_examples": warmup_examples,
        "signature_name": signature_name,
        "signatures": signatures,
    }
    if is_remote(base_path):
        return _export_to_storage(
            keras_model, str(base_path), number, overwrite, storage_options, **options
        )
    if storage_options is not None:
        raise ExportError(
            f"storage_options apply to base paths in object storage (s3://, gs://); "
            f"{os.fspath(base_path)!r} is a local path."
        )
    return _export_to_folder(
        keras_model, prepare_base_path(base_path), number, overwrite, **options
    )


def _export_to_storage(
    keras_model: Any,
    uri: str,
    number: int | None,
    overwrite: bool,
    storage_options: Mapping[str, Any] | None,
    **options: Any,
) -> ExportedModel:
    """Export into a temporary folder, then push the version to ``uri``."""
    if overwrite:
        raise ExportError(
            f"Versions in object storage are never overwritten, so overwrite=True cannot be "
            f"used with {uri}. Export a new version (leave version=None)."
        )
    repository = open_repository(uri, storage_options)
    listing = listing_for_push(repository)
    if number is None:
        number = repository.next_version(listing)
    elif (refused := refusal(repository, listing, number)) is not None:
        raise refused
    remove_abandoned(tempfile.gettempdir(), EXPORT_WORK_PREFIX)
    work = owned_temp_dir(EXPORT_WORK_PREFIX)
    try:
        base = work / repository.name
        base.mkdir()
        exported = _export_to_folder(keras_model, base, number, False, **options)
        pushed = push_version(repository, number, exported.path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dataclasses.replace(exported, path=pushed, base_path=repository.store.uri)


def _export_to_folder(
    keras_model: Any,
    base: Path,
    number: int | None,
    overwrite: bool,
    *,
    warmup_examples: Any,
    signature_name: str,
    signatures: Mapping[str, ExampleSignature] | None,
) -> ExportedModel:
    """The local export into the (existing) folder ``base``."""
    input_signature = model_input_signature(keras_model)
    example_signatures = check_example_signatures(
        signatures, signature_name, keras_model, input_signature
    )
    requests = as_request_list(warmup_examples)

    existing = version_dirs(base)
    next_free = max([0, *existing]) + 1
    if number is None:
        number = next_free
    elif number in existing and not overwrite:
        raise ExportError(
            f"Version {number} of model {base.name!r} already exists at {existing[number][0]}. "
            f"Pass overwrite=True to replace it, or leave version=None to export it as version "
            f"{next_free}."
        )

    remove_abandoned(base, TEMP_PREFIX)
    staged = owned_temp_dir(f"{TEMP_PREFIX}{number}-", dir=base)
    staged.chmod(0o777 & ~umask())  # mkdtemp makes it 0700; the version must be readable
    try:
        _write_saved_model(keras_model, input_signature, staged, signature_name, example_signatures)
        servable = _load(staged, [signature_name, *example_signatures])
        signature = servable.signatures[signature_name]
        _check_signature(signature, expected_inputs(input_signature), expected_outputs(keras_model))
        for key, spec in example_signatures.items():
            check_example_signature(servable, key, spec)
        warmup = [warmup_inputs(i, request, signature) for i, request in enumerate(requests)]
        if warmup:
            write_warmup(staged, warmup, base.name, signature_name)
            run_warmup(servable, signature, warmup)
        described = {key: servable.signatures[key] for key in example_signatures}
        del servable
        move_into_place(staged, base / str(number), existing.get(number, []))
    except BaseException as exc:
        shutil.rmtree(staged, ignore_errors=True)
        if isinstance(exc, Exception) and not isinstance(exc, ExportError):
            raise ExportError(
                f"Could not export {describe_model(keras_model)} as version {number} under "
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

    from ..servables.util import EXAMPLES_INPUT

    archive = ExportArchive()
    archive.track_and_add_endpoint(signature_name, model, input_signature)
    for key, spec in example_signatures.items():
        archive.add_endpoint(
            key,
            example_endpoint(model, input_signature, spec),
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
        set_method_names(
            export_dir, {key: spec.method_name for key, spec in example_signatures.items()}
        )


def _load(export_dir: Path, signature_names: Sequence[str]) -> SavedModelServable:
    """``export_dir`` loaded the way the embedded server loads a version (``serve`` meta graph,
    ``tf.saved_model.load``); :class:`ExportError` if it lacks one of ``signature_names``."""
    from ..servables.saved_model import SavedModelServable

    servable = SavedModelServable(str(export_dir))
    for signature_name in signature_names:
        if signature_name not in servable.signatures:
            raise ExportError(
                f"The SavedModel written to {export_dir} has no signature {signature_name!r} (it "
                f"has {sorted(servable.signatures)}); TF Serving could not serve it."
            )
    return servable


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
