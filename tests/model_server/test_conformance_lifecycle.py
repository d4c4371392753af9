"""Contract §6: the version lifecycle — the availability-preserving switch, unloading versions
that drop out, retried loads, atomically exported versions — on real servers polling real
directories, with client traffic running throughout where a switch happens.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import grpc
import pytest

from tests.helpers.conformance import (
    add_broken_version,
    assert_serving,
    half_plus_two_answer,
    rest_json,
    version_states,
    wait_for_states,
)
from tests.helpers.server_process import ServerProcess
from tests.helpers.waiting import wait_until
from tfserve_nb.export import export_model


class Traffic:
    """Predicts ``x = 1`` on a half_plus_two model over gRPC and REST, in a loop, until the
    ``with`` block ends; records the answering versions (in order) and every failure."""

    def __init__(self, server: ServerProcess, name: str) -> None:
        self.server, self.name = server, name
        self.versions: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                version, _ = half_plus_two_answer(self.server, self.name)
                self.versions.append(version)
                path = f"/v1/models/{self.name}:predict"
                status, body = rest_json(self.server, "POST", path, {"instances": [[1.0]]})
                if status != 200:
                    self.failures.append(f"REST {status}: {body}")
                else:  # version v answers 0.5 * 1 + 1 + v
                    self.versions.append(round(body["predictions"][0][0] - 1.5))
            except grpc.RpcError as exc:
                self.failures.append(f"gRPC {exc.code()}: {exc.details()}")

    def wait_for_version(self, version: int) -> None:
        wait_until(lambda: self.versions and self.versions[-1] == version, f"v{version} answers")

    def __enter__(self) -> Traffic:
        self._thread.start()
        wait_until(lambda: self.versions or self.failures, "the first answer")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _serve(tmp_path: Path, base: Path, *flags: str) -> ServerProcess:
    return ServerProcess(
        tmp_path,
        f"--model_base_path={base}",
        "--model_name=hp2",
        "--file_system_poll_wait_seconds=1",
        "--ephemeral_ports",
        *flags,
    )


def _remove_version(base: Path, version: int) -> None:
    """Take a version away in one rename, then delete it."""
    hidden = Path(tempfile.mkdtemp(prefix=".tmp-removed-", dir=base))
    os.replace(base / str(version), hidden / "gone")
    shutil.rmtree(hidden)


@pytest.fixture
def served_base(tmp_path, half_plus_two_base):
    """``half_plus_two`` version 1 served as ``hp2``, polled every second."""
    server = _serve(tmp_path, half_plus_two_base)
    yield server, half_plus_two_base
    server.stop()


def test_exported_version_takes_over_without_a_failed_request(served_base, half_plus_two_models):
    """export_model writes elsewhere and renames, so the polling server never sees a
    half-written version; the new version loads first and the old one unloads after it is
    AVAILABLE, so no request fails and answers never go back to the old version."""
    server, base = served_base
    with Traffic(server, "hp2") as traffic:
        exported = export_model(half_plus_two_models.models[2], base)
        assert exported.version == 2
        traffic.wait_for_version(2)
        wait_for_states(server, "hp2", {2: "AVAILABLE", 1: "END"})
    assert traffic.failures == []
    assert traffic.versions[0] == 1 and traffic.versions == sorted(traffic.versions)
    assert version_states(server, "hp2") == [(2, "AVAILABLE", 0, ""), (1, "END", 0, "")]
    logs = server.logs()
    loaded = logs.index("Successfully loaded servable version {name: hp2 version: 2}")
    assert loaded < logs.index("Done unloading servable version {name: hp2 version: 1}")
    assert "Loading servable: {name: hp2 version: 2} failed" not in logs


def test_versions_that_drop_out_are_unloaded_even_the_last(served_base, half_plus_two_models):
    server, base = served_base
    half_plus_two_models.add_version(base, 2)
    wait_for_states(server, "hp2", {2: "AVAILABLE", 1: "END"})
    _remove_version(base, 2)  # the newest goes: version 1 is the latest again
    wait_for_states(server, "hp2", {2: "END", 1: "AVAILABLE"})
    assert half_plus_two_answer(server, "hp2") == (1, 2.5)
    _remove_version(base, 1)  # the last one goes too
    wait_for_states(server, "hp2", {2: "END", 1: "END"})
    status, body = rest_json(server, "POST", "/v1/models/hp2:predict", {"instances": [[1.0]]})
    assert (status, body) == (404, {"error": "Servable not found for request: Latest(hp2)"})
    half_plus_two_models.add_version(base, 1, as_version=3)
    wait_for_states(server, "hp2", {3: "AVAILABLE", 2: "END", 1: "END"})
    assert_serving(server, "hp2")


def _repair(version_dir: Path, source: Path) -> None:
    """Make ``version_dir`` a copy of ``source``, ``saved_model.pb`` moved in last."""
    staging = Path(tempfile.mkdtemp(prefix=".tmp-repair-", dir=version_dir.parent))
    shutil.copytree(source, staging, dirs_exist_ok=True)
    for entry in sorted(os.listdir(staging), key=lambda name: name == "saved_model.pb"):
        os.replace(staging / entry, version_dir / entry)
    staging.rmdir()


def test_a_failed_load_is_retried_while_the_previous_version_serves(
    tmp_path, half_plus_two_base, half_plus_two_models
):
    server = _serve(
        tmp_path,
        half_plus_two_base,
        "--max_num_load_retries=1000",
        "--load_retry_interval_micros=200000",
    )
    try:
        with Traffic(server, "hp2") as traffic:
            broken = add_broken_version(half_plus_two_base, 2)
            retried = "Retrying of Loading servable: {name: hp2 version: 2} retry: 2"
            wait_until(lambda: retried in server.logs(), "two retries of version 2")
            assert version_states(server, "hp2")[0][:2] == (2, "LOADING")
            _repair(broken, half_plus_two_models.exports[2])
            traffic.wait_for_version(2)
            wait_for_states(server, "hp2", {2: "AVAILABLE", 1: "END"})
        assert traffic.failures == []
        assert traffic.versions[0] == 1 and traffic.versions == sorted(traffic.versions)
    finally:
        server.stop()


def test_a_load_that_fails_every_retry_ends_with_its_error(tmp_path, half_plus_two_base):
    server = _serve(
        tmp_path,
        half_plus_two_base,
        "--max_num_load_retries=1",
        "--load_retry_interval_micros=100000",
    )
    try:
        add_broken_version(half_plus_two_base, 2)
        wait_for_states(server, "hp2", {2: "END", 1: "AVAILABLE"})
        (_, _, code, message), _ = version_states(server, "hp2")
        assert code == 2 and "tensorflow.SavedModel" in message  # UNKNOWN: the parse error
        logs = server.logs()
        assert logs.count("Retrying of Loading servable: {name: hp2 version: 2} retry: ") == 1
        assert (
            "Retrying of Loading servable: {name: hp2 version: 2} exhausted max_num_retries: 1"
            in logs
        )
        assert half_plus_two_answer(server, "hp2") == (1, 2.5)
        assert_serving(server, "hp2")
    finally:
        server.stop()
