"""KServe ``InferenceService`` objects (``serving.kserve.io/v1beta1``) for the same models.

One ``InferenceService`` per model, named after it (made a Kubernetes name: ``half_plus_two`` →
``half-plus-two``), with the TensorFlow predictor (``modelFormat: tensorflow``, the runtime at the
same TF Serving version as the Deployment's image, ``runtimeVersion``) reading ``storageUri``.
KServe's TensorFlow runtime runs ``tensorflow_model_server --model_name=<InferenceService name>
--model_base_path=/mnt/models``: clients ask for the model by the InferenceService's name, there
is no ``models.config`` (no labels, default policy), and a revision serves the newest version
found under its ``storageUri`` when its pod starts.

A revision is therefore pinned to one version by its URI (:func:`~.repository.revision_uri`):

- without a split, the model's one revision serves its *stable* version: the ``stable`` label's,
  else the highest one a ``specific`` policy names, else the newest in the local base path; with
  none of those known (a repository only in storage) it reads the repository itself and serves
  whatever is newest there when a pod starts.
- with a :class:`~tfserve_nb.traffic.split.TrafficSplit` of the default model over two versions
  (labels resolved through the model's labels), the lower version is the revision to apply first
  and the higher one the canary: the updated InferenceService, applied next, with
  ``canaryTrafficPercent`` the higher version's share in whole percent (rounded). KServe sends that
  share to the revision applied last and the rest to the last one rolled out, which is the same
  division whichever of the two the split calls ``canary``. Canary rollouts need KServe's
  Serverless (Knative) mode.

With a ``storage_secret``, a ``ServiceAccount`` lists it and the predictor runs under it: KServe's
webhook finds S3 credentials through the service account's secrets (keys ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``; the endpoint and region as the secret's ``serving.kserve.io/s3-*``
annotations).

Pure functions of a :class:`~.plan.Plan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import ModelConfig
from ..core.servable_id import local_versions
from ..core.version_policy import Specific
from ..errors import ConfigError
from .plan import Plan, dns_name
from .repository import ObjectStorage, revision_uri

__all__ = [
    "Rollout",
    "inference_service_manifest",
    "inference_service_name",
    "rollout_of",
    "service_account_manifest",
    "service_account_name",
    "stable_version",
]


@dataclass(frozen=True)
class Rollout:
    """The KServe revisions of one model: ``stable`` is the version the first revision serves
    (``None``: the newest under the repository), ``canary`` the version of the canary revision
    with ``canary_percent`` of the traffic (both ``None`` without a canary)."""

    stable: int | None
    canary: int | None = None
    canary_percent: int | None = None


def inference_service_name(config: ModelConfig) -> str:
    return dns_name(config.name, "InferenceService name", derived=True)


def service_account_name(plan: Plan) -> str:
    return f"{plan.name}-kserve-storage"


def stable_version(config: ModelConfig) -> int | None:
    """The version a single revision of ``config``'s model serves (see the module docstring)."""
    if "stable" in config.labels:
        return config.labels["stable"]
    if isinstance(config.version_policy, Specific):
        return max(config.version_policy.versions)
    versions = local_versions(config.base_path)
    return versions[-1] if versions else None


def rollout_of(plan: Plan, config: ModelConfig) -> Rollout:
    """The revisions of ``config``'s model: a canary only for the default model with a split."""
    if plan.split is None or config.name != plan.model.name:
        return Rollout(stable_version(config))
    shares: dict[int, float] = {}
    for target, share in plan.split.shares.items():
        version = target if isinstance(target, int) else config.labels[target]
        if share > 0:
            shares[version] = shares.get(version, 0.0) + share
    if len(shares) == 1:
        return Rollout(next(iter(shares)))
    if len(shares) > 2:
        raise ConfigError(
            f"The traffic split {plan.split.describe()} spreads over versions {sorted(shares)}: "
            "KServe splits between two revisions (the last rolled out and the canary)"
        )
    stable, canary = sorted(shares)
    return Rollout(stable, canary, round(100 * shares[canary]))


def _storage_uri(plan: Plan, config: ModelConfig, version: int | None) -> str:
    root = plan.repository.uri(config.name)
    return root if version is None else revision_uri(root, version)


def inference_service_manifest(
    plan: Plan, config: ModelConfig, version: int | None, canary_percent: int | None = None
) -> dict[str, Any]:
    """The InferenceService of ``config``'s model serving ``version`` (see :class:`Rollout`),
    with ``canaryTrafficPercent`` when ``canary_percent`` is given."""
    predictor: dict[str, Any] = {}
    if isinstance(plan.repository, ObjectStorage) and plan.repository.secret:
        predictor["serviceAccountName"] = service_account_name(plan)
    scaling = plan.autoscaling
    if scaling:
        predictor |= {
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "scaleMetric": "cpu",
            "scaleTarget": scaling.cpu_percent,
        }
    else:
        predictor["minReplicas"] = plan.replicas
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    predictor["model"] = {
        "modelFormat": {"name": "tensorflow"},
        "runtimeVersion": plan.tag,
        "storageUri": _storage_uri(plan, config, version),
        "resources": {part: dict(values) for part, values in plan.resources.items()},
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": plan.metadata(inference_service_name(config)),
        "spec": {"predictor": predictor},
    }


def service_account_manifest(plan: Plan) -> dict[str, Any] | None:
    """The ``ServiceAccount`` KServe takes the storage secret from, or ``None`` without one."""
    if not isinstance(plan.repository, ObjectStorage) or not plan.repository.secret:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": plan.metadata(service_account_name(plan)),
        "automountServiceAccountToken": False,
        "secrets": [{"name": plan.repository.secret}],
    }
