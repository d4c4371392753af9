"""Every Kubernetes object written validates against the Kubernetes API's own schemas, with
``kubernetes-validate`` (which bundles them) in strict mode: an unknown field is an error, not a
field the API server would silently drop.

The versions: 1.30, the oldest the manifests claim (``autoscaling/v2``, ``seccompProfile`` and
``appProtocol`` are all older), and 1.37, the newest bundled.
"""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tfserve_nb.deploy import Manifests

KUBERNETES_VERSIONS = ("1.30", "1.37")

CORE_KINDS = {
    "ConfigMap",
    "Deployment",
    "Service",
    "NetworkPolicy",
    "HorizontalPodAutoscaler",
    "ServiceAccount",
}
"""Kinds of the Kubernetes API itself (the InferenceService is KServe's: test_kserve.py)."""


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_validates_strictly(written: Manifests, version: str) -> None:
    checked = []
    for name, manifest in written.manifests().items():
        if manifest["kind"] == "InferenceService":
            continue
        assert manifest["kind"] in CORE_KINDS, name
        assert kubernetes_validate.validate(manifest, version, strict=True) == version
        checked.append(manifest["kind"])
    assert {"ConfigMap", "Deployment", "Service", "NetworkPolicy"} <= set(checked)


def test_strict_validation_catches_a_misspelt_field(written: Manifests) -> None:
    """The control: the same validator refuses a Deployment with one field misspelt deep inside
    the pod template, so the passes above are not vacuous."""
    manifest = copy.deepcopy(written.manifests()["kubernetes/deployment.yaml"])
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["paht"] = container["readinessProbe"]["httpGet"].pop(
        "path"
    )
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSIONS[-1], strict=True)
