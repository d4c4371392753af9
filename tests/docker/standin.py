"""The stand-in for tensorflow/serving that the Docker tests run (no registry is reachable).

:func:`ensure_standin_image` builds ``tfserve-nb/standin-serving:test`` unless an image built from
the same inputs is present already (the inputs' digest is an image label):

1. the base ``tfserve-nb/standin-base:<digest>``: a Debian bookworm ``minbase`` root file system
   (``debootstrap``, from Debian's package archive) with the few shared libraries the host's Python
   and its packages load, brought in with ``docker import``;
2. ``standin/Dockerfile`` on top of it: upstream's image contract (ports 8500/8501,
   ``MODEL_NAME``, ``MODEL_BASE_PATH``, ``/usr/bin/tf_serving_entrypoint.sh``) with a
   ``tensorflow_model_server`` that runs this project's model server with the host's Python.

Containers of it need the host's Python, its environment and this repository mounted read-only
at the same paths: :func:`standin_volumes`.
By hand: ``DOCKER_HOST=... python tests/docker/standin.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[2]
RECIPE = Path(__file__).resolve().parent / "standin"
IMAGE = "tfserve-nb/standin-serving:test"
BASE_REPOSITORY = "tfserve-nb/standin-base"
INPUTS_LABEL = "tfserve-nb.standin-inputs"

SUITE = "bookworm"
PACKAGES = ("libssl3", "libffi8", "libsqlite3-0", "libreadline8", "libexpat1", "libnsl2")
"""Libraries the host's Python loads (ssl, ctypes, sqlite3, readline, pyexpat) beyond minbase."""
PRUNED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man")


def standin_volumes() -> dict[str, str]:
    """Host paths the stand-in's ``tensorflow_model_server`` needs, each mounted at itself: the
    base Python installation, the virtual environment and the repository (nested ones dropped)."""
    paths = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, REPO)})
    kept: list[str] = []
    for path in paths:
        if not any(path.startswith(parent + os.sep) for parent in kept):
            kept.append(path)
    return {path: path for path in kept}


def render_wrapper() -> str:
    """The image's ``/usr/bin/tensorflow_model_server`` for this interpreter and repository."""
    template = (RECIPE / "tensorflow_model_server.in").read_text()
    return template.replace("@PYTHON@", sys.executable).replace("@REPO@", str(REPO))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _present(client: docker.DockerClient, image: str, digest: str | None = None) -> bool:
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return digest is None or found.labels.get(INPUTS_LABEL) == digest


def ensure_base_image(client: docker.DockerClient) -> str:
    """The base image's tag, debootstrapping and importing it first if it is not present."""
    tag = f"{BASE_REPOSITORY}:{_digest(SUITE, *PACKAGES, *PRUNED)}"
    if _present(client, tag):
        return tag
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: apt-get install -y debootstrap")
    with tempfile.TemporaryDirectory(prefix="tfserve-nb-standin-") as work:
        rootfs = Path(work, "rootfs")
        mirror = (
            [os.environ["TFSERVE_NB_DEBIAN_MIRROR"]]
            if "TFSERVE_NB_DEBIAN_MIRROR" in os.environ
            else []
        )
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                *mirror,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for pruned in PRUNED:
            shutil.rmtree(rootfs / pruned, ignore_errors=True)
        tarball = Path(work, "rootfs.tar")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], check=True
        )
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=version)
    return tag


def ensure_standin_image(client: docker.DockerClient) -> str:
    """``IMAGE``, built unless an image of the same inputs is present; returns its tag."""
    base = ensure_base_image(client)
    dockerfile = (RECIPE / "Dockerfile").read_text()
    wrapper = render_wrapper()
    digest = _digest(base, dockerfile, wrapper)
    if _present(client, IMAGE, digest):
        return IMAGE
    with tempfile.TemporaryDirectory(prefix="tfserve-nb-standin-context-") as context:
        Path(context, "Dockerfile").write_text(dockerfile)
        executable = Path(context, "tensorflow_model_server")
        executable.write_text(wrapper)
        executable.chmod(0o755)
        client.images.build(
            path=context,
            tag=IMAGE,
            buildargs={"BASE_IMAGE": base},
            labels={INPUTS_LABEL: digest},
            network_mode="none",
            pull=False,
            rm=True,
            forcerm=True,
        )
    return IMAGE


if __name__ == "__main__":
    print(ensure_standin_image(docker.from_env()))
