"""The Kubernetes objects of a TF Serving deployment, as dicts ready for YAML.

- ``ConfigMap`` ``<name>-models-config``: key ``models.config``, the notebook's configs (policy and
  labels) rendered by :func:`~tfserve_nb.config.render_config_file`, base paths as the pod sees
  them (:func:`~.repository.in_container`). Mounted as a folder (not ``subPath``, which would
  freeze it) at ``/config``: an edited ConfigMap reaches the pods within the kubelet's sync
  period, and TF Serving polls the file every ``poll_seconds``.
- ``Deployment``: ``tensorflow/serving`` (``command`` ``/usr/bin/tensorflow_model_server``, the
  image's own binary) with ``--model_config_file`` and its poll interval (and
  ``--allow_version_labels_for_unavailable_models`` when there are labels: upstream checks
  labels before the first load, as :mod:`tfserve_nb.by_hand` explains); ports 8500 ``grpc`` and
  8501 ``http``; probes (:func:`probes`); resources; a non-root, read-only, no-capabilities
  security context with an ``emptyDir`` at ``/tmp``; the repository from object storage (KServe's
  storage initializer as init container) or a read-only volume. Rolling updates add a pod before
  removing one (``maxUnavailable: 0``), so a restart never drops below the replica count.
- ``Service`` (ClusterIP): ``grpc`` 8500 and ``http`` 8501.
- ``NetworkPolicy``: the pods accept connections on 8500 and 8501 only (from any source: narrow
  ``from`` to your clients); their outgoing traffic (the download from object storage) is left
  alone.
- ``HorizontalPodAutoscaler`` (``autoscaling/v2``), when asked: then the Deployment leaves
  ``replicas`` out, as Kubernetes advises, so re-applying it does not undo the autoscaler.

Pure functions of a :class:`~.plan.Plan`.
"""

from __future__ import annotations

from typing import Any

from ..backends.docker.container import GRPC_CONTAINER_PORT, REST_CONTAINER_PORT
from ..by_hand import CONTAINER_MODELS, container_path
from ..config import render_config_file
from ..protocol.rest_paths import model_path
from .plan import Plan
from .repository import ObjectStorage, Volume, in_container

__all__ = [
    "CONFIG_DIR",
    "CONFIG_KEY",
    "RUN_AS",
    "SERVER",
    "STORAGE_INITIALIZER",
    "autoscaler_manifest",
    "config_map_manifest",
    "config_map_name",
    "deployment_manifest",
    "models_config",
    "network_policy_manifest",
    "probes",
    "server_args",
    "service_manifest",
]

CONFIG_DIR = "/config"
CONFIG_KEY = "models.config"
SERVER = "/usr/bin/tensorflow_model_server"
"""The model server binary of the ``tensorflow/serving`` images (their entrypoint runs it)."""
RUN_AS = 10001
"""User and group id of every container: not root, above the host's ordinary ids (the
``tensorflow/serving`` image defines no user and runs as any)."""
STORAGE_INITIALIZER = "kserve/storage-initializer:v0.21.0"
"""KServe's storage initializer image (``initializer-entrypoint SRC DEST [SRC DEST ...]``),
of the KServe release whose SDK the tests check against."""
STORAGE_INITIALIZER_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "100Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
"""KServe's own defaults for its storage initializer container."""


def config_map_name(plan: Plan) -> str:
    return f"{plan.name}-models-config"


def models_config(plan: Plan) -> str:
    """The ``models.config`` the pods read: the notebook's configs with the pod's base paths."""
    return render_config_file(in_container(config) for config in plan.configs)


def server_args(plan: Plan) -> list[str]:
    """``tensorflow_model_server``'s flags."""
    args = [
        f"--port={GRPC_CONTAINER_PORT}",
        f"--rest_api_port={REST_CONTAINER_PORT}",
        f"--model_config_file={CONFIG_DIR}/{CONFIG_KEY}",
        f"--model_config_file_poll_wait_seconds={plan.poll_seconds}",
    ]
    if plan.has_labels:
        args.append("--allow_version_labels_for_unavailable_models=true")
    return args


