"""Fixtures for tests against a real Docker engine (marked ``docker``).

The session starts a private engine with ``scripts/docker-engine`` unless one answers already
(and stops it afterwards only if it started it), builds the stand-in image of
``tests/docker/standin.py`` (cached while its inputs are unchanged), and points ``DOCKER_HOST`` at
the engine. Without Debian's ``docker.io`` and ``debootstrap`` (or without root) the tests fail
in CI (``CI=true``) and are skipped elsewhere. Every test must leave no tfserve-nb container
behind; a fixture checks and cleans up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import docker
import pytest

from tests.docker.harness import docker_problem, start_engine, stop_engine
from tests.docker.harness import standin_options as harness_standin_options
from tests.docker.standin import ensure_standin_image
from tfserve_nb.backends.docker.backend import DockerBackend
from tfserve_nb.backends.docker.container import LABEL_OWNER_HOST


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """``unix://...`` of a running private engine; also exported as ``DOCKER_HOST``."""
    problem = docker_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    try:
        host, started = start_engine()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    yield host
    if previous is None:
        os.environ.pop("DOCKER_HOST", None)
    else:
        os.environ["DOCKER_HOST"] = previous
    if started:
        stop_engine()


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


@pytest.fixture(scope="session")
def standin_image(docker_client: docker.DockerClient) -> str:
    """The tag of the stand-in tensorflow/serving image, built if needed."""
    started = time.monotonic()
    image = ensure_standin_image(docker_client)
    print(f"stand-in image ready in {time.monotonic() - started:.1f} s")
    return image


@pytest.fixture
def standin_options(standin_image: str) -> dict[str, object]:
    """``DockerBackend`` options (JSON-able) for the stand-in image on host networking (the
    engine has no bridge network), never pulling (:func:`harness.standin_options`)."""
    return harness_standin_options(standin_image)


@pytest.fixture
def make_docker_backend(standin_options: dict[str, object]) -> Callable[..., DockerBackend]:
    """``DockerBackend`` with :func:`standin_options`; keyword arguments override them."""
    return lambda **options: DockerBackend(**{**standin_options, **options})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tfserve_containers(docker_client: docker.DockerClient) -> Callable[[], list[str]]:
    """Names of every container (running or not) that tfserve-nb labelled."""
    return lambda: [
        c.name for c in docker_client.containers.list(all=True, filters={"label": LABEL_OWNER_HOST})
    ]


@pytest.fixture(autouse=True)
def no_container_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a Docker test that leaves a tfserve-nb container behind (and remove it)."""
    yield
    if "docker_client" not in request.fixturenames:
        return
    client: docker.DockerClient = request.getfixturevalue("docker_client")
    left = request.getfixturevalue("tfserve_containers")()
    for name in left:
        client.containers.get(name).remove(force=True)
    assert not left, f"containers left behind: {left}"
