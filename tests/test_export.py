"""export_model: layout, names, versions, atomicity, errors, warmup, notebook display."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tests.helpers import models
from tfserve_nb.errors import ExportError
from tfserve_nb.export import (
    WARMUP_FILE,
    ExportedModel,
    export_model,
    exporter,
    keras_model,
    version_directory,
)

if TYPE_CHECKING:
    from conftest import ModelVersions


def snapshot(base: Path) -> dict[str, str]:
    """Every entry under ``base`` → a digest of its content ("dir" for directories)."""
    return {
        str(p.relative_to(base)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
    }


def serve_fn(path: Path, signature_name: str = "serving_default") -> Any:
    """The signature function TensorFlow itself loads from the SavedModel at ``path``."""
    return tf.saved_model.load(str(path)).signatures[signature_name]


def answer(path: Path, x: float) -> float:
    """half_plus_two's answer for ``x`` from the SavedModel at ``path``."""
    return float(serve_fn(path)(x=tf.constant([[x]]))["y"][0, 0])


def read_warmup(path: Path) -> list[prediction_log_pb2.PredictionLog]:
    """The warmup records of the version at ``path``."""
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(str(path / WARMUP_FILE))
    ]


class Doubler(keras.Model):
    """A subclassed model: Keras knows its input shapes only once it has been called."""

    def __init__(self) -> None:
        super().__init__(name="doubler")
        self.dense = keras.layers.Dense(1)

    def call(self, x: Any) -> Any:
        return self.dense(x) * 2.0


# --- layout and names ----------------------------------------------------------------------------


def test_round_trip_gives_the_models_numbers(
    tmp_path: Path, digits_models: ModelVersions, digits_data: models.DigitsData
) -> None:
    model = digits_models.models[1]
    exported = export_model(model, tmp_path / "digits")

    assert (exported.name, exported.version) == ("digits", 1)
    assert exported.base_path == tmp_path / "digits"
    assert exported.path == tmp_path / "digits" / "1"
    assert (exported.path / "saved_model.pb").is_file()
    x = digits_data.x_test[:16]
    served = serve_fn(exported.path)(pixels=tf.constant(x))["output_0"].numpy()
    np.testing.assert_allclose(served, keras.ops.convert_to_numpy(model(x)), atol=1e-6)


def test_signature_keeps_input_names_and_keras_output_names(
    tmp_path: Path, digits_models: ModelVersions
) -> None:
    digits = export_model(digits_models.models[1], tmp_path / "digits")
    multi = export_model(models.multi_io_model(), tmp_path / "multi")
    x = keras.Input((3,), name="features")
    two = keras.Model(x, [keras.layers.Dense(2)(x), keras.layers.Dense(1)(x)])
    listed = export_model(two, tmp_path / "two")

    pixels = digits.signature.inputs["pixels"]
    assert (pixels.dtype, pixels.shape) == ("DT_FLOAT", (None, 64))
    assert digits.signature.outputs["output_0"].shape == (None, 10)
    assert digits.signature.method_name == "tensorflow/serving/predict"
    assert (sorted(multi.signature.inputs), sorted(multi.signature.outputs)) == (
        ["a", "b"],
        ["doubled", "sum"],
    )
    assert multi.signature.outputs["doubled"].shape == (None, 5)
    assert sorted(listed.signature.outputs) == ["output_0", "output_1"]
    # The description is what TensorFlow itself reads back.
    loaded = serve_fn(multi.path)
    assert sorted(loaded.structured_input_signature[1]) == ["a", "b"]
    assert sorted(loaded.structured_outputs) == ["doubled", "sum"]


def test_called_subclassed_model_exports(tmp_path: Path) -> None:
    model = Doubler()
    model(np.ones((1, 4), np.float32))
    exported = export_model(model, tmp_path / "doubler")
    (alias,) = exported.signature.inputs
    assert exported.signature.inputs[alias].shape == (None, 4)
    assert list(exported.signature.outputs) == ["output_0"]


def test_other_signature_name_is_also_the_default(tmp_path: Path) -> None:
    exported = export_model(models.half_plus_two(), tmp_path / "hp", signature_name="predict")
    assert exported.signature.key == "predict"
    assert answer(exported.path, 2.0) == 3.0
    assert float(serve_fn(exported.path, "predict")(x=tf.constant([[2.0]]))["y"][0, 0]) == 3.0


