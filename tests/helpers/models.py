"""Generators of the tiny Keras models the tests serve.

Only this code is committed, never the SavedModels: fixtures in ``conftest.py`` build the models
once per test session and export them into temporary directories. Every generator is
deterministic: the same arguments give the same weights (and so the same predictions).

=================  ========================================  =====================================
generator          inputs                                    outputs
=================  ========================================  =====================================
digits_classifier  ``pixels`` float32[?,64] (0..1)           ``output_0`` float32[?,10] softmax
half_plus_two      ``x`` float32[?,1]                        ``y`` = 0.5·x + 1 + version, exactly
multi_io_model     ``a`` float32[?,2], ``b`` float32[?,3]    ``sum`` [?,1], ``doubled`` [?,5]
image_cnn          ``image`` float32[?,28,28,1]              ``output_0`` float32[?,10] softmax
color_classifier   ``rgb`` float32[?,3],                     ``output_0`` float32[?,3] softmax
                   ``boost`` int32[?,1]                      of red, green, blue (:data:`COLORS`)
dtypes_echo        one ``<dtype>`` [?,2] per dtype given     ``<dtype>_out`` echoes each input;
                   (default :data:`JSON_DTYPES`)             ``string_bytes`` echoes ``string``
busy_wait          ``seconds`` float32[?,1]                  ``y`` = ``seconds``, returned after
                                                             busy-waiting the largest of them
sequential         ``keras_tensor_<n>`` float32[?,3], a new  ``output_0`` float32[?,1]
                   ``n`` per model built (no keras.Input)    = sum(x) + version
column_names       ``petal-width``, ``f.x``, ``2nd``         ``total`` float32[?,1] = petal-width
                   float32[?,1] (not Python identifiers)     + 10·f.x + 100·2nd
tabular            ``flat`` float32[?], ``column``           ``total`` float32[?,1] = flat
                   int32[?,1], ``vector`` float32[?,3]       + 10·column + 100·sum(vector)
=================  ========================================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class DigitsData:
    """sklearn's bundled 8x8 digits (no download), scaled to 0..1 and split 75/25, stratified."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def digits_data() -> DigitsData:
    """The same split on every call."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        (x / 16.0).astype(np.float32), y, test_size=0.25, random_state=0, stratify=y
    )
    return DigitsData(x_train, x_test, y_train, y_test)


def digits_classifier(
    seed: int = 0, epochs: int = 5, hidden_units: int = 32
) -> tuple[keras.Model, float]:
    """A Dense classifier of :func:`digits_data` and its accuracy on the test split.

    The defaults (88 % test accuracy, ~2 s) make version 1; ``epochs=20,
    hidden_units=64`` (97 %, ~3.5 s) makes the "improved" version 2.
    """
    data = digits_data()
    keras.utils.set_random_seed(seed)
    pixels = keras.Input((64,), name="pixels")
    hidden = keras.layers.Dense(hidden_units, activation="relu")(pixels)
    model = keras.Model(pixels, keras.layers.Dense(10, activation="softmax")(hidden), name="digits")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    return model, float(accuracy)


def half_plus_two(version: int = 1) -> keras.Model:
    """TF Serving's ``half_plus_two`` test model: ``y = 0.5 * x + 1 + version``.

    Version 1 is upstream's ``0.5 * x + 2``; version 2 adds 3, so the answering version shows
    in the numbers (``x = 1.0`` gives ``2.5`` and ``3.5``). Every value is exact in float32.
    """
    x = keras.Input((1,), name="x")
    y = keras.layers.Dense(
        1,
        kernel_initializer=keras.initializers.Constant(0.5),
        bias_initializer=keras.initializers.Constant(1.0 + version),
        name="y",
    )(x)
    return keras.Model(x, {"y": y}, name="half_plus_two")


def multi_io_model() -> keras.Model:
    """Two named inputs, two named outputs: ``sum`` = the sum of all five input values and
    ``doubled`` = ``2 * concat(a, b)``; exact for small integers."""
    a = keras.Input((2,), name="a")
    b = keras.Input((3,), name="b")
    both = keras.layers.Concatenate()([a, b])
    total = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros")(both)
    doubled = keras.layers.Dense(
        5,
        kernel_initializer=keras.initializers.Identity(gain=2.0),
        bias_initializer="zeros",
    )(both)
    return keras.Model({"a": a, "b": b}, {"sum": total, "doubled": doubled}, name="multi_io")


def image_cnn(seed: int = 0) -> keras.Model:
    """An untrained, seeded 28x28x1 CNN (1.4 k parameters) for benchmarks and batching tests."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((28, 28, 1), name="image")
    h = keras.layers.Conv2D(8, 3, activation="relu")(image)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(16, 3, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(image, keras.layers.Dense(10, activation="softmax")(h), name="image_cnn")


def mobilenet_v2(seed: int = 0) -> keras.Model:
    """Keras's MobileNetV2 with random (seeded) weights, 128x128x3 in, 10 classes out (2.3 M
    parameters): a model whose compute matters, for benchmarks of batching. Nothing is
    downloaded (``weights=None``)."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((128, 128, 3), name="image")
    net = keras.applications.MobileNetV2(
        input_shape=(128, 128, 3), weights=None, classes=10, input_tensor=image
    )
    return keras.Model(image, net.output, name="mobilenet_v2")


JSON_DTYPES = (
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint32",
    "uint64",
    "bool",
    "string",
)
"""The dtypes TF Serving's REST codec converts JSON values to (``json_tensor.cc``)."""


class _Echo(keras.layers.Layer):
    """Returns its input unchanged, whatever its dtype (no autocasting to float32)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(autocast=False, **kwargs)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.identity(x)

    def compute_output_spec(self, x: keras.KerasTensor) -> keras.KerasTensor:
        return keras.KerasTensor(x.shape, x.dtype)


def dtypes_echo(dtypes: tuple[str, ...] = JSON_DTYPES) -> keras.Model:
    """One input per dtype, named after it (``float32``, ``string``...), shape ``[?,2]``; each
    comes back unchanged as ``<dtype>_out``. With ``string`` among them, ``string_bytes`` echoes
    it too, so the REST answer shows it as ``{"b64": ...}``."""
    inputs = {dtype: keras.Input((2,), dtype=dtype, name=dtype) for dtype in dtypes}
    outputs = {f"{dtype}_out": _Echo(name=f"echo_{dtype}")(x) for dtype, x in inputs.items()}
    if "string" in inputs:
        outputs["string_bytes"] = _Echo(name="echo_string_bytes")(inputs["string"])
    return keras.Model(inputs, outputs, name="dtypes_echo")


class _BusyWait(keras.layers.Layer):
    """Spins until the largest of its inputs, in seconds, has passed; then returns them."""

    def call(self, seconds: tf.Tensor) -> tf.Tensor:
        start = tf.timestamp()
        wait = tf.cast(tf.reduce_max(seconds), tf.float64)
        (spins,) = tf.while_loop(lambda n: tf.timestamp() - start < wait, lambda n: n + 1, [0])
        return seconds + tf.cast(spins * 0, seconds.dtype)  # depends on the loop, adds nothing

    def compute_output_spec(self, seconds: keras.KerasTensor) -> keras.KerasTensor:
        return keras.KerasTensor(seconds.shape, seconds.dtype)


def busy_wait() -> keras.Model:
    """A model whose answer takes as long as asked: ``y = seconds`` after busy-waiting
    ``max(seconds)`` (one CPU core), for deadlines and requests in flight."""
    seconds = keras.Input((1,), name="seconds")
    return keras.Model(seconds, {"y": _BusyWait(name="busy_wait")(seconds)}, name="busy_wait")


COLORS = ("red", "green", "blue")
"""The class names of :func:`color_classifier`'s scores."""


def color_classifier() -> keras.Model:
    """Scores :data:`COLORS` from ``rgb`` and an integer ``boost`` for red: the softmax of
    ``4·rgb + [boost, 0, 0]``. Fixed weights, no training; ``boost`` makes an integer feature."""
    rgb = keras.Input((3,), name="rgb")
    boost = keras.Input((1,), dtype="int32", name="boost")
    both = keras.layers.Concatenate()([rgb, keras.ops.cast(boost, "float32")])
    scores = keras.layers.Dense(3, activation="softmax", name="scores")
    model = keras.Model({"rgb": rgb, "boost": boost}, scores(both), name="color_classifier")
    kernel = np.array([[4, 0, 0], [0, 4, 0], [0, 0, 4], [1, 0, 0]], np.float32)
    scores.set_weights([kernel, np.zeros(3, np.float32)])
    return model


def color_example_signatures() -> dict[str, Any]:
    """:func:`color_classifier`'s tf.Example signatures: ``classification`` (``classes`` are
    :data:`COLORS`, and ``scores``) and ``scores`` (``scores`` only)."""
    from tfserve_nb.export import ClassifySignature

    return {"classification": ClassifySignature(COLORS), "scores": ClassifySignature()}


def half_plus_two_example_signatures() -> dict[str, Any]:
    """TF Serving's ``half_plus_two`` test signatures over tf.Example feature ``x``:
    ``classify_x_to_y`` (``scores`` only, ``[?,1]``) and ``regress_x_to_y``; with
    :func:`half_plus_two` version 1, ``{"x": 2.0}`` gives 3.0 from both."""
    from tfserve_nb.export import ClassifySignature, RegressSignature

    return {"classify_x_to_y": ClassifySignature(), "regress_x_to_y": RegressSignature()}


def sequential(version: int = 1) -> keras.Model:
    """A ``keras.Sequential`` built without ``keras.Input``, as notebooks often build them:
    y = sum(x) + version for x of 3 values. Keras names its input ``keras_tensor_<n>`` with a
    new ``n`` for every model built in the process, so two versions differ in input alias."""
    model = keras.Sequential(
        [
            keras.layers.Dense(
                1,
                kernel_initializer="ones",
                bias_initializer=keras.initializers.Constant(float(version)),
            )
        ],
        name="sequential",
    )
    model.build((None, 3))
    return model


COLUMN_NAMES = ("petal-width", "f.x", "2nd")
""":func:`column_names`' inputs: named like DataFrame columns, none a Python identifier."""


def column_names() -> keras.Model:
    """Dict inputs named :data:`COLUMN_NAMES` (``[?,1]`` each); ``total`` = petal-width +
    10·f.x + 100·2nd, so a column sent to the wrong input shows in the answer."""
    inputs = {name: keras.Input((1,), name=name) for name in COLUMN_NAMES}
    weights = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.Constant([[1.0], [10.0], [100.0]]), name="total"
    )
    total = weights(keras.layers.Concatenate()([inputs[name] for name in COLUMN_NAMES]))
    return keras.Model(inputs, {"total": total}, name="column_names")


def tabular() -> keras.Model:
    """Inputs of three shapes a DataFrame column maps to: ``flat`` float32[?], ``column``
    int32[?,1] and ``vector`` float32[?,3]; ``total`` = flat + 10·column + 100·sum(vector),
    exact for small integers."""
    flat = keras.Input((), name="flat")
    column = keras.Input((1,), dtype="int32", name="column")
    vector = keras.Input((3,), name="vector")
    total = (
        keras.ops.expand_dims(flat, -1)
        + 10.0 * keras.ops.cast(column, "float32")
        + 100.0 * keras.ops.sum(vector, axis=1, keepdims=True)
    )
    return keras.Model(
        {"flat": flat, "column": column, "vector": vector}, {"total": total}, name="tabular"
    )
