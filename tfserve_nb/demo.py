"""The main job, end to end on the embedded server: export, serve, predict, new version, switch.

``tfserve-nb demo`` (README command 1) trains a small classifier on scikit-learn's bundled
``load_digits``, exports v1, serves it, predicts, exports an improved v2, watches the server move
to v2 while requests keep flowing, pins v1 back with a version policy, and stops — printing what
happened and how long each step took.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .waiting import wait_until


def _step(title: str) -> Callable[[str], None]:
    start = time.perf_counter()
    print(f"\n== {title}", flush=True)

    def done(detail: str) -> None:
        print(f"   {detail}  [{time.perf_counter() - start:.2f} s]", flush=True)

    return done


def train_digits_classifier(hidden: int, epochs: int, seed: int = 0) -> tuple[Any, float, Any]:
    """A Dense classifier on ``load_digits`` (input ``pixels``: 64 floats in [0, 1]).
    Returns the model, its test accuracy and the held-out data ``(x_test, y_test)``."""
    import keras
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(64,), name="pixels")
    hidden_layer = keras.layers.Dense(hidden, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden_layer)
    model = keras.Model(inputs, outputs, name="digits")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    return model, accuracy, (x_test, y_test)


def run(base_dir: str | None = None) -> dict[str, float]:
    """Run the demo; returns the measured timings (seconds) and accuracies."""
    from . import export_model, serve

    base_dir = base_dir or tempfile.mkdtemp(prefix="tfserve-nb-demo-")
    base_path = os.path.join(base_dir, "digits")
    results: dict[str, float] = {}

    done = _step("Train a classifier on scikit-learn's load_digits (v1: 16 hidden units, 4 epochs)")
    model_v1, acc_v1, (x_test, y_test) = train_digits_classifier(hidden=16, epochs=4)
    done(f"v1 test accuracy {acc_v1:.3f}")

    done = _step(f"Export v1 to {base_path}")
    exported = export_model(model_v1, base_path)
    done(f"wrote {exported.path} with inputs {exported.signature.inputs['pixels'].describe()}")

    done = _step("Serve it on the embedded TF-Serving-compatible server")
    t0 = time.perf_counter()
    server = serve(base_path, backend="embedded", extra_args=["--file_system_poll_wait_seconds=1"])
    results["cold_start_s"] = time.perf_counter() - t0
    try:
        done(
            f"gRPC {server.grpc_address}, REST {server.rest_url}, "
            f"status {[(s.version, s.state) for s in server.status()]}"
        )

        done = _step("Predict 10 held-out digits over gRPC")
        answer = server.predict_detailed(x_test[:10])
        predicted = answer.outputs["output_0"].argmax(axis=1)
        done(f"v{answer.version} predicts {predicted.tolist()}, truth {y_test[:10].tolist()}")
        rest = server.client.predict_rest(x_test[:10])
        assert np.allclose(rest, answer.outputs["output_0"], atol=1e-6), "REST and gRPC disagree"
        print("   REST (row format) returns the same numbers", flush=True)

        done = _step("Train an improved v2 (64 hidden units, 30 epochs) and export it")
        model_v2, acc_v2, _ = train_digits_classifier(hidden=64, epochs=30, seed=1)
        results["accuracy_v1"], results["accuracy_v2"] = acc_v1, acc_v2
        answered, failures, stop = _traffic(server, x_test[:1])
        t0 = time.perf_counter()
        export_model(model_v2, base_path)
        version = server.wait_until_available(2, timeout=30)
        wait_until(
            lambda: server.predict_detailed(x_test[:1]).version == 2,
            30,
            timed_out=lambda: RuntimeError("v2 is AVAILABLE but requests are still answered by v1"),
            interval=0.01,
        )
        results["switch_s"] = time.perf_counter() - t0
        stop()
        done(
            f"v2 test accuracy {acc_v2:.3f}; server answered with v{version} "
            f"{results['switch_s']:.2f} s after the export returned; during the switch "
            f"{sum(answered.values())} requests answered ({dict(answered)}), {failures[0]} failed"
        )
        results["failed_during_switch"] = failures[0]

        done = _step("Pin v1 back with a version policy (HandleReloadConfigRequest)")
        server.set_version_policy(1)
        answer = server.predict_detailed(x_test[:10])
        results["pinned_version"] = answer.version or 0
        states = [(s.version, s.state) for s in server.status()]
        done(f"now v{answer.version} answers; status {states}")

        done = _step("Follow the latest version again")
        server.set_version_policy("latest")
        answer = server.predict_detailed(x_test)
        results["latest_version"] = answer.version or 0
        accuracy = float((answer.outputs["output_0"].argmax(axis=1) == y_test).mean())
        done(f"v{answer.version} answers; served accuracy on {len(y_test)} digits {accuracy:.3f}")
    finally:
        done = _step("Stop the server")
        server.stop()
        done(f"stopped; alive={server.process.alive()}")
    print(
        f"\nSummary: cold start {results['cold_start_s']:.2f} s, switch to v2 "
        f"{results['switch_s']:.2f} s with {results['failed_during_switch']:.0f} failed "
        f"requests; accuracy v1 {acc_v1:.3f} -> v2 {acc_v2:.3f}. Models kept in {base_path}."
    )
    return results


def _traffic(server: Any, x: np.ndarray) -> tuple[dict[int, int], list[int], Callable[[], None]]:
    """A background request loop counting answers per version and failures."""
    answered: dict[int, int] = {}
    failures = [0]
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.is_set():
            try:
                version = server.predict_detailed(x).version
                answered[version] = answered.get(version, 0) + 1
            except Exception:
                failures[0] += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join()

    return answered, failures, stop


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; exit 1 if a request failed during the switch or a version policy did not
    move the answers to the version it named."""
    parser = argparse.ArgumentParser(prog="tfserve-nb demo", description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", help="where to export the models (default: a temp dir)")
    args = parser.parse_args(argv)
    results = run(args.base_dir)
    problems = []
    if results["failed_during_switch"]:
        problems.append(f"{results['failed_during_switch']:.0f} requests failed during the switch")
    if results["pinned_version"] != 1:
        problems.append(f"v{results['pinned_version']:.0f} answered after pinning v1")
    if results["latest_version"] != 2:
        problems.append(f"v{results['latest_version']:.0f} answered when following the latest")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0
