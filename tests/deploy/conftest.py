"""Fixtures of the manifest tests: model repositories on disk (version folders only: nothing here
loads a model), the deployments to check (:data:`SCENARIOS`), and the tools that live in
virtualenvs of their own (:mod:`tests.deploy.tools`).

A scenario is a ``deployment()`` call covering one way to deploy; every checker (the Kubernetes
schemas, KServe's SDK, checkov) runs on each, so every branch of the builders meets every checker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import require_tool
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import All, Latest, Specific
from tfserve_nb.deploy import Manifests, deployment

DIGEST = "sha256:" + "ab" * 32


def make_repository(parent: Path, name: str, versions: tuple[int, ...]) -> Path:
    """``parent/name`` with an (empty) folder per version (those already there are kept)."""
    base = parent / name
    for version in versions:
        (base / str(version)).mkdir(parents=True, exist_ok=True)
    return base


def rollout_configs(parent: Path) -> list[ModelConfig]:
    """Notebook 02's rollout state: digits versions 1 and 2 pinned, ``stable`` on 1, ``canary`` on
    2."""
    base = make_repository(parent, "digits", (1, 2))
    return [ModelConfig("digits", str(base), Specific((1, 2)), {"stable": 1, "canary": 2})]


@dataclass(frozen=True)
class Scenario:
    """One way to deploy: ``options`` for :func:`deployment` beside the configs ``make_configs``
    writes under a folder."""

    name: str
    make_configs: Callable[[Path], list[ModelConfig]]
    options: dict[str, Any]

    def run(self, tmp_path: Path) -> Manifests:
        configs = self.make_configs(tmp_path / "models")
        return deployment(configs, out_dir=tmp_path / "out", **self.options)


def _two_models(parent: Path) -> list[ModelConfig]:
    return [
        ModelConfig("half_plus_two", str(make_repository(parent, "half_plus_two", (1, 2))), All()),
        ModelConfig("digits", str(make_repository(parent, "digits", (3,))), Latest(2)),
    ]


def _latest(parent: Path) -> list[ModelConfig]:
    return [ModelConfig("digits", str(make_repository(parent, "digits", (1, 4))))]


SCENARIOS = [
    Scenario(
        "rollout-in-s3",
        rollout_configs,
        {
            "model_uri": "s3://models/digits",
            "s3_endpoint": "http://minio.storage:9000",
            "s3_region": "eu-west-1",
            "storage_secret": "models-s3",
            "split": {"stable": 90, "canary": 10},
            "namespace": "ml",
            "hpa": (2, 6, 70),
        },
    ),
    Scenario("latest-on-a-volume", _latest, {"replicas": 3}),
    Scenario(
        "two-models-pinned-by-digest",
        _two_models,
        {
            "volume_claim": "shared-models",
            "namespace": "serving",
            "image": "registry.example:5000/tensorflow/serving:2.19.1",
            "image_digest": DIGEST,
            "resources": {"limits": {"memory": "2Gi"}},
            "poll_seconds": 15,
        },
    ),
]


@pytest.fixture(params=SCENARIOS, ids=[s.name for s in SCENARIOS])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return request.param


@pytest.fixture
def written(scenario: Scenario, tmp_path: Path) -> Manifests:
    """The files of ``scenario``."""
    return scenario.run(tmp_path)


@pytest.fixture(scope="session")
def kserve_python() -> Path:
    """The Python of the virtualenv holding KServe's SDK."""
    return require_tool("kserve")


@pytest.fixture(scope="session")
def checkov_python() -> Path:
    """The Python of the virtualenv holding checkov."""
    return require_tool("checkov")
