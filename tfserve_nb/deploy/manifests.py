"""``deployment()``: the notebook's model configs as Kubernetes and KServe manifests, written to a
folder with a README, and :class:`Manifests`, what it wrote.

The folder holds::

    kubernetes/configmap.yaml   models.config (policy and labels), polled by TF Serving
    kubernetes/deployment.yaml  tensorflow/serving replicas
    kubernetes/service.yaml     ClusterIP: grpc 8500, http 8501
    kubernetes/networkpolicy.yaml  ingress on 8500 and 8501 only
    kubernetes/hpa.yaml         only with autoscaling
    kserve/serviceaccount.yaml  only with a storage secret
    kserve/<model>.yaml         an InferenceService per model (its stable revision)
    kserve/<model>-canary.yaml  only with a split over two versions: the update to apply next
    README.md                   apply, check readiness, promote, roll back

and an index, ``.tfserve-nb-manifests``, of the files written. Writing into a folder replaces the
files its index lists (so ``kubectl apply -f kubernetes/`` never applies a stale ``hpa.yaml``) and
refuses to overwrite any other file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..backends.docker.image import default_image
from ..errors import ConfigError
from ..traffic.split import SplitLike
from . import kserve, kubernetes
from .plan import Autoscaling, Plan, app_name, make_plan
from .readme import readme
from .repository import model_configs, repository_for

__all__ = ["INDEX", "Manifests", "deployment", "to_yaml"]

INDEX = ".tfserve-nb-manifests"
"""The file listing what :func:`deployment` wrote into a folder, one relative path a line."""


class _Dumper(yaml.SafeDumper):
    """Block style throughout; multi-line strings (``models.config``) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(manifest: Mapping[str, Any]) -> str:
    """One manifest as YAML, keys in the order built (``apiVersion``, ``kind``, ``metadata``...)."""
    return yaml.dump(dict(manifest), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


@dataclass(frozen=True)
class Manifests:
    """What :func:`deployment` wrote: ``files`` maps each path relative to ``out_dir`` (``/``
    separated) to its text, in the order to read them (README last)."""

    out_dir: Path
    files: Mapping[str, str]

    @property
    def paths(self) -> list[Path]:
        """The files' absolute paths."""
        return [self.out_dir / name for name in self.files]

    def manifests(self) -> dict[str, dict[str, Any]]:
        """Each YAML file, parsed (``kubernetes/deployment.yaml`` → its object)."""
        return {
            name: yaml.safe_load(text)
            for name, text in self.files.items()
            if name.endswith(".yaml")
        }

    def blocks(self) -> list[tuple[str, str]]:
        """(file name, text) of each file, for a notebook to show."""
        return list(self.files.items())

    def __str__(self) -> str:
        return "\n".join(f"# --- {name}\n{text}" for name, text in self.files.items())

    def __repr__(self) -> str:
        return f"<Manifests: {len(self.files)} files in {self.out_dir}: {', '.join(self.files)}>"


def _build(plan: Plan, rollouts: Mapping[str, kserve.Rollout]) -> dict[str, str]:
    """Every file's relative path and text (README excluded); ``rollouts`` by model name."""
    built: dict[str, dict[str, Any] | None] = {
        "kubernetes/configmap.yaml": kubernetes.config_map_manifest(plan),
        "kubernetes/deployment.yaml": kubernetes.deployment_manifest(plan),
        "kubernetes/service.yaml": kubernetes.service_manifest(plan),
        "kubernetes/networkpolicy.yaml": kubernetes.network_policy_manifest(plan),
        "kubernetes/hpa.yaml": kubernetes.autoscaler_manifest(plan),
        "kserve/serviceaccount.yaml": kserve.service_account_manifest(plan),
    }
    names = [kserve.inference_service_name(config) for config in plan.configs]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"Models {[c.name for c in plan.configs]} give InferenceService names {names}: "
            "rename one"
        )
    for config, name in zip(plan.configs, names, strict=True):
        rollout = rollouts[config.name]
        built[f"kserve/{name}.yaml"] = kserve.inference_service_manifest(
            plan, config, rollout.stable
        )
        if rollout.canary is not None:
            built[f"kserve/{name}-canary.yaml"] = kserve.inference_service_manifest(
                plan, config, rollout.canary, rollout.canary_percent
            )
    return {name: to_yaml(manifest) for name, manifest in built.items() if manifest is not None}


