"""serve() and the ModelServer handle on the embedded backend (a real child process)."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable

import numpy as np
import pytest

import tfserve_nb as tfs
from tests.helpers.waiting import wait_until
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import All, Specific
from tfserve_nb.errors import ConfigError, ServerStartError, ServingError


@pytest.fixture
def hp2(half_plus_two_base):
    server = tfs.serve(
        half_plus_two_base, backend="embedded", extra_args=["--file_system_poll_wait_seconds=1"]
    )
    yield server
    server.stop()


def test_serve_predict_status_and_stop(hp2, half_plus_two_base):
    assert hp2.backend == "embedded"
    assert hp2.model_name == half_plus_two_base.name
    assert hp2.grpc_address.startswith("127.0.0.1:") and hp2.rest_url.startswith(
        "http://127.0.0.1:"
    )
    y = hp2.predict([[1.0], [2.0]])
    assert isinstance(y, np.ndarray) and y.ravel().tolist() == [2.5, 3.0]
    result = hp2.predict_detailed(np.array([[4.0]]))  # float64 in: cast to the signature's float32
    assert result.version == 1 and result.outputs["y"].tolist() == [[4.0]]
    assert [(s.version, s.state) for s in hp2.status()] == [(1, "AVAILABLE")]
    assert hp2.metadata()["serving_default"].inputs["x"].dtype == "DT_FLOAT"
    assert hp2.client.predict_rest([[1.0]]).tolist() == [[2.5]]
    html = hp2._repr_html_()
    assert "running" in html and "v1 AVAILABLE" in html
    assert "Running gRPC ModelServer at 127.0.0.1:" in hp2.logs()
    hp2.stop()
    assert not hp2.process.alive()
    assert "stopped" in hp2._repr_html_()
    hp2.stop()  # idempotent


def test_several_inputs_in_and_a_dict_of_outputs_out(multi_io_base):
    with tfs.serve(multi_io_base, backend="embedded") as server:
        answer = server.predict({"a": [[1.0, 2.0]], "b": [[3.0, 4.0, 5.0]]})
        assert isinstance(answer, dict) and sorted(answer) == ["doubled", "sum"]
        np.testing.assert_allclose(answer["sum"], [[15.0]])
        rest = server.client.predict_rest({"a": [[1.0, 2.0]], "b": [[3.0, 4.0, 5.0]]})
        np.testing.assert_allclose(rest["sum"], [[15.0]])
        np.testing.assert_allclose(rest["doubled"], answer["doubled"])


def test_version_policy_and_labels(hp2, half_plus_two_base, half_plus_two_models):
    half_plus_two_models.add_version(half_plus_two_base, 2)
    assert hp2.wait_until_available(2, timeout=30) == 2
    hp2.set_version_policy("all")
    hp2.wait_until_available(1, timeout=30)
    assert hp2.predict([[1.0]], version=1).tolist() == [[2.5]]
    assert hp2.predict([[1.0]], version=2).tolist() == [[3.5]]
    hp2.set_labels({"stable": 1, "canary": 2})
    assert hp2.predict_detailed([[1.0]], label="stable").version == 1
    assert hp2.predict_detailed([[1.0]], label="canary").version == 2
    with pytest.raises(ServingError) as exc:
        hp2.set_labels({"stable": 1, "canary": 3})
    assert exc.value.code == "FAILED_PRECONDITION"
    assert exc.value.message == (
        "Request to assign label to version 3 of model "
        f"{hp2.model_name}, which is not currently available for inference"
    )
    assert hp2.models[hp2.model_name].labels == {"stable": 1, "canary": 2}  # unchanged
    hp2.set_labels({})
    hp2.set_version_policy(1)  # pin v1
    wait_until(
        lambda: [s.state for s in hp2.status() if s.version == 2] == ["END"],
        "version 2 to reach END",
        timeout=30,
        interval=0.05,
    )
    assert hp2.predict_detailed([[1.0]]).version == 1
    with pytest.raises(ServingError) as exc:
        hp2.predict([[1.0]], version=2)
    assert exc.value.code == "NOT_FOUND"
    with pytest.raises(ConfigError):
        hp2.set_version_policy("newest")


def test_concurrent_config_changes_lose_none(half_plus_two_base, half_plus_two_models):
    """ModelServer is thread-safe: config changes made by threads at the same moment — one
    model's policy, and each model's labels — are applied one after another, none lost."""
    half_plus_two_models.add_version(half_plus_two_base, 2)
    names = ["m0", "m1", "m2", "m3"]
    configs = [ModelConfig(name, str(half_plus_two_base), All()) for name in names]
    with tfs.serve(configs, backend="embedded") as server:
        for name in names:
            for version in (1, 2):
                server.wait_until_available(version, model_name=name, timeout=60)
        for round_ in range(3):  # each round: every thread makes one change at once
            policy = Specific((1, 2)) if round_ % 2 == 0 else All()  # both keep versions 1, 2
            labels = {
                name: {"stable": 1, "canary": 1 + (i + round_) % 2} for i, name in enumerate(names)
            }
            changes: list[Callable[[], None]] = [
                functools.partial(server.set_version_policy, policy, model_name="m0", wait=False)
            ] + [
                functools.partial(server.set_labels, labels[name], model_name=name)
                for name in names
            ]
            run_together(changes)
            assert server.models["m0"].version_policy == policy
            assert {name: server.models[name].labels for name in names} == labels
            for name in names:  # the config the server was sent last holds every change too
                for label, version in labels[name].items():
                    answer = server.predict_detailed([[1.0]], model_name=name, label=label)
                    assert answer.version == version, (round_, name, label)


def run_together(calls: list[Callable[[], None]]) -> None:
    """Run ``calls`` in threads released at the same moment; raise the first failure."""
    start = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a change did not return"
    if failures:
        raise failures[0]


def test_serve_refuses_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="is not a directory"):
        tfs.serve(tmp_path / "absent", backend="embedded")
    with pytest.raises(ConfigError, match="s3://bucket/digits is in object storage"):
        tfs.serve("s3://bucket/digits", backend="embedded")
    with pytest.raises(ConfigError, match="Unknown backend"):
        tfs.serve(tmp_path, backend="kubernetes")


def test_startup_failure_shows_the_server_output(tmp_path):
    broken = tmp_path / "broken"
    (broken / "1").mkdir(parents=True)
    (broken / "1" / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ServerStartError) as exc:
        tfs.serve(broken, backend="embedded", extra_args=["--max_num_load_retries=0"])
    assert "exited with code" in str(exc.value)
    assert "did not become available" in exc.value.logs


def test_no_orphan_when_the_notebook_process_is_killed(half_plus_two_base, tmp_path):
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(f"""
        import time, tfserve_nb as tfs
        server = tfs.serve({str(half_plus_two_base)!r}, backend="embedded")
        open({str(pid_file)!r}, "w").write(str(server.process.pid))
        time.sleep(600)
    """)
    kernel = subprocess.Popen([sys.executable, "-c", script])

    def pid_written() -> bool:
        if pid_file.exists() and pid_file.read_text():
            return True
        assert kernel.poll() is None, f"the kernel exited with code {kernel.returncode}"
        return False

    try:
        wait_until(pid_written, "the server's pid in the file", timeout=120, interval=0.1)
        server_pid = int(pid_file.read_text())
        os.kill(server_pid, 0)  # alive
        kernel.send_signal(signal.SIGKILL)  # like a crashed kernel: no cleanup code runs
        kernel.wait()
        wait_until(
            lambda: not _alive(server_pid),
            "the server to die with its parent",
            timeout=30,
            interval=0.1,
        )
    finally:
        if kernel.poll() is None:
            kernel.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not reaped: its parent is gone and init reaps it) counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
