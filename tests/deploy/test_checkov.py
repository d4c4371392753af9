"""The policy scanner: ``checkov`` (its Kubernetes framework, from its own virtualenv) on each
folder written, with no network at all — run inside ``unshare -n`` (a network namespace of its
own, loopback only and down) besides its offline options, so that nothing it does can reach
out. Every check it fails must be one of :data:`JUSTIFIED`, and only where the reason given there
holds for the deployment; everything else must pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import Scenario
from tests.deploy.tools import tool_bin
from tfserve_nb.deploy import Manifests

JUSTIFIED: dict[str, str] = {
    "CKV_K8S_43": (
        "Image should use digest. Images are pinned by version tag; a digest is a fact of the "
        "registry, which this offline generator cannot look up. Give image_digest= to pin TF "
        "Serving's: then only KServe's storage initializer (object storage) still has a tag."
    ),
    "CKV_K8S_35": (
        "Prefer secrets as files over environment variables. KServe's storage initializer reads S3 "
        "credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and KServe's own webhook "
        "injects them exactly so (secretKeyRef env, pkg/credentials/s3/s3_secret.go); one Secret "
        "then serves both the Deployment and the InferenceService. Only the init container gets "
        "them, never TF Serving."
    ),
    "CKV_K8S_21": (
        "The default namespace should not be used. Without namespace= the manifests name none, "
        "so they go where kubectl points (-n): a choice made when applying, not here."
    ),
}
"""The checks that may fail, each with the reason it does not apply as the scanner assumes."""

CHECKOV_TIMEOUT = 180.0
"""Seconds one scan may take (about five on two cores)."""


def justified_failures(written: Manifests) -> set[str]:
    """The checks of :data:`JUSTIFIED` whose reason holds for ``written``."""
    manifests = written.manifests()
    pod = manifests["kubernetes/deployment.yaml"]["spec"]["template"]["spec"]
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    expected = set()
    if any("@" not in container["image"] for container in containers):
        expected.add("CKV_K8S_43")
    if any("valueFrom" in str(container.get("env")) for container in containers):
        expected.add("CKV_K8S_35")
    if any("namespace" not in m["metadata"] for m in manifests.values()):
        expected.add("CKV_K8S_21")
    return expected


def checkov(folder: Path) -> list[dict[str, Any]]:
    """checkov's JSON report on ``folder``, run with no network."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        message = "checkov runs inside `unshare -n`, which needs root and util-linux's unshare"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(folder.parent / "home"),
        "BC_SKIP_MAPPING": "TRUE",  # no download of the platform's check mapping
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",  # no query for a newer checkov
        "CKV_CACHE_DIR": str(folder.parent / "checkov-cache"),
    }
    command = [
        *("unshare", "--net", "--"),
        str(tool_bin("checkov") / "checkov"),
        *("--directory", str(folder), "--framework", "kubernetes"),
        *("--skip-download", "--output", "json", "--quiet", "--compact"),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=environment,
        timeout=CHECKOV_TIMEOUT,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: some check failed
    report = json.loads(done.stdout)
    return report if isinstance(report, list) else [report]


def test_the_no_network_guard_holds(tmp_path: Path, checkov_python: Path) -> None:
    """The namespace checkov runs in really has no way out: even loopback is down."""
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=2)\n"
        "except OSError as e:\n"
        "    print(type(e).__name__, e.errno)\n"
    )
    if os.geteuid() != 0:
        pytest.skip("unshare -n needs root")
    done = subprocess.run(
        ["unshare", "--net", "--", str(checkov_python), "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.split()[0] == "OSError" and done.stdout.split()[1] == "101"  # ENETUNREACH


def test_no_check_fails_that_applies(
    scenario: Scenario, written: Manifests, checkov_python: Path
) -> None:
    (report,) = checkov(written.out_dir)
    assert report["check_type"] == "kubernetes"
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    kinds = {m["kind"] for m in written.manifests().values()}
    assert summary["resource_count"] >= len(kinds)
    assert summary["passed"] > 50  # it did scan: containers, pods, services...
    failed = {check["check_id"] for check in report["results"]["failed_checks"]}
    assert failed == justified_failures(written), [
        (c["check_id"], c["check_name"], c["resource"]) for c in report["results"]["failed_checks"]
    ]
