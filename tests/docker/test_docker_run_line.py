"""The ``docker run`` line and ``models.config`` a switch shows (:mod:`tfserve_nb.by_hand`) bring
a container up in that state: the line is run with ``bash`` from the folder holding the file, as
a user would paste it, with two changes this engine needs and a user's does not — the stand-in
image instead of ``tensorflow/serving`` (no registry here) and host networking with the stand-in's
mounts (the engine has no bridge network) — and the container is then asked over REST."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.docker.standin import standin_volumes
from tests.helpers.waiting import wait_until
from tfserve_nb.backends.docker.container import LABEL_OWNER_HOST
from tfserve_nb.by_hand import config_reload
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import Specific

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.loads(reply.read())


def test_the_docker_run_line_starts_a_container_in_the_shown_state(
    tmp_path: Path, half_plus_two_models: Any, standin_image: str
) -> None:
    assert _free(8500) and _free(8501), "the docker run line publishes 8500 and 8501"
    base = half_plus_two_models.make_base_path(tmp_path, versions=(1, 2))
    config = ModelConfig("half_plus_two", str(base), Specific((1, 2)), {"stable": 1})
    reload = config_reload([config], "127.0.0.1:8500")
    (tmp_path / "models.config").write_text(reload.models_config)

    name = f"tfserve-nb-run-line-{uuid.uuid4().hex[:8]}"
    engine_only = " ".join(
        [f"-d --name {name} --label {LABEL_OWNER_HOST}=test --network host"]
        + [f"-v {path}:{path}:ro" for path in standin_volumes()]
    )
    command = reload.docker_run.replace("--rm ", "", 1)  # keep its log if it fails
    command = command.replace("docker run", f"docker run {engine_only}", 1)
    command = command.replace(" tensorflow/serving ", f" {standin_image} ", 1)
    assert shutil.which("docker"), "docker.io provides the docker CLI"
    try:
        subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            check=True,
            timeout=60,
            capture_output=True,
        )
        url = "http://127.0.0.1:8501/v1/models/half_plus_two"

        def both_available() -> Any:
            try:
                states = {s["version"]: s["state"] for s in _get(url)["model_version_status"]}
            except OSError:
                return None
            return states if states == {"1": "AVAILABLE", "2": "AVAILABLE"} else None

        try:
            wait_until(both_available, timeout=120, what="versions 1 and 2 of the container")
        except AssertionError as exc:
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
            log = logs.stdout + logs.stderr
            raise AssertionError(f"{exc}; the container's log:\n{log}") from exc
        request = urllib.request.Request(
            url + "/labels/stable:predict", data=b'{"instances": [[1.0], [2.0]]}', method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert json.loads(reply.read())["predictions"] == [[2.5], [3.0]]  # v1: 0.5 x + 2
    finally:
        subprocess.run(
            ["docker", "rm", "-f", name],
            capture_output=True,
            timeout=60,
        )