def test_relative_base_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exported = export_model(models.half_plus_two(), os.path.join("rel", "models", "hp"))
    assert exported.base_path.is_absolute()
    assert exported.base_path == tmp_path / "rel" / "models" / "hp"
    assert exported.path == exported.base_path / "1"
    assert exported.name == "hp"
    assert exported.path.is_dir()


# --- versions ------------------------------------------------------------------------------------


def test_versions_count_up_from_the_highest_numeric_directory(tmp_path: Path) -> None:
    base = tmp_path / "hp"
    assert export_model(models.half_plus_two(), base).version == 1
    assert export_model(models.half_plus_two(), base).version == 2
    assert export_model(models.half_plus_two(), base, 7).version == 7
    assert export_model(models.half_plus_two(), base).version == 8
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7", "8"]


def test_zero_padded_versions_count_and_other_names_do_not(tmp_path: Path) -> None:
    base = tmp_path / "hp"
    for name in ("0003", "v9", "notes", ".tmp-export-12-abc"):
        (base / name).mkdir(parents=True)
    (base / "10").write_text("a file, not a version directory")

    exported = export_model(models.half_plus_two(), base)

    assert exported.version == 4
    assert exported.path == base / "4"


def test_numpy_integer_version_is_accepted(tmp_path: Path) -> None:
    assert export_model(models.half_plus_two(), tmp_path / "hp", np.int64(3)).version == 3


# --- overwrite and atomicity ---------------------------------------------------------------------


def test_success_leaves_no_temporary_directories(tmp_path: Path) -> None:
    base = tmp_path / "hp"
    export_model(models.half_plus_two(), base)
    export_model(models.half_plus_two(2), base, 1, overwrite=True)
    assert sorted(p.name for p in base.iterdir()) == ["1"]


def test_overwrite_replaces_the_version(tmp_path: Path) -> None:
    base = tmp_path / "hp"
    export_model(models.half_plus_two(1), base)
    assert answer(base / "1", 1.0) == 2.5

    exported = export_model(models.half_plus_two(2), base, 1, overwrite=True)

    assert exported.version == 1
    assert answer(base / "1", 1.0) == 3.5


def test_overwrite_of_a_zero_padded_version_replaces_it(tmp_path: Path) -> None:
    base = tmp_path / "hp"
    first = export_model(models.half_plus_two(1), base)
    os.rename(first.path, base / "0001")

    with pytest.raises(ExportError, match="Version 1 of model 'hp' already exists"):
        export_model(models.half_plus_two(2), base, 1)
    export_model(models.half_plus_two(2), base, 1, overwrite=True)

    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert answer(base / "1", 1.0) == 3.5


@pytest.mark.parametrize("overwrite", [False, True])
def test_failed_write_leaves_everything_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    base = tmp_path / "hp"
    export_model(models.half_plus_two(), base)
    before = snapshot(base)

    def half_written(
        model: Any,
        input_signature: Any,
        export_dir: Path,
        signature_name: str,
        example_signatures: Any,
    ) -> None:
        (export_dir / "variables").mkdir()
        (export_dir / "saved_model.pb").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporter, "_write_saved_model", half_written)
    with pytest.raises(ExportError, match=r"as version \d under .*RuntimeError: disk full"):
        export_model(models.half_plus_two(2), base, 1 if overwrite else None, overwrite=overwrite)

    assert snapshot(base) == before
    assert answer(base / "1", 1.0) == 2.5


def test_failed_final_rename_puts_the_old_version_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "hp"
    export_model(models.half_plus_two(), base)
    before = snapshot(base)
    real_rename = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        if Path(src).name.startswith(".tmp-export-"):
            raise OSError("simulated rename failure")
        real_rename(src, dst)

    monkeypatch.setattr(version_directory.os, "rename", rename)
    with pytest.raises(ExportError, match="simulated rename failure"):
        export_model(models.half_plus_two(2), base, 1, overwrite=True)

    assert snapshot(base) == before


def test_signature_that_reads_back_wrong_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed = keras.Input((1,), name="renamed")
    impostor = keras.Model(renamed, keras.layers.Dense(1)(renamed))
    real_write = exporter._write_saved_model

    def write_impostor(
        model: Any,
        input_signature: Any,
        export_dir: Path,
        signature_name: str,
        example_signatures: Any,
    ) -> None:
        real_write(
            impostor,
            keras_model.model_input_signature(impostor),
            export_dir,
            signature_name,
            example_signatures,
        )

    monkeypatch.setattr(exporter, "_write_saved_model", write_impostor)
    with pytest.raises(ExportError, match=r"has inputs \['renamed'\], but the model's inputs"):
        export_model(models.half_plus_two(), tmp_path / "hp")
    assert list((tmp_path / "hp").iterdir()) == []


