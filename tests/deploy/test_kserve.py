"""The InferenceServices, checked with KServe's own Python SDK (``kserve``, in a virtualenv of its
own: ``tests/deploy/kserve_sdk.py`` runs there), and the revisions they pin: which version each
serves and which share the canary gets, from the notebook's labels and traffic split."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import SCENARIOS, make_repository
from tests.deploy.tools import TOOLS
from tfserve_nb.backends.docker.image import default_image
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import Specific
from tfserve_nb.deploy import Manifests, deployment, revision_uri
from tfserve_nb.deploy.kubernetes import STORAGE_INITIALIZER
from tfserve_nb.version import __version__

SDK_SCRIPT = Path(__file__).with_name("kserve_sdk.py")
SCENARIO = {s.name: s for s in SCENARIOS}


def kserve_sdk(
    python: Path, ours: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> dict[str, Any]:
    """What :mod:`tests.deploy.kserve_sdk` answers for ``ours`` and ``expected``."""
    done = subprocess.run(
        [str(python), str(SDK_SCRIPT)],
        input=json.dumps({"ours": ours, "expected": expected}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def inference_services(written: Manifests) -> dict[str, dict[str, Any]]:
    return {
        name: manifest
        for name, manifest in written.manifests().items()
        if manifest["kind"] == "InferenceService"
    }


def test_the_sdk_reads_every_inference_service_back_with_nothing_lost(
    written: Manifests, kserve_python: Path
) -> None:
    ours = list(inference_services(written).values())
    answer = kserve_sdk(kserve_python, ours, [])
    assert answer["kserve"] == TOOLS["kserve"][0].partition("==")[2]  # the SDK we pinned
    assert answer["problems"] == [[] for _ in ours]
    assert answer["round_trip"] == ours


def _metadata(name: str, namespace: str | None, instance: str, tag: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/name": "tensorflow-serving",
            "app.kubernetes.io/instance": instance,
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/version": tag,
            "app.kubernetes.io/managed-by": "tfserve-nb",
        },
        "annotations": {"tfserve-nb/generator": f"tfserve-nb {__version__}"},
    }


def test_the_sdk_builds_the_same_rollout(tmp_path: Path, kserve_python: Path) -> None:
    """Notebook 02's state in S3: KServe's classes, given what each revision must be, make the
    very objects we wrote."""
    written = SCENARIO["rollout-in-s3"].run(tmp_path)
    tag = default_image().rpartition(":")[2]
    shared = {
        **_metadata("digits", "ml", "digits", tag),
        "runtime_version": tag,
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "service_account_name": "digits-kserve-storage",
        "min_replicas": 2,
        "max_replicas": 6,
        "scale_metric": "cpu",
        "scale_target": 70,
    }
    expected = [
        {**shared, "storage_uri": "s3://models/digits-v1/"},
        {**shared, "storage_uri": "s3://models/digits-v2/", "canary_traffic_percent": 10},
    ]
    ours = inference_services(written)
    assert list(ours) == ["kserve/digits.yaml", "kserve/digits-canary.yaml"]
    answer = kserve_sdk(kserve_python, [], expected)
    assert answer["built"] == list(ours.values())


def test_the_sdk_builds_the_same_services_of_two_models_on_a_volume(
    tmp_path: Path, kserve_python: Path
) -> None:
    written = SCENARIO["two-models-pinned-by-digest"].run(tmp_path)
    resources = {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    expected = [
        {  # policy "all", no labels: the newest version in the local folder
            **_metadata("half-plus-two", "serving", "half-plus-two", "2.19.1"),
            "runtime_version": "2.19.1",
            "storage_uri": "pvc://shared-models/half_plus_two-v2/",
            "resources": resources,
            "min_replicas": 2,
        },
        {
            **_metadata("digits", "serving", "half-plus-two", "2.19.1"),
            "runtime_version": "2.19.1",
            "storage_uri": "pvc://shared-models/digits-v3/",
            "resources": resources,
            "min_replicas": 2,
        },
    ]
    answer = kserve_sdk(kserve_python, [], expected)
    assert answer["built"] == list(inference_services(written).values())


@pytest.mark.parametrize(
    ("labels", "split", "revisions"),
    [
        ({"stable": 1, "canary": 2}, {"stable": 90, "canary": 10}, [(1, None), (2, 10)]),
        ({"stable": 1, "canary": 2}, {"canary": 1, "stable": 3}, [(1, None), (2, 25)]),
        # stable on the newer version: KServe's canary is still the revision applied last, so
        # the newer version is the canary revision with *its* share
        ({"stable": 2, "canary": 1}, {"stable": 90, "canary": 10}, [(1, None), (2, 90)]),
        ({"stable": 1}, {1: 2, 2: 1}, [(1, None), (2, 33)]),
        ({"stable": 1, "canary": 2}, {"stable": 100, "canary": 0}, [(1, None)]),
        ({"stable": 1, "also": 1}, {"stable": 1, "also": 1}, [(1, None)]),
    ],
)
def test_a_split_becomes_two_pinned_revisions(
    tmp_path: Path,
    labels: dict[str, int],
    split: dict[int | str, float],
    revisions: list[tuple[int, int | None]],
) -> None:
    base = make_repository(tmp_path, "digits", (1, 2))
    config = ModelConfig("digits", str(base), Specific((1, 2)), labels)
    written = deployment(config, out_dir=tmp_path / "out", model_uri="s3://m/digits", split=split)
    predictors = [m["spec"]["predictor"] for m in inference_services(written).values()]
    assert [(p["model"]["storageUri"], p.get("canaryTrafficPercent")) for p in predictors] == [
        (f"s3://m/digits-v{version}/", percent) for version, percent in revisions
    ]


@pytest.mark.parametrize(
    ("config", "storage_uri"),
    [
        (ModelConfig("digits", "", Specific((1, 2)), {"stable": 2}), "s3://m/digits-v2/"),
        (ModelConfig("digits", "", Specific((1, 3))), "s3://m/digits-v3/"),
        (ModelConfig("digits", ""), "s3://m/digits-v4/"),  # the newest folder: 1 and 4 exist
        (ModelConfig("digits", "s3://m/digits"), "s3://m/digits/"),  # unknown: the newest there
    ],
)
def test_without_a_split_the_one_revision_serves_the_stable_version(
    tmp_path: Path, config: ModelConfig, storage_uri: str
) -> None:
    if not config.base_path:
        config = ModelConfig(
            config.name,
            str(make_repository(tmp_path, "digits", (1, 4))),
            config.version_policy,
            config.labels,
        )
    written = deployment(config, out_dir=tmp_path / "out", model_uri="s3://m/digits")
    (service,) = inference_services(written).values()
    assert service["spec"]["predictor"]["model"]["storageUri"] == storage_uri


def test_revision_uris_sit_beside_the_repository() -> None:
    """Not inside it (the Deployment downloads the repository's prefix, ``digits/``) and not a
    prefix of one another once the ``/`` ends them."""
    assert revision_uri("s3://m/digits", 1) == "s3://m/digits-v1/"
    assert revision_uri("s3://m/digits/", 10) == "s3://m/digits-v10/"
    assert not revision_uri("s3://m/digits", 10).startswith(revision_uri("s3://m/digits", 1))


def test_the_storage_initializer_is_of_the_release_whose_sdk_checks_us() -> None:
    release = TOOLS["kserve"][0].partition("==")[2]
    assert f"kserve/storage-initializer:v{release}" == STORAGE_INITIALIZER


def test_the_sdk_check_catches_a_misspelt_field_and_a_wrong_type(
    tmp_path: Path, kserve_python: Path
) -> None:
    """The control: fields no SDK model has, or of the wrong type, are reported, so the passes
    above are not vacuous."""
    service = inference_services(SCENARIO["rollout-in-s3"].run(tmp_path))[
        "kserve/digits-canary.yaml"
    ]
    predictor = service["spec"]["predictor"]
    predictor["canaryTrafficPercentage"] = predictor.pop("canaryTrafficPercent")
    predictor["minReplicas"] = "2"
    answer = kserve_sdk(kserve_python, [service], [])
    assert answer["problems"] == [
        [
            ".spec.predictor.minReplicas: int expected, got '2'",
            ".spec.predictor.canaryTrafficPercentage: no such field in V1beta1PredictorSpec",
        ]
    ]
