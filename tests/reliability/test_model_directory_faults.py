"""Faults in a served model directory, under load: a background client predicts the latest
version without pause while the directory is broken in the ways a careless user or a crashing
exporter breaks it; not one of its requests may fail, each fault ends with the expected version
answering, and the server answers afterwards.

The faults, in turn: a version directory that appears half-written (no ``saved_model.pb`` yet)
and is completed later (its loads fail and are retried, as upstream retries them); a corrupt
``saved_model.pb``; a version the server cannot read (mode 000; skipped as root, who reads it
anyway); the serving version deleted; and two versions swapped under their names (renames).
Versions are half_plus_two versions 1 and 2, copied under other numbers too; each answer names
the version that served it."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.helpers.conformance import (
    add_broken_version,
    predict_request,
    stubs,
)
from tests.helpers.server_process import ServerProcess
from tests.helpers.waiting import wait_until

LOAD_SECONDS_MAX = 240.0


class BackgroundClient:
    """Predicts ``hp2`` (latest) in a loop on its own channel until stopped (or for at most
    :data:`LOAD_SECONDS_MAX`), counting answers per version and failures by code."""

    def __init__(self, server: ServerProcess) -> None:
        self._channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        self._request = predict_request("hp2", {"x": np.array([[1.0]], np.float32)})
        self.versions: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self.first_failure = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        end = time.monotonic() + LOAD_SECONDS_MAX
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                response = stub.Predict(self._request, timeout=30)
            except grpc.RpcError as exc:
                self.failures[exc.code().name] += 1
                self.first_failure = self.first_failure or exc.details()
                continue
            self.versions[response.model_spec.version.value] += 1

    def answered_since(self, version: int, count: int) -> bool:
        return self.versions[version] > count

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        self._channel.close()


def latest_answer(server: ServerProcess) -> int:
    response = stubs(server)[0].Predict(
        predict_request("hp2", {"x": np.array([[1.0]], np.float32)}), timeout=30
    )
    return response.model_spec.version.value


def wait_for_answering(server: ServerProcess, client: BackgroundClient, version: int) -> None:
    """Until ``version`` answers the latest requests (and the background client saw it)."""
    seen = client.versions[version]
    wait_until(lambda: latest_answer(server) == version, f"version {version} to answer")
    wait_until(lambda: client.answered_since(version, seen), f"the client to see {version}")


@pytest.fixture
def served(tmp_path: Path, half_plus_two_models) -> tuple[ServerProcess, Path]:
    base = half_plus_two_models.make_base_path(tmp_path / "models", (1,), name="hp2")
    process = ServerProcess(
        tmp_path,
        "--model_name=hp2",
        f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=1",
        "--max_num_load_retries=20",
        "--load_retry_interval_micros=500000",
        "--ephemeral_ports",
    )
    yield process, base
    process.stop()


def test_directory_faults_under_load_fail_no_request(served, half_plus_two_models) -> None:
    server, base = served
    client = BackgroundClient(server)
    try:
        wait_for_answering(server, client, 1)

        # half-written, as `cp -r` leaves it: loads fail (and are retried) until it is whole
        partial = base / "2"
        partial.mkdir()
        (partial / "variables").mkdir()
        time.sleep(2.5)  # polls and load attempts see it unfinished; version 1 keeps answering
        assert latest_answer(server) == 1
        shutil.copytree(half_plus_two_models.exports[2], partial, dirs_exist_ok=True)
        wait_for_answering(server, client, 2)

        # corrupt: version 3's saved_model.pb is not a protobuf; 2 keeps answering
        add_broken_version(base, 3)
        time.sleep(2.5)
        assert latest_answer(server) == 2
        shutil.rmtree(base / "3")

        # unreadable: version 4 with mode 000 (root reads it all the same)
        if os.geteuid() != 0:
            unreadable = half_plus_two_models.add_version(base, 1, as_version=4)
            os.chmod(unreadable, 0)
            time.sleep(2.5)
            assert latest_answer(server) == 2
            os.chmod(unreadable, 0o755)
            shutil.rmtree(unreadable)

        # the serving version deleted: the next highest takes over
        half_plus_two_models.add_version(base, 2, as_version=4)
        wait_for_answering(server, client, 4)
        shutil.rmtree(base / "4")
        wait_for_answering(server, client, 2)

        # swapped: 2 and 5 exchange contents under their names, by renames
        half_plus_two_models.add_version(base, 1, as_version=5)
        wait_for_answering(server, client, 5)
        os.rename(base / "5", base / ".swap")
        os.rename(base / "2", base / "5")
        os.rename(base / ".swap", base / "2")
        time.sleep(2.5)
        assert latest_answer(server) == 5
    finally:
        client.stop()
    total = sum(client.versions.values())
    print(f"background client: {total} answered {dict(client.versions)}, failed {client.failures}")
    assert not client.failures, client.first_failure
    assert total > 100
