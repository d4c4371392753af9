"""The cluster path, checked for real and offline: a repository pushed to object storage (moto's
S3 server), downloaded by KServe's own storage code as the generated Deployment's init container
says, then served as its ``tensorflow/serving`` container says and probed as the kubelet would.

One fixture takes the path up to the download (:func:`downloaded`): ``tfs.push`` of
``half_plus_two`` versions 1 and 2, ``tfs.deployment`` for notebook 02's state (both versions
pinned, ``stable`` on 1, ``canary`` on 2) with the S3 server as ``s3_endpoint`` and a storage
Secret, then the init container run from its spec: its ``args`` (source URI, destination) and
``env`` (the Secret's keys resolved to the server's fake credentials, as the kubelet would), in a
subprocess of the ``kserve-storage`` tool's Python calling ``Storage.download_files`` (what
KServe 0.21's ``initializer-entrypoint`` runs) into a host folder standing for the ``models``
``emptyDir``. Then the folder is served twice:

- by the embedded server, from the ConfigMap's ``models.config`` with the pod's paths mapped to
  the host's;
- by the server container's spec in the real Docker engine, with the stand-in image in place of
  ``tensorflow/serving`` (no registry is reachable): its command, args, env, security context
  (user and group, read-only root, no new privileges, capabilities dropped), the ConfigMap and
  ``emptyDir`` volumes at their mount paths (``models`` the downloaded folder, any other
  ``emptyDir`` a tmpfs), host networking (the engine has no bridge): the spec's ports 8500/8501
  when free on the host, else ephemeral ones substituted in the args.

Each is probed alike (:func:`probe_like_the_kubelet`): readiness until 200 (bounded by
:data:`READY_WITHIN`, the first load, instead of the probe's ten-minute startup allowance, polled
faster than its ``periodSeconds``), then startup and liveness, then a predict by each label.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

import tfserve_nb as tfs
from tests.deploy.tools import require_tool
from tests.docker.standin import standin_volumes
from tests.helpers.s3_server import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    S3Server,
    local_snapshot,
    s3_bucket,
    s3_env,
    s3_server,
)
from tfserve_nb.backends.docker.container import owner_labels
from tfserve_nb.config import ModelConfig, parse_config_file
from tfserve_nb.core.version_policy import Specific

__all__ = ["s3_bucket", "s3_env", "s3_server"]

MODEL = "half_plus_two"
LABELS = {"stable": 1, "canary": 2}
SECRET = "models-s3"
READY_WITHIN = 60.0
"""Seconds the readiness probe may fail before the test does (the model's first load)."""
DOWNLOAD_TIMEOUT = 120.0
KSERVE_DOWNLOAD = (
    "import sys\n"
    "from kserve_storage import Storage\n"
    "Storage.download_files(sys.argv[1::2], sys.argv[2::2])\n"
)
"""What KServe's ``initializer-entrypoint SRC DEST [SRC DEST ...]`` runs."""


@dataclass(frozen=True)
class Downloaded:
    """The path up to the init container's download: the configs given, the parsed manifests,
    the notebook's repository and the host folders standing for the pod's volumes."""

    configs: list[ModelConfig]
    manifests: dict[str, dict[str, Any]]
    repository: Path
    volumes: dict[str, Path]

    @property
    def pod(self) -> dict[str, Any]:
        return self.manifests["kubernetes/deployment.yaml"]["spec"]["template"]["spec"]

    @property
    def server(self) -> dict[str, Any]:
        (container,) = self.pod["containers"]
        return container

    def models_config(self) -> str:
        return self.manifests["kubernetes/configmap.yaml"]["data"]["models.config"]


def on_host(path: str, container: Mapping[str, Any], volumes: Mapping[str, Path]) -> Path:
    """Where the container's ``path`` is on the host: under the host folder of the volume the
    container mounts there."""
    for mount in container["volumeMounts"]:
        root = mount["mountPath"]
        if (path == root or path.startswith(root + "/")) and mount["name"] in volumes:
            return volumes[mount["name"]] / path.removeprefix(root).lstrip("/")
    raise AssertionError(f"{path} is on no volume {container['name']} mounts from the host")


def resolve_env(
    container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The container's ``env`` as the kubelet sets it: values, and Secret keys looked up."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def run_storage_initializer(init: Mapping[str, Any], volumes: Mapping[str, Path]) -> None:
    """Run the init container ``init`` with KServe's storage code in the tool's Python: its args
    with destinations mapped to the host, its env only (no config files, no metadata lookup)."""
    args = init["args"]
    assert len(args) % 2 == 0, args
    host_args = [
        str(on_host(word, init, volumes)) if i % 2 else word for i, word in enumerate(args)
    ]
    credentials = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    env = resolve_env(init, {SECRET: credentials})
    env |= {
        "PATH": os.environ["PATH"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    done = subprocess.run(
        [str(require_tool("kserve-storage")), "-c", KSERVE_DOWNLOAD, *host_args],
        env=env,
        capture_output=True,
        text=True,
        timeout=DOWNLOAD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def downloaded(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, half_plus_two_models: Any
) -> Downloaded:
    repository = half_plus_two_models.make_base_path(tmp_path / "notebook", versions=(1, 2))
    uri = f"s3://{s3_bucket}/{MODEL}"
    tfs.push(repository, uri)
    configs = [ModelConfig(MODEL, str(repository), Specific((1, 2)), dict(LABELS))]
    written = tfs.deployment(
        configs,
        out_dir=tmp_path / "manifests",
        model_uri=uri,
        s3_endpoint=s3_server.endpoint,
        s3_region=REGION,
        storage_secret=SECRET,
    )
    volumes = {"models": tmp_path / "pod" / "models", "config": tmp_path / "pod" / "config"}
    for folder in volumes.values():
        folder.mkdir(parents=True)
    result = Downloaded(configs, written.manifests(), repository, volumes)
    for name, text in result.manifests["kubernetes/configmap.yaml"]["data"].items():
        (volumes["config"] / name).write_text(text)
    (init,) = result.pod["initContainers"]
    run_storage_initializer(init, volumes)
    return result


def http(url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    """``GET`` (or ``POST`` of JSON ``body``) ``url``: the status and the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def probe_like_the_kubelet(
    container: Mapping[str, Any], host_ports: Mapping[int, int], alive: Any = lambda: None
) -> None:
    """Probe the server that ``container`` describes, its ports at ``host_ports`` on 127.0.0.1
    (container port → host port; the REST port at least):
        readiness until 200 (``alive()`` raising when the server is gone), then the startup and
        liveness probes once each, then a predict by each label answered by its version."""
    ports = {
        port["name"]: host_ports[port["containerPort"]]
        for port in container["ports"]
        if port["containerPort"] in host_ports
    }

    def probe(name: str) -> int:
        spec = container[name]
        get = spec["httpGet"]
        url = f"http://127.0.0.1:{ports[get['port']]}{get['path']}"
        try:
            return http(url, timeout=spec.get("timeoutSeconds", 1))[0]
        except OSError:  # not listening yet: a failed probe
            return 0

    deadline = time.monotonic() + READY_WITHIN
    while probe("readinessProbe") != 200:
        alive()
        assert time.monotonic() < deadline, f"not ready within {READY_WITHIN:g} s"
        time.sleep(0.5)
    assert probe("startupProbe") == 200
    assert probe("livenessProbe") == 200
    rest = f"http://127.0.0.1:{ports['http']}/v1/models/{MODEL}"
    status, answer = http(rest)
    assert status == 200
    assert sorted((s["version"], s["state"]) for s in answer["model_version_status"]) == [
        ("1", "AVAILABLE"),
        ("2", "AVAILABLE"),
    ]
    for label, version in LABELS.items():
        x = 1.0
        status, answer = http(f"{rest}/labels/{label}:predict", {"instances": [[x]]})
        assert (status, answer) == (200, {"predictions": [[0.5 * x + 1 + version]]}), label


def test_kserve_downloads_exactly_the_pushed_versions(downloaded: Downloaded) -> None:
    (init,) = downloaded.pod["initContainers"]
    folder = on_host(init["args"][1], init, downloaded.volumes)
    assert local_snapshot(folder) == local_snapshot(downloaded.repository)


def test_the_embedded_server_serves_the_download_as_the_configmap_says(
    downloaded: Downloaded,
) -> None:
    server = downloaded.server
    configs = [
        dataclasses.replace(c, base_path=str(on_host(c.base_path, server, downloaded.volumes)))
        for c in parse_config_file(downloaded.models_config())
    ]
    assert [dataclasses.replace(c, base_path="") for c in configs] == [
        dataclasses.replace(c, base_path="") for c in downloaded.configs
    ]
    (rest,) = [p["containerPort"] for p in server["ports"] if p["name"] == "http"]
    with tfs.serve(configs, backend="embedded") as served:
        probe_like_the_kubelet(server, {rest: int(served.rest_url.rsplit(":", 1)[1])})


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as servers bind: TIME_WAIT is no use
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _ephemeral_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def host_ports(container: Mapping[str, Any]) -> dict[int, int]:
    """Host port of each container port (host networking): the spec's own when all are free."""
    wanted = [port["containerPort"] for port in container["ports"]]
    if all(_free(port) for port in wanted):
        return {port: port for port in wanted}
    return {port: _ephemeral_port() for port in wanted}


def with_ports(args: list[str], ports: Mapping[int, int]) -> list[str]:
    """``args`` with the one ``--flag=<container port>`` of each port naming its host port."""
    moved = list(args)
    for port, host in ports.items():
        (i,) = [i for i, arg in enumerate(args) if arg.endswith(f"={port}")]
        moved[i] = args[i].removesuffix(f"={port}") + f"={host}"
    return moved


def docker_run_options(
    container: Mapping[str, Any], pod: Mapping[str, Any], volumes: Mapping[str, Path], image: str
) -> dict[str, Any]:
    """``containers.run`` options for ``container`` of ``pod`` (module docstring)."""
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["runAsUser"] != 0
    kinds = {volume["name"]: volume for volume in pod["volumes"]}
    binds: dict[str, dict[str, str]] = {
        path: {"bind": path, "mode": "ro"} for path in standin_volumes()
    }
    tmpfs: dict[str, str] = {}
    for mount in container["volumeMounts"]:
        mode = "ro" if mount.get("readOnly") else "rw"
        if mount["name"] in volumes:
            binds[str(volumes[mount["name"]])] = {"bind": mount["mountPath"], "mode": mode}
        else:
            assert "emptyDir" in kinds[mount["name"]], mount
            tmpfs[mount["mountPath"]] = ""
    return {
        "image": image,
        "entrypoint": container["command"],
        "environment": resolve_env(container, {}),
        "user": f"{security['runAsUser']}:{security['runAsGroup']}",
        "read_only": security["readOnlyRootFilesystem"],
        "privileged": security["privileged"],
        "security_opt": [] if security["allowPrivilegeEscalation"] else ["no-new-privileges"],
        "cap_drop": security["capabilities"]["drop"],
        "volumes": binds,
        "tmpfs": tmpfs,
        "network_mode": "host",
        "name": f"tfserve-nb-cluster-path-{os.getpid()}",
        "labels": owner_labels(),
        "detach": True,
    }


@pytest.fixture
def served_container(
    downloaded: Downloaded, docker_client: docker.DockerClient, standin_image: str
) -> Iterator[tuple[Any, dict[int, int]]]:
    """The server container of the Deployment, running; and its host ports. Removed after."""
    spec = downloaded.server
    ports = host_ports(spec)
    options = docker_run_options(spec, downloaded.pod, downloaded.volumes, standin_image)
    container = docker_client.containers.run(command=with_ports(spec["args"], ports), **options)
    try:
        yield container, ports
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_the_deployments_container_serves_the_download_as_the_kubelet_sees_it(
    downloaded: Downloaded, served_container: tuple[Any, dict[int, int]]
) -> None:
    container, ports = served_container

    def alive() -> None:
        container.reload()
        assert container.status == "running", container.logs()[-3000:].decode(errors="replace")

    probe_like_the_kubelet(downloaded.server, ports, alive)
    config_file = next(a for a in downloaded.server["args"] if a.startswith("--model_config_file="))
    code, read = container.exec_run(["cat", config_file.partition("=")[2]])
    assert code == 0, read
    assert parse_config_file(read.decode()) == [
        dataclasses.replace(c, base_path=f"/models/{c.name}") for c in downloaded.configs
    ]
