"""The benchmark's models: how each is built, what one request sends it, and how the batching
server batches it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SHARED_BATCHING = """\
num_batch_threads { value: 2 }
"""
"""The batching server's ``--batching_parameters_file``: with
``--enable_per_model_batching_parameters`` it only sizes the pool of batch threads the models
share (as many as cores, upstream's advice for CPUs); each model batches with its own
:attr:`ModelSpec.batching`."""


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark model: its generator in ``tests/helpers/models.py``, its one input, and the
    ``BatchingParameters`` its versions carry (``batching_params.pbtxt``)."""

    name: str
    input: str
    row_shape: tuple[int, ...]
    batching: str = ""

    def build(self) -> Any:
        """The Keras model (deterministic: the generators are seeded)."""
        from tests.helpers import models

        if self.name == "digits":
            return models.digits_classifier()[0]
        if self.name == "mobilenet_v2":
            return models.mobilenet_v2()
        return models.image_cnn()

    def example(self, rows: int = 1) -> np.ndarray:
        return np.random.default_rng(0).random((rows, *self.row_shape), dtype=np.float32)

    @property
    def max_batch_size(self) -> int:
        """The ``max_batch_size`` of :attr:`batching`."""
        for line in self.batching.splitlines():
            if line.startswith("max_batch_size"):
                return int(line.split("value:")[1].strip(" }"))
        raise ValueError(f"{self.name}: no max_batch_size in its batching parameters")


def _batching(max_batch_size: int, timeout_micros: int) -> str:
    return (
        f"max_batch_size {{ value: {max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {timeout_micros} }}\n"
        "max_enqueued_batches { value: 100 }\n"
    )


MODELS = {
    "digits": ModelSpec("digits", "pixels", (64,), _batching(64, 2000)),
    "image_cnn": ModelSpec("image_cnn", "image", (28, 28, 1), _batching(64, 2000)),
    "mobilenet_v2": ModelSpec("mobilenet_v2", "image", (128, 128, 3), _batching(32, 5000)),
}
"""Tiny models whose requests are all transport (digits, the small CNN) and one whose compute
matters (MobileNetV2). The tiny ones batch up to 64 requests after 2 ms (tried with 64 clients
on two cores: a timeout of 0 keeps batches at two or three requests, 5 ms makes the clients
wait on the timeout); MobileNetV2's parameters: see ``bench/results/RESULTS.md``."""