# --- refused input -------------------------------------------------------------------------------


def test_sklearn_estimator_is_refused_naming_its_type(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(
        ExportError, match=r"needs a Keras 3 model.*got sklearn\..*LogisticRegression"
    ):
        export_model(LogisticRegression(), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_tf_module_is_refused_naming_its_type(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"got tensorflow\..*Module\. .*tf\.saved_model\.save"):
        export_model(tf.Module(), tmp_path / "m")


def test_subclassed_model_never_called_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ExportError, match=r"'doubler' \(Doubler\) has never been called.*model\(x\[:1\]\)"
    ):
        export_model(Doubler(), tmp_path / "m")


def test_base_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_text("not a directory")
    with pytest.raises(ExportError, match=r"model\.keras is a file, not a directory"):
        export_model(models.half_plus_two(), path)
    assert path.read_text() == "not a directory"


def test_existing_version_is_kept_without_overwrite(tmp_path: Path) -> None:
    base = tmp_path / "hp"
    export_model(models.half_plus_two(1), base)
    before = snapshot(base)

    with pytest.raises(
        ExportError,
        match=r"Version 1 of model 'hp' already exists at .*hp/1\. Pass overwrite=True.*version 2",
    ):
        export_model(models.half_plus_two(2), base, 1)

    assert snapshot(base) == before


@pytest.mark.parametrize("version", [0, -3])
def test_non_positive_version_is_refused(tmp_path: Path, version: int) -> None:
    with pytest.raises(ExportError, match=f"positive integer .*got {version}"):
        export_model(models.half_plus_two(), tmp_path / "hp", version)


@pytest.mark.parametrize(("version", "kind"), [(1.5, "float"), ("2", "str"), (True, "bool")])
def test_non_integer_version_is_refused(tmp_path: Path, version: object, kind: str) -> None:
    with pytest.raises(ExportError, match=f"positive integer or None .*of type {kind}"):
        export_model(models.half_plus_two(), tmp_path / "hp", version)  # type: ignore[arg-type]


# --- warmup --------------------------------------------------------------------------------------


def test_warmup_requests_read_back_as_prediction_logs(tmp_path: Path) -> None:
    batches = [np.full((n, 1), float(n)) for n in (1, 4, 2)]  # float64, cast to float32

    exported = export_model(models.half_plus_two(), tmp_path / "hp", warmup_examples=batches)

    logs = read_warmup(exported.path)
    assert len(logs) == 3
    for log, batch in zip(logs, batches, strict=True):
        request = log.predict_log.request
        assert request.model_spec.name == "hp"
        assert request.model_spec.signature_name == "serving_default"
        assert list(request.inputs) == ["x"]
        values = tf.make_ndarray(request.inputs["x"])
        assert values.dtype == np.float32
        assert values.shape == batch.shape
        np.testing.assert_array_equal(values, batch)


def test_warmup_examples_for_inputs_named_like_data_frame_columns(tmp_path: Path) -> None:
    """Inputs ``petal-width``, ``f.x`` and ``2nd`` (no Python identifiers): the examples are
    checked and replayed through the exported signature by its keys, and written under them."""
    example = {name: np.full((2, 1), 1.0, np.float32) for name in models.COLUMN_NAMES}

    exported = export_model(models.column_names(), tmp_path / "cols", warmup_examples=example)

    (log,) = read_warmup(exported.path)
    assert sorted(log.predict_log.request.inputs) == sorted(models.COLUMN_NAMES)


def test_warmup_dict_for_several_inputs(tmp_path: Path) -> None:
    example = {"a": np.ones((2, 2), np.float32), "b": np.zeros((2, 3), np.float32)}

    exported = export_model(
        models.multi_io_model(), tmp_path / "multi", warmup_examples=example, signature_name="p"
    )

    (log,) = read_warmup(exported.path)
    request = log.predict_log.request
    assert request.model_spec.signature_name == "p"
    assert {k: tuple(tf.make_ndarray(v).shape) for k, v in request.inputs.items()} == {
        "a": (2, 2),
        "b": (2, 3),
    }


def test_no_warmup_file_without_examples(tmp_path: Path) -> None:
    exported = export_model(models.half_plus_two(), tmp_path / "hp")
    assert not (exported.path / "assets.extra").exists()


@pytest.mark.parametrize(
    ("model", "examples", "message"),
    [
        pytest.param(
            models.half_plus_two,
            [np.ones((1, 1))] * 1001,
            r"1001 warmup examples given; TF Serving replays at most 1000",
            id="too-many",
        ),
        pytest.param(
            models.multi_io_model,
            np.ones((1, 2)),
            r"warmup example 0 is a single array, .*inputs \['a', 'b'\]: pass a dict",
            id="array-for-two-inputs",
        ),
        pytest.param(
            models.multi_io_model,
            [{"a": np.ones((1, 2)), "b": np.ones((1, 3))}, {"a": np.ones((1, 2)), "c": 1}],
            r"warmup example 1 has inputs \['a', 'c'\].*missing: \['b'\], unknown: \['c'\]",
            id="wrong-names",
        ),
        pytest.param(
            models.half_plus_two,
            np.ones((2, 3)),
            r"warmup example 0: input 'x' has shape \(2, 3\); the signature expects",
            id="wrong-shape",
        ),
        pytest.param(
            models.half_plus_two,
            np.array([["one"]]),
            r"warmup example 0: input 'x' cannot be cast to",
            id="wrong-dtype",
        ),
    ],
)
def test_unusable_warmup_is_refused_and_nothing_written(
    tmp_path: Path, model: Any, examples: Any, message: str
) -> None:
    with pytest.raises(ExportError, match=message):
        export_model(model(), tmp_path / "m", warmup_examples=examples)
    assert list((tmp_path / "m").iterdir()) == []


def test_warmup_that_fails_in_the_graph_is_refused(tmp_path: Path) -> None:
    x = keras.Input((None,), name="x")
    square = keras.Model(x, keras.layers.Reshape((2, 2))(x))

    with pytest.raises(ExportError, match=r"warmup example 1 fails when run through signature"):
        export_model(square, tmp_path / "m", warmup_examples=[np.ones((1, 4)), np.ones((1, 3))])
    assert list((tmp_path / "m").iterdir()) == []


# --- display -------------------------------------------------------------------------------------


def test_repr_and_html_name_the_version_and_its_tensors(tmp_path: Path) -> None:
    exported = export_model(models.multi_io_model(), tmp_path / "multi")
    a_type = exported.signature.inputs["a"].describe()

    text = repr(exported)
    assert text.startswith("ExportedModel(name='multi', version=1, path=")
    assert str(exported.path) in text
    assert f"a: {a_type}" in text

    page = exported._repr_html_()
    assert page.startswith("<table") and page.endswith("</table>")
    for content in ("multi", ">1<", f"<code>{exported.path}</code>", "serving_default"):
        assert content in page
    for alias, spec in {**exported.signature.inputs, **exported.signature.outputs}.items():
        assert f"{alias} <code>{spec.describe()}</code>" in page


def test_exported_model_is_frozen(tmp_path: Path) -> None:
    exported = export_model(models.half_plus_two(), tmp_path / "hp")
    assert isinstance(exported, ExportedModel)
    with pytest.raises(AttributeError):
        exported.version = 2  # type: ignore[misc]


# --- the shared fixtures -------------------------------------------------------------------------


def test_base_path_fixtures_hold_independent_copies(
    half_plus_two_base: Path, half_plus_two_models: ModelVersions
) -> None:
    assert sorted(p.name for p in half_plus_two_base.iterdir()) == ["1"]
    added = half_plus_two_models.add_version(half_plus_two_base, 2)

    assert sorted(p.name for p in half_plus_two_base.iterdir()) == ["1", "2"]
    assert (answer(half_plus_two_base / "1", 1.0), answer(added, 1.0)) == (2.5, 3.5)
    assert half_plus_two_models.exports[2] != added


def test_digits_version_2_is_the_better_model(
    digits_models: ModelVersions, digits_data: models.DigitsData
) -> None:
    def accuracy(version: int) -> float:
        probabilities = digits_models.models[version].predict(digits_data.x_test, verbose=0)
        return float(np.mean(probabilities.argmax(axis=1) == digits_data.y_test))

    assert 0.8 < accuracy(1) < accuracy(2)
