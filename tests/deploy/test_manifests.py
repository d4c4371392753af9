"""What ``deployment()`` writes, read back from the files: the ConfigMap's models.config is the
notebook's, the server is told to read and poll it, the pod gets its models from object storage
or a volume, and runs locked down; the names, labels, files and README fit together."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import DIGEST, SCENARIOS, Scenario, make_repository, rollout_configs
from tfserve_nb.backends.docker.image import default_image
from tfserve_nb.config import ModelConfig, parse_config_file
from tfserve_nb.deploy import Manifests, deployment
from tfserve_nb.deploy.manifests import INDEX
from tfserve_nb.errors import ConfigError

SCENARIO = {s.name: s for s in SCENARIOS}


def pod(written: Manifests) -> dict[str, Any]:
    return written.manifests()["kubernetes/deployment.yaml"]["spec"]["template"]["spec"]


def server_container(written: Manifests) -> dict[str, Any]:
    (container,) = pod(written)["containers"]
    return container


def configs_of(scenario: Scenario, tmp_path: Path) -> list[ModelConfig]:
    """The configs the scenario deployed (made again: they are a pure function of the folder)."""
    return scenario.make_configs(tmp_path / "models")


def test_the_configmap_holds_the_notebooks_configs_with_the_pods_base_paths(
    scenario: Scenario, written: Manifests, tmp_path: Path
) -> None:
    config_map = written.manifests()["kubernetes/configmap.yaml"]
    parsed = parse_config_file(config_map["data"]["models.config"])
    expected = [
        dataclasses.replace(config, base_path=f"/models/{config.name}")
        for config in configs_of(scenario, tmp_path)
    ]
    assert parsed == expected  # names, policies, labels: the notebook's


def test_the_server_reads_that_file_polls_it_and_allows_labels_it_needs(
    scenario: Scenario, written: Manifests, tmp_path: Path
) -> None:
    container = server_container(written)
    assert container["command"] == ["/usr/bin/tensorflow_model_server"]
    labelled = any(c.labels for c in configs_of(scenario, tmp_path))
    poll = scenario.options.get("poll_seconds", 60)
    assert container["args"] == [
        "--port=8500",
        "--rest_api_port=8501",
        "--model_config_file=/config/models.config",
        f"--model_config_file_poll_wait_seconds={poll}",
        *(["--allow_version_labels_for_unavailable_models=true"] if labelled else []),
    ]
    config_mount = {"name": "config", "mountPath": "/config", "readOnly": True}
    assert config_mount in container["volumeMounts"]
    config_volume = {
        "name": "config",
        "configMap": {"name": f"{written_name(written)}-models-config"},
    }
    assert config_volume in pod(written)["volumes"]  # a folder, not a subPath: edits arrive


def written_name(written: Manifests) -> str:
    return written.manifests()["kubernetes/deployment.yaml"]["metadata"]["name"]


def test_object_storage_is_downloaded_by_kserves_storage_initializer(tmp_path: Path) -> None:
    written = SCENARIO["rollout-in-s3"].run(tmp_path)
    (init,) = pod(written)["initContainers"]
    assert init["image"] == "kserve/storage-initializer:v0.21.0"
    assert init["args"] == ["s3://models/digits/", "/models/digits"]  # a prefix: ends in /
    secret_ref = {"secretKeyRef": {"name": "models-s3", "key": "AWS_SECRET_ACCESS_KEY"}}
    assert init["env"] == [
        {"name": "AWS_ENDPOINT_URL", "value": "http://minio.storage:9000"},
        {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"},
        {
            "name": "AWS_ACCESS_KEY_ID",
            "valueFrom": {"secretKeyRef": {"name": "models-s3", "key": "AWS_ACCESS_KEY_ID"}},
        },
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret_ref},
    ]
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    assert {"name": "models", "emptyDir": {}} in pod(written)["volumes"]
    assert "env" not in server_container(written)  # TF Serving reads local files only
    models_mount = {"name": "models", "mountPath": "/models", "readOnly": True}
    assert models_mount in server_container(written)["volumeMounts"]


def test_a_volume_is_mounted_read_only_and_nothing_is_downloaded(tmp_path: Path) -> None:
    written = SCENARIO["latest-on-a-volume"].run(tmp_path)
    assert "initContainers" not in pod(written)
    claim = {"claimName": "digits-models", "readOnly": True}  # the default claim name
    assert {"name": "models", "persistentVolumeClaim": claim} in pod(written)["volumes"]
    assert written.manifests()["kubernetes/deployment.yaml"]["spec"]["replicas"] == 3


def test_probes_use_the_rest_status_and_metadata_of_the_default_model(
    scenario: Scenario, written: Manifests, tmp_path: Path
) -> None:
    name = configs_of(scenario, tmp_path)[0].name
    container = server_container(written)
    assert container["ports"] == [
        {"name": "grpc", "containerPort": 8500, "protocol": "TCP"},
        {"name": "http", "containerPort": 8501, "protocol": "TCP"},
    ]
    paths = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert paths == {
        "startupProbe": f"/v1/models/{name}",
        "readinessProbe": f"/v1/models/{name}/metadata",  # 200 only while a version is AVAILABLE
        "livenessProbe": f"/v1/models/{name}",
    }
    assert {container[p]["httpGet"]["port"] for p in paths} == {"http"}


def test_every_container_runs_as_non_root_read_only_without_capabilities(
    written: Manifests,
) -> None:
    spec = pod(written)
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["automountServiceAccountToken"] is False
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert set(container["resources"]) == {"requests", "limits"}
    assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]


def test_resources_merge_over_the_defaults(tmp_path: Path) -> None:
    written = SCENARIO["two-models-pinned-by-digest"].run(tmp_path)
    assert server_container(written)["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }


def test_an_autoscaler_takes_over_the_replica_count(tmp_path: Path) -> None:
    written = SCENARIO["rollout-in-s3"].run(tmp_path)
    manifests = written.manifests()
    assert "replicas" not in manifests["kubernetes/deployment.yaml"]["spec"]
    hpa = manifests["kubernetes/hpa.yaml"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "digits",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    target = hpa["spec"]["metrics"][0]["resource"]
    assert target == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert "kubernetes/hpa.yaml" not in SCENARIO["latest-on-a-volume"].run(tmp_path / "2").files


def test_the_image_is_tensorflows_version_or_pinned_by_digest(tmp_path: Path) -> None:
    default = server_container(SCENARIO["latest-on-a-volume"].run(tmp_path / "a"))
    assert default["image"] == default_image() and default["imagePullPolicy"] == "Always"
    pinned = server_container(SCENARIO["two-models-pinned-by-digest"].run(tmp_path / "b"))
    assert pinned["image"] == f"registry.example:5000/tensorflow/serving:2.19.1@{DIGEST}"
    assert pinned["imagePullPolicy"] == "IfNotPresent"
    configs = rollout_configs(tmp_path / "c")
    for image, digest in [
        ("tensorflow/serving", None),
        ("tensorflow/serving:latest", None),
        ("tensorflow/serving:2.19.1", "sha256:123"),
    ]:
        with pytest.raises(ConfigError, match="Image"):
            deployment(
                configs, out_dir=tmp_path / "x", volume_claim="m", image=image, image_digest=digest
            )


def test_objects_share_labels_and_the_selectors_pick_the_pods(written: Manifests) -> None:
    manifests = written.manifests()
    kubernetes = {name: m for name, m in manifests.items() if name.startswith("kubernetes/")}
    labels = [m["metadata"]["labels"] for m in manifests.values()]
    assert all(label == labels[0] for label in labels)
    assert labels[0]["app.kubernetes.io/managed-by"] == "tfserve-nb"
    deployment_spec = kubernetes["kubernetes/deployment.yaml"]["spec"]
    selector = deployment_spec["selector"]["matchLabels"]
    assert selector.items() <= deployment_spec["template"]["metadata"]["labels"].items()
    assert kubernetes["kubernetes/service.yaml"]["spec"]["selector"] == selector
    assert (
        kubernetes["kubernetes/networkpolicy.yaml"]["spec"]["podSelector"]["matchLabels"]
        == selector
    )
    service_ports = kubernetes["kubernetes/service.yaml"]["spec"]["ports"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service_ports] == [
        ("grpc", 8500, "grpc"),
        ("http", 8501, "http"),
    ]
    namespaces = {m["metadata"].get("namespace") for m in manifests.values()}
    assert len(namespaces) == 1


def test_names_are_made_kubernetes_names_or_refused(tmp_path: Path) -> None:
    written = SCENARIO["two-models-pinned-by-digest"].run(tmp_path)
    assert written_name(written) == "half-plus-two"
    assert {"kserve/half-plus-two.yaml", "kserve/digits.yaml"} <= set(written.files)
    configs = rollout_configs(tmp_path / "m")
    with pytest.raises(ConfigError, match=r"'Digits' .* not a Kubernetes name"):
        deployment(configs, out_dir=tmp_path / "x", volume_claim="m", name="Digits")
    with pytest.raises(ConfigError, match="namespace"):
        deployment(configs, out_dir=tmp_path / "x", volume_claim="m", namespace="ml_team")


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"model_uri": "http://host/digits"}, "use s3://bucket/path or gs://bucket/path"),
        ({"model_uri": {"other": "s3://m/o"}}, r"not configured: \['other'\]"),
        ({"s3_endpoint": "http://minio:9000"}, "apply to object storage"),
        ({"model_uri": "gs://m/digits", "storage_secret": "s"}, "for s3:// repositories"),
        ({"volume_claim": "m", "split": {"stable": 9, "beta": 1}}, r"labels \['beta'\]"),
        ({"volume_claim": "m", "split": {1: 1, 2: 1, 3: 1}}, "between two revisions"),
        ({"volume_claim": "m", "hpa": (3, 2, 50)}, "1 <= min <= max"),
        ({"volume_claim": "m", "replicas": 0}, "at least 1"),
        ({"volume_claim": "m", "resources": {"request": {}}}, "only 'requests' and 'limits'"),
        ({"volume_claim": "Models_1"}, "volume_claim 'Models_1' is not a Kubernetes name"),
        (
            {"model_uri": "s3://m/d", "storage_secret": "my secret"},
            "storage_secret 'my secret' is not",
        ),
    ],
)
def test_settings_that_do_not_fit_are_refused_with_the_reason(
    tmp_path: Path, options: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        deployment(rollout_configs(tmp_path), out_dir=tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_one_repository_for_all_models(tmp_path: Path) -> None:
    configs = SCENARIOS[2].make_configs(tmp_path)
    with pytest.raises(ConfigError, match="mapping of model name to storage URI"):
        deployment(configs, out_dir=tmp_path / "out", model_uri="s3://m/x")
    with pytest.raises(ConfigError, match=r"\['digits'\] have no storage URI"):
        deployment(configs, out_dir=tmp_path / "out", model_uri={"half_plus_two": "s3://m/h"})
    both = {"half_plus_two": "s3://m/h", "digits": "gs://g/d/"}
    written = deployment(configs, out_dir=tmp_path / "out", model_uri=both)
    (init,) = pod(written)["initContainers"]
    assert init["args"] == ["s3://m/h/", "/models/half_plus_two", "gs://g/d/", "/models/digits"]


def test_sources_a_folder_a_config_file_or_a_storage_uri(tmp_path: Path) -> None:
    base = make_repository(tmp_path, "digits", (1,))
    from_folder = deployment(base, out_dir=tmp_path / "a", volume_claim="m")
    assert parse_config_file(
        from_folder.manifests()["kubernetes/configmap.yaml"]["data"]["models.config"]
    ) == [ModelConfig("digits", "/models/digits")]
    config_file = tmp_path / "models.config"
    config_file.write_text(
        'model_config_list { config { name: "hp2" base_path: "s3://b/hp2" model_platform: '
        '"tensorflow" model_version_policy { all {} } } }'
    )
    from_file = deployment(config_file, out_dir=tmp_path / "b")  # its base path is in storage
    assert pod(from_file)["initContainers"][0]["args"] == ["s3://b/hp2/", "/models/hp2"]
    from_uri = deployment("s3://b/digits", out_dir=tmp_path / "c")
    assert written_name(from_uri) == "digits"
    with pytest.raises(ConfigError, match=r"neither a model folder nor a models\.config"):
        deployment(tmp_path / "missing", out_dir=tmp_path / "d")


def test_the_files_on_disk_are_the_ones_returned_and_rewrites_replace_them(
    tmp_path: Path,
) -> None:
    scenario = SCENARIO["rollout-in-s3"]
    first = scenario.run(tmp_path)
    assert [p.read_text() for p in first.paths] == list(first.files.values())
    assert (first.out_dir / INDEX).read_text().split() == list(first.files)
    assert list(first.files)[-1] == "README.md"
    # written again without autoscaling or canary: their files go, the others are replaced
    configs = scenario.make_configs(tmp_path / "again")
    second = deployment(configs, out_dir=first.out_dir, model_uri="s3://models/digits")
    assert not (first.out_dir / "kubernetes/hpa.yaml").exists()
    assert not (first.out_dir / "kserve/digits-canary.yaml").exists()
    on_disk = sorted(
        str(p.relative_to(first.out_dir)) for p in first.out_dir.rglob("*") if p.is_file()
    )
    assert on_disk == sorted([*second.files, INDEX])


def test_files_it_did_not_write_are_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "kubernetes").mkdir(parents=True)
    (out / "kubernetes" / "service.yaml").write_text("mine")
    with pytest.raises(ConfigError, match=r"kubernetes/service.yaml.*not written by tfserve-nb"):
        deployment(rollout_configs(tmp_path), out_dir=out, volume_claim="m")
    assert (out / "kubernetes" / "service.yaml").read_text() == "mine"
    assert not (out / "kubernetes" / "deployment.yaml").exists()


def test_the_readme_gives_the_commands_for_these_objects(tmp_path: Path) -> None:
    readme = SCENARIO["rollout-in-s3"].run(tmp_path).files["README.md"]
    for command in [
        "kubectl -n ml apply -f kubernetes/",
        "kubectl -n ml rollout status deployment/digits --timeout=10m",
        "kubectl -n ml port-forward service/digits 8501:8501 &",
        "curl -s http://127.0.0.1:8501/v1/models/digits",
        "kubectl -n ml edit configmap/digits-models-config",
        "kubectl -n ml rollout restart deployment/digits",
        "kubectl -n ml apply -f kserve/digits-canary.yaml",
        "kubectl -n ml patch inferenceservice digits --type=json",
        '"canaryTrafficPercent": 0',
        "kubectl -n ml create secret generic models-s3",
        "serving.kserve.io/s3-endpoint=minio.storage:9000 serving.kserve.io/s3-usehttps=0",
        "/v1/models/digits/labels/stable/metadata",
    ]:
        assert command in readme, command
    base = tmp_path / "models" / "digits"
    assert f"tfs.push('{base}', 's3://models/digits-v1', versions=[1])" in readme
    assert f"tfs.push('{base}', 's3://models/digits-v2', versions=[2])" in readme
    assert "`value: 1` becomes `value: 2`" in readme  # promote: stable moves to the canary's
    plain = SCENARIO["latest-on-a-volume"].run(tmp_path / "2").files["README.md"]
    assert "kubectl apply -f kubernetes/" in plain and "canary" not in plain.lower()
    assert "PersistentVolumeClaim `digits-models`" in plain
