"""predict_util with ``--enable_signature_method_name_check``: predict runs predict, classify
and regress signatures, and refuses any other method with upstream's INTERNAL text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from tfserve_nb.core.status import Code, ServingStatusError
from tfserve_nb.protocol.signature import Signature, TensorSpec
from tfserve_nb.servables.predict_util import run_predict


class Servable:
    def __init__(self, method_name: str) -> None:
        x = TensorSpec("x", "DT_FLOAT", (None,), "x:0")
        self.signatures = {"s": Signature("s", method_name, {"x": x}, {"x": x})}

    def run(
        self, signature: Any, inputs: Mapping[str, np.ndarray], aliases: Sequence[str]
    ) -> dict[str, np.ndarray]:
        return {alias: inputs[alias] for alias in aliases}


X = {"x": np.ones(2, np.float32)}


@pytest.mark.parametrize("kind", ["predict", "classify", "regress"])
def test_serving_methods_pass(kind: str) -> None:
    servable = Servable(f"tensorflow/serving/{kind}")
    assert run_predict(1, servable, X, "s", method_name_check=True).outputs["x"].tolist() == [1, 1]


def test_other_methods_are_refused_only_when_checked() -> None:
    servable = Servable("custom/method")
    assert run_predict(1, servable, X, "s").signature_name == "s"
    with pytest.raises(ServingStatusError) as exc:
        run_predict(1, servable, X, "s", method_name_check=True)
    assert (exc.value.code, exc.value.message) == (
        Code.INTERNAL,
        "Expected prediction signature method_name to be one of {tensorflow/serving/predict, "
        "tensorflow/serving/classify, tensorflow/serving/regress}. Was: custom/method",
    )
