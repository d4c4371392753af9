"""What the model server process imports: not Keras, which TensorFlow's import would pull in
eagerly and serving never uses (:mod:`tfserve_nb.model_server.tensorflow_import`).

A probe process runs the server (``main.run``, what ``python -m tfserve_nb.model_server`` runs)
on its main thread; a thread of the probe waits for the ports, sends one REST predict with the
standard library only (so the probe itself imports nothing), then prints which Keras modules the
process holds and stops the server with SIGTERM. With ``TFSERVE_NB_LAZY_KERAS=0`` (TensorFlow's
own import) the same probe sees Keras: the check can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tfserve_nb.model_server.tensorflow_import import skips_eager_keras

PROBE = """
import json, os, signal, sys, threading, time, urllib.request
from tfserve_nb.model_server.main import run

port_file = sys.argv[1]

def probe():
    deadline = time.monotonic() + 120
    while not os.path.exists(port_file):
        if time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.05)
    with open(port_file) as f:
        rest_port = json.load(f)["rest_port"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{rest_port}/v1/models/hp2:predict",
        data=b'{"instances": [[1.0]]}',
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    keras = sorted(m for m in sys.modules if m == "keras" or m.startswith("keras."))
    print(json.dumps({"answer": answer, "keras": keras}), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=probe, daemon=True).start()
sys.exit(run(sys.argv[2:]))
"""


def _without_keras_choice(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables that choose how TensorFlow imports Keras."""
    return {
        k: v
        for k, v in environ.items()
        if k not in ("TFSERVE_NB_LAZY_KERAS", "TF_USE_LEGACY_KERAS")
    }


def served_and_imported(tmp_path: Path, base_path: Path, **env: str) -> dict[str, Any]:
    """Run the probe on ``base_path`` (as model ``hp2``) with ``env`` added; its report."""
    port_file = tmp_path / "ports.json"
    flags = [
        "--ephemeral_ports",
        f"--port_file={port_file}",
        "--model_name=hp2",
        f"--model_base_path={base_path}",
    ]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(port_file), *flags],
        env={**_without_keras_choice(os.environ), **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["answer"] == {"predictions": [[2.5]]}
    return report


def test_the_server_serves_without_importing_keras(tmp_path, half_plus_two_base) -> None:
    report = served_and_imported(tmp_path, half_plus_two_base)
    assert report["keras"] == []


def test_with_tensorflows_own_import_the_probe_sees_keras(tmp_path, half_plus_two_base) -> None:
    report = served_and_imported(tmp_path, half_plus_two_base, TFSERVE_NB_LAZY_KERAS="0")
    assert "keras.src.optimizers" in report["keras"]


def test_keras_stays_importable_after_the_import() -> None:
    """The skip lasts for TensorFlow's import only: ``tf.keras`` still loads Keras when used."""
    code = (
        "import sys\n"
        "from tfserve_nb.model_server.tensorflow_import import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "before = 'keras' in sys.modules\n"
        "layer = tf.keras.layers.Dense(2)\n"
        "print(before, type(layer).__module__.startswith('keras.'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_without_keras_choice(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.parametrize(
    ("env", "skips"),
    [
        ({}, True),
        ({"TFSERVE_NB_LAZY_KERAS": "0"}, False),
        ({"TF_USE_LEGACY_KERAS": "1"}, False),  # tf_keras registers revived types at import
        ({"TF_USE_LEGACY_KERAS": "0"}, True),
    ],
)
def test_when_the_keras_import_is_skipped(monkeypatch, env, skips) -> None:
    for name in ("TFSERVE_NB_LAZY_KERAS", "TF_USE_LEGACY_KERAS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert skips_eager_keras() is skips
