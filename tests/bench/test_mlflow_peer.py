"""The MLflow peer (:mod:`bench.mlflow_peer`): a Keras model saved as an MLflow model, served by
``mlflow models serve``, answers like ``model.predict``, and stopping it leaves no process.

Skipped where MLflow is not installed: it is in the ``peers`` extra, which the test install does
not include, so CI does not run this; ``python -m bench`` installs the extra when it measures
the peer (:func:`bench.mlflow_peer.ensure_installed`).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bench import mlflow_peer
from bench.models import ModelSpec
from bench.setups import answer, rest_target
from tests.helpers import models
from tfserve_nb.processes import process_alive

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None, reason="MLflow (the 'peers' extra) not installed"
)

SUM = ModelSpec("sequential", "x", (3,))


def test_mlflow_serves_the_keras_model_and_stops_with_every_process(tmp_path):
    model = models.sequential()  # y = sum(x) + 1
    mlflow_peer.save(model, tmp_path / "model", SUM.example(2))
    server = mlflow_peer.serve(tmp_path / "model", tmp_path / "mlflow.log")
    try:
        started = server.running()
        assert server.popen.pid in started and len(started) >= 2  # the command and uvicorn
        target = rest_target(SUM, server.ports["rest_port"], mlflow_peer.REQUEST_PATH)
        got = answer(target, SUM)
        want = model.predict(SUM.example(), verbose=0)
        assert got.shape == want.shape == (1, 1)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    finally:
        server.stop()
    assert server.running() == []
    assert not any(process_alive(pid) for pid in started)
    assert server.popen.returncode is not None