def _write(out_dir: Path, files: Mapping[str, str]) -> None:
    """Replace the files of ``out_dir``'s index with ``files``; refuse to overwrite others."""
    index = out_dir / INDEX
    previous = set(index.read_text().split()) if index.exists() else set()
    foreign = [name for name in files if name not in previous and (out_dir / name).exists()]
    if foreign:
        raise ConfigError(
            f"{out_dir} already has {foreign}, not written by tfserve-nb: choose another out_dir "
            "or remove them"
        )
    for name in previous:
        (out_dir / name).unlink(missing_ok=True)
    for name, text in files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    index.write_text("".join(f"{name}\n" for name in files))


def deployment(
    base_path_or_configs: Any,
    *,
    out_dir: str | os.PathLike[str],
    model_uri: str | Mapping[str, str] | None = None,
    volume_claim: str | None = None,
    name: str | None = None,
    namespace: str | None = None,
    replicas: int = 2,
    image: str | None = None,
    image_digest: str | None = None,
    resources: Mapping[str, Mapping[str, str]] | None = None,
    hpa: Autoscaling | tuple[int, int, int] | None = None,
    split: SplitLike | None = None,
    s3_endpoint: str | None = None,
    s3_region: str | None = None,
    storage_secret: str | None = None,
    poll_seconds: int | None = None,
) -> Manifests:
    """Write the Kubernetes and KServe manifests serving ``base_path_or_configs`` into
    ``out_dir`` (see the module docstring for the files) and return them.

    ``base_path_or_configs``: a model folder, an ``ExportedModel``, a ``models.config`` file, a
    storage URI, or :class:`~tfserve_nb.config.ModelConfig` entries (policy and labels kept;
    ``ModelServer.deployment`` passes the ones the server was last sent).

    Where the models are (:mod:`.repository`): ``model_uri`` is the storage URI
    (``s3://bucket/digits``; a mapping name → URI for several models) of each model's repository,
    downloaded into the pods by KServe's storage initializer with ``s3_endpoint``
    (``AWS_ENDPOINT_URL`` of an S3-compatible server), ``s3_region`` and the credentials of the
    Secret ``storage_secret`` (keys ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``; created by
    you, never by us). Models whose config already has a storage URI as base path use it.
    Without any, the models are on the PersistentVolumeClaim ``volume_claim`` (default
    ``<name>-models``), as ``<model>/<version>/``. KServe revisions read
    ``<model_uri>-v<version>/`` (:func:`~.repository.revision_uri`).

    ``name`` (default: the first model's, made a Kubernetes name) names the objects;
    ``namespace`` goes into each (default: none, the one ``kubectl`` is pointed at). ``replicas``
    TF Serving pods of ``image`` (default: ``tensorflow/serving`` at the installed TensorFlow's
    version, as the docker backend picks it), pinned by ``image_digest`` (``sha256:...``) if
    given, with ``resources`` (``{"requests": {...}, "limits": {...}}``, merged over
    :data:`~.plan.DEFAULT_RESOURCES`); ``hpa`` = ``(min, max, cpu_percent)`` adds a
    HorizontalPodAutoscaler. ``split`` (a ``TrafficSplit`` or its weights, of the first model)
    makes KServe's canary. ``poll_seconds``: ``--model_config_file_poll_wait_seconds`` (default
    60).

    Raises :class:`~tfserve_nb.errors.ConfigError` naming what does not fit.
    """
    configs = model_configs(base_path_or_configs)
    app = app_name(name, configs)
    repository = repository_for(
        configs,
        model_uri,
        volume_claim=volume_claim or f"{app}-models",
        endpoint=s3_endpoint,
        region=s3_region,
        secret=storage_secret,
    )
    plan = make_plan(
        configs,
        repository,
        name=app,
        namespace=namespace,
        image=image or default_image(),
        image_digest=image_digest,
        replicas=replicas,
        resources=resources,
        autoscaling=hpa,
        poll_seconds=poll_seconds,
        split=split,
    )
    rollouts = {config.name: kserve.rollout_of(plan, config) for config in plan.configs}
    files = _build(plan, rollouts)
    files["README.md"] = readme(plan, rollouts, list(files))
    target = Path(out_dir).absolute()
    _write(target, files)
    return Manifests(target, files)
