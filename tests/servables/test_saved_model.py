"""The SavedModel servable runs signatures as TF Serving's ``Session::Run`` does: feeds and
fetches by tensor name, TensorFlow deciding shapes, and the graph's dtypes (not the
``TensorInfo``'s) checked with TensorFlow's text. Real SavedModels, built here."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.servables.predict_util import run_predict
from tfserve_nb.servables.saved_model import SavedModelServable
from tfserve_nb.servables.util import run_on_examples


def _tf1_half_plus_three(path: Path) -> None:
    """A TF 1.x graph ``y = 0.5 * x + 3`` whose SignatureDefs describe ``x`` as a float scalar
    (the graph tensor is ``[?,1]``) and the regress input as DT_FLOAT (the graph tensor is a
    string), as upstream's ``saved_model_half_plus_three`` does."""
    graph = tf.Graph()
    with graph.as_default():
        a = tf.compat.v1.Variable(0.5, name="a")
        b = tf.compat.v1.Variable(3.0, name="b")
        serialized = tf.compat.v1.placeholder(tf.string, name="tf_example")
        features = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        x = tf.identity(features["x"], name="x")
        y = tf.add(tf.multiply(a, x), b, name="y")
        scalar = tf.TensorShape([]).as_proto()
        info = tf.compat.v1.saved_model.utils.build_tensor_info

        def declared(tensor: tf.Tensor, dtype: tf.DType) -> object:
            proto = info(tensor)
            proto.tensor_shape.CopyFrom(scalar)
            proto.dtype = dtype.as_datatype_enum
            return proto

        predict = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
            {"x": declared(x, tf.float32)},
            {"y": declared(y, tf.float32)},
            "tensorflow/serving/predict",
        )
        regress = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
            {"inputs": declared(serialized, tf.float32)},
            {"outputs": declared(y, tf.float32)},
            "tensorflow/serving/regress",
        )
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                session,
                ["serve"],
                signature_def_map={"serving_default": predict, "regress": regress},
            )
            builder.save()


@pytest.fixture(scope="module")
def half_plus_three(tmp_path_factory: pytest.TempPathFactory) -> SavedModelServable:
    path = tmp_path_factory.mktemp("half_plus_three") / "1"
    _tf1_half_plus_three(path)
    servable = SavedModelServable(str(path))
    yield servable
    servable.close()


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (np.array([1.0, 2.0, 5.0], np.float32), [3.5, 4.0, 5.5]),  # [3] into [?,1]
        (np.array(2.0, np.float32), 4.0),  # a scalar, as upstream's manual client sends
        (np.array([[2.0]], np.float32), [[4.0]]),
    ],
)
def test_shapes_are_tensorflows_to_decide(
    half_plus_three: SavedModelServable, x: np.ndarray, y: object
) -> None:
    result = run_predict(1, half_plus_three, {"x": x}, "serving_default")
    np.testing.assert_allclose(result.outputs["y"], y)
    assert isinstance(result.outputs["y"], np.ndarray)


def test_the_graph_decides_dtypes_with_tensorflows_text(
    half_plus_three: SavedModelServable,
) -> None:
    with pytest.raises(ServingStatusError) as exc:
        run_predict(1, half_plus_three, {"x": np.array([[1]], np.int32)}, "serving_default")
    assert (exc.value.code, exc.value.message) == (
        Code.INVALID_ARGUMENT,
        "Expects arg[0] to be float but int32 is provided",
    )
    # declared DT_FLOAT, but the graph tensor is a string: examples feed it
    example = tf.train.Example(
        features=tf.train.Features(
            feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[4.0]))}
        )
    )
    examples = np.array([example.SerializeToString()], dtype=object)
    outputs = run_on_examples(half_plus_three, "regress", examples, ["outputs"])
    np.testing.assert_allclose(outputs["outputs"], [[5.0]])