def probes(plan: Plan) -> dict[str, dict[str, Any]]:
    """The kubelet's probes, on the REST port, of the default model.

    TF Serving opens its ports only once the models of its first config are loaded (upstream's
    ``Server::BuildAndStart`` creates the ``ServerCore``, which waits for them, before it starts
    the gRPC and HTTP servers). After that, the model *status* (``GET /v1/models/NAME``) answers
    200 whenever the server knows any version of the model, even one LOADING or ended by a failed
    load, and 404 only for a model with none (``GetModelStatusImpl``). The model *metadata*
    (``/metadata``) needs a servable handle, so it answers 200 only while a version is
    AVAILABLE. Hence: ``readinessProbe`` (take traffic) on the metadata; ``livenessProbe`` (the
    server answers at all) on the status; a ``startupProbe`` on the status allowing ten minutes
    for the first load, before which liveness is not checked.
    """
    status = model_path(plan.model.name)

    def http_get(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}}

    return {
        "startupProbe": {**http_get(status), "periodSeconds": 10, "failureThreshold": 60},
        "readinessProbe": {
            **http_get(status + "/metadata"),
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            **http_get(status),
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


def _pull_policy(plan: Plan) -> str:
    """A digest names one image for good (pull once); a tag may be re-pushed (pull each start)."""
    return "IfNotPresent" if plan.pinned_by_digest else "Always"


def _container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _storage_initializer(plan: Plan, storage: ObjectStorage) -> dict[str, Any]:
    args = [
        word
        for config in plan.configs
        for word in (storage.uri(config.name), container_path(config.name))
    ]
    env: list[dict[str, Any]] = []
    if storage.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": storage.endpoint})
    if storage.region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": storage.region})
    if storage.secret:
        env += [
            {
                "name": key,
                "valueFrom": {"secretKeyRef": {"name": storage.secret, "key": key}},
            }
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ]
    container: dict[str, Any] = {
        "name": "storage-initializer",
        "image": STORAGE_INITIALIZER,
        "imagePullPolicy": "Always",
        "args": args,
    }
    if env:
        container["env"] = env
    container |= {
        "resources": STORAGE_INITIALIZER_RESOURCES,
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "models", "mountPath": CONTAINER_MODELS},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return container


def _models_volume(plan: Plan) -> dict[str, Any]:
    if isinstance(plan.repository, Volume):
        return {
            "name": "models",
            "persistentVolumeClaim": {"claimName": plan.repository.claim, "readOnly": True},
        }
    return {"name": "models", "emptyDir": {}}


def _server_container(plan: Plan) -> dict[str, Any]:
    return {
        "name": "tensorflow-serving",
        "image": plan.image,
        "imagePullPolicy": _pull_policy(plan),
        "command": [SERVER],
        "args": server_args(plan),
        "ports": [
            {"name": "grpc", "containerPort": GRPC_CONTAINER_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": REST_CONTAINER_PORT, "protocol": "TCP"},
        ],
        **probes(plan),
        "resources": {part: dict(values) for part, values in plan.resources.items()},
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "models", "mountPath": CONTAINER_MODELS, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def config_map_manifest(plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": plan.metadata(config_map_name(plan)),
        "data": {CONFIG_KEY: models_config(plan)},
    }


def deployment_manifest(plan: Plan) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if isinstance(plan.repository, ObjectStorage):
        pod_spec["initContainers"] = [_storage_initializer(plan, plan.repository)]
    pod_spec |= {
        "containers": [_server_container(plan)],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name(plan)}},
            _models_volume(plan),
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    spec: dict[str, Any] = {} if plan.autoscaling else {"replicas": plan.replicas}
    spec |= {
        "selector": {"matchLabels": plan.selector},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {"metadata": {"labels": plan.labels}, "spec": pod_spec},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": plan.metadata(),
        "spec": spec,
    }


def service_manifest(plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": plan.metadata(),
        "spec": {
            "type": "ClusterIP",
            "selector": plan.selector,
            "ports": [
                {
                    "name": "grpc",
                    "port": GRPC_CONTAINER_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "kubernetes.io/h2c",
                },
                {
                    "name": "http",
                    "port": REST_CONTAINER_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                },
            ],
        },
    }


def network_policy_manifest(plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": plan.metadata(),
        "spec": {
            "podSelector": {"matchLabels": plan.selector},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "ports": [
                        {"port": GRPC_CONTAINER_PORT, "protocol": "TCP"},
                        {"port": REST_CONTAINER_PORT, "protocol": "TCP"},
                    ]
                }
            ],
        },
    }


def autoscaler_manifest(plan: Plan) -> dict[str, Any] | None:
    """The ``HorizontalPodAutoscaler``, or ``None`` without autoscaling."""
    scaling = plan.autoscaling
    if scaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": plan.metadata(),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.cpu_percent,
                        },
                    },
                }
            ],
        },
    }
