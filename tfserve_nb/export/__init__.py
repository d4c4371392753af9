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

- **Object storage.** A ``base_path`` of ``s3://bucket/prefix/name`` (or ``gs://``) gets the
  version exported into a local temporary folder with all of the above, then pushed there with
  :func:`tfserve_nb.storage.push`'s promises: the version is complete once visible as such
  (``saved_model.pb`` written last, by an atomic create), never overwritten, and the number is
  one above the highest there.

Not safe for two processes exporting automatically numbered versions into one base path at the
same time: both may pick the same number, and the second then fails with :class:`ExportError`
(in object storage, :class:`~tfserve_nb.errors.VersionExistsError`).

TensorFlow and Keras are imported inside the functions, so importing this package is cheap.
One concept per module: :mod:`.exporter` (:func:`export_model`), :mod:`.keras_model` (what an
export needs to know of the Keras model: its input signature, input and output names),
:mod:`.version_directory` (version numbers, staging, the atomic move), :mod:`.example_signatures`
(classify and regress over ``tf.Example``), :mod:`.warmup` (warmup requests).
"""

from __future__ import annotations

from .example_signatures import ClassifySignature, ExampleSignature, RegressSignature
from .exporter import ExportedModel, export_model
from .warmup import MAX_WARMUP_RECORDS, WARMUP_FILE

__all__ = [
    "MAX_WARMUP_RECORDS",
    "WARMUP_FILE",
    "ClassifySignature",
    "ExampleSignature",
    "ExportedModel",
    "RegressSignature",
    "export_model",
]