def test_tensorflow_errors_keep_their_code_and_text(half_plus_three: SavedModelServable) -> None:
    with pytest.raises(ServingStatusError) as exc:  # a string fed where a float tensor is
        run_predict(1, half_plus_three, {"x": np.array([b"a"], object)}, "serving_default")
    assert exc.value.code is Code.INVALID_ARGUMENT
    assert exc.value.message == "Expects arg[0] to be float but string is provided"
    bad = np.array([b"not an example"], dtype=object)
    with pytest.raises(ServingStatusError) as exc:
        run_on_examples(half_plus_three, "regress", bad, ["outputs"])
    assert exc.value.code is Code.INVALID_ARGUMENT
    assert "Could not parse example input" in exc.value.message


def test_inputs_named_like_dataframe_columns(tmp_path: Path) -> None:
    names = ["petal-width", "f.x", "2nd"]
    inputs = {name: keras.Input((1,), name=name) for name in names}
    weights = {name: float(i + 1) for i, name in enumerate(names)}
    terms = [keras.layers.Rescaling(weights[name])(t) for name, t in inputs.items()]
    model = keras.Model(inputs, keras.layers.Add()(terms))
    model.export(str(tmp_path / "1"), verbose=False)
    servable = SavedModelServable(str(tmp_path / "1"))
    try:
        x = {name: np.full((2, 1), 10.0, np.float32) for name in names}
        (output,) = run_predict(1, servable, x, "serving_default").outputs.values()
        np.testing.assert_allclose(output, [[60.0], [60.0]])
    finally:
        servable.close()


def test_a_vocabulary_file_asset_is_read_from_the_saved_model(tmp_path: Path) -> None:
    """A TF 2 export whose lookup table is initialised from a file: the session loader feeds
    the asset's copy inside the SavedModel (the original is gone by then)."""
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("a\nb\nc\n")

    class Lookup(tf.Module):
        def __init__(self) -> None:
            index = tf.lookup.TextFileIndex
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    str(vocabulary), tf.string, index.WHOLE_LINE, tf.int64, index.LINE_NUMBER
                ),
                -1,
            )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def ids(self, words: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"ids": self.table.lookup(words)}

    module = Lookup()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.ids})
    vocabulary.unlink()
    servable = SavedModelServable(str(tmp_path / "1"))
    try:
        words = np.array([b"b", b"z", b"a"], dtype=object)
        outputs = run_predict(1, servable, {"words": words}, "serving_default").outputs
        assert outputs["ids"].tolist() == [1, -1, 0]
    finally:
        servable.close()


def test_keras_preprocessing_layers_answer_as_the_model_does(tmp_path: Path) -> None:
    """StringLookup, Embedding and Normalization in one Keras 3 model with string and float
    inputs: the served answers equal the model's own."""
    color = keras.Input((1,), dtype="string", name="color")
    ids = keras.layers.StringLookup(vocabulary=["red", "green", "blue"])(color)
    embedded = keras.layers.Flatten()(keras.layers.Embedding(5, 2)(ids))
    numbers = keras.Input((3,), name="numbers")
    scaled = keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0])(numbers)
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([embedded, scaled]))
    model = keras.Model({"color": color, "numbers": numbers}, out)
    model.export(str(tmp_path / "1"), verbose=False)
    servable = SavedModelServable(str(tmp_path / "1"))
    try:
        colors = np.array([[b"green"], [b"unknown"]], dtype=object)
        x = np.array([[1.0, 2.0, 3.0], [0.0, 4.0, 9.0]], np.float32)
        (served,) = run_predict(
            1, servable, {"color": colors, "numbers": x}, "serving_default"
        ).outputs.values()
        expected = model(
            {"color": tf.constant([["green"], ["unknown"]]), "numbers": tf.constant(x)}
        )
        np.testing.assert_allclose(served, np.asarray(expected), rtol=1e-6)
    finally:
        servable.close()
