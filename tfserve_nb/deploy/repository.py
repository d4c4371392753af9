"""Where a cluster's servers find the model repository, and what TF Serving is told about it.

The notebook's configs name local folders (or storage URIs). In a cluster the models are either:

- in **object storage** (``s3://`` or ``gs://``, :class:`ObjectStorage`): the official
  ``tensorflow/serving`` images since 2.7 have no S3 file system (upstream's model server links
  only TensorFlow's GCS one; tensorflow/serving#1963), so the pod's init container — KServe's
  storage initializer, the code KServe itself runs for a ``storageUri`` — downloads each model's
  base path into an ``emptyDir`` at ``/models/<name>`` before TF Serving starts. Versions pushed
  later reach the pods with ``kubectl rollout restart`` (a rolling download); label and policy
  changes need no restart (the ``ConfigMap`` is polled). ``gs://`` goes the same way, although
  TF Serving could read it itself: one path for both stores, and the one KServe takes.
- on a **volume** (:class:`Volume`): a ``PersistentVolumeClaim`` holding ``<name>/<version>/``
  for each model, mounted read-only at ``/models``; TF Serving polls it, so versions copied in
  later are picked up as they are locally.

Either way TF Serving reads ``/models/<name>`` (:func:`in_container`), so the ``models.config``
in the ``ConfigMap`` is the notebook's, base paths aside.

KServe's storage initializer lists a storage URI as a key *prefix*: ``s3://b/digits`` would also
take ``s3://b/digits2/...`` (its objects landing at ``2/...``, a version 2 that is not one).
:func:`storage_uri` therefore always ends a URI with ``/``. For KServe revisions, which serve the
newest version under their ``storageUri``, see :func:`revision_uri`.

Pure functions and frozen values: thread-safe.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..by_hand import container_path, model_folder
from ..config import ModelConfig, parse_config_file, validate
from ..errors import ConfigError

__all__ = [
    "OBJECT_STORE_SCHEMES",
    "ObjectStorage",
    "Repository",
    "Volume",
    "in_container",
    "model_configs",
    "repository_for",
    "revision_uri",
    "storage_uri",
]

OBJECT_STORE_SCHEMES = ("s3", "gs")
"""Storage URI schemes a repository may live under (what ``tfs.push`` writes and KServe's storage
initializer reads)."""


@dataclass(frozen=True)
class ObjectStorage:
    """Models downloaded from object storage when a pod starts.

    ``uris`` maps each model name to its base path in storage (``s3://bucket/digits/``, ending in
    ``/``: :func:`storage_uri`). ``endpoint`` is an S3-compatible server's URL
    (``AWS_ENDPOINT_URL``; ``None``: AWS itself), ``region`` the ``AWS_DEFAULT_REGION``;
    ``secret`` names a ``Secret`` the user created with keys ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` (the shape KServe's own credential builder reads; we store none).
    """

    uris: Mapping[str, str]
    endpoint: str | None = None
    region: str | None = None
    secret: str | None = None

    def uri(self, model_name: str) -> str:
        return self.uris[model_name]


@dataclass(frozen=True)
class Volume:
    """Models on a ``PersistentVolumeClaim`` named ``claim``: ``<claim>/<name>/<version>/``."""

    claim: str

    def uri(self, model_name: str) -> str:
        """The model's folder as a KServe ``pvc://`` storage URI."""
        return f"pvc://{self.claim}/{model_folder(model_name)}/"


Repository = ObjectStorage | Volume


def in_container(config: ModelConfig) -> ModelConfig:
    """``config`` with the base path the pod's TF Serving reads (policy and labels kept)."""
    return dataclasses.replace(config, base_path=container_path(config.name))


def _is_remote(path: str) -> bool:
    return "://" in path


def storage_uri(uri: str) -> str:
    """``uri`` checked to be ``s3://bucket/...`` or ``gs://bucket/...`` and ending in ``/`` (see
    the module docstring); raises :class:`ConfigError` otherwise."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in OBJECT_STORE_SCHEMES or not parsed.netloc:
        schemes = " or ".join(f"{s}://bucket/path" for s in OBJECT_STORE_SCHEMES)
        raise ConfigError(f"Storage URI {uri!r}: use {schemes}")
    return uri if uri.endswith("/") else uri + "/"


def revision_uri(model_uri: str, version: int) -> str:
    """The ``storageUri`` of a KServe revision that serves exactly ``version`` of the model whose
    repository is ``model_uri``: ``<model_uri>-v<version>/``, holding only ``<version>/``.

    KServe's TensorFlow runtime runs ``tensorflow_model_server --model_base_path=/mnt/models``
    with the default policy, so a revision serves the *newest* version under its ``storageUri``
    when its pod starts. Pointed at the repository itself, the "stable" revision would switch to
    v2 at its next pod start once v2 is pushed. Each revision therefore gets a prefix of its own
    that never gains a newer version, beside the repository (not inside it, where the
    Deployment's download would take it too): push it with
    ``tfs.push(base_path, "<model_uri>-v<version>", versions=[version])``. Works for ``pvc://``
    URIs alike (copy the version folder to ``<folder>-v<version>/<version>/`` on the volume).
    """
    return f"{model_uri.rstrip('/')}-v{version}/"


def model_configs(source: Any) -> list[ModelConfig]:
    """The configs ``source`` stands for, validated: a :class:`ModelConfig` or a list of them; a
    ``models.config`` file (parsed as ``--model_config_file`` is); a model folder (one model named
    after it, default policy); a storage URI (likewise, the repository already in storage); or an
    :class:`~tfserve_nb.export.ExportedModel` (its base path and name)."""
    if isinstance(source, ModelConfig):
        return validate([source])
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        configs = list(source)
        if not configs or not all(isinstance(c, ModelConfig) for c in configs):
            raise ConfigError(f"Expected ModelConfig entries, got {configs!r}")
        return validate(configs)
    base_path = getattr(source, "base_path", source)
    name = getattr(source, "name", None)
    if not isinstance(base_path, str | os.PathLike):
        raise ConfigError(
            f"Not a model folder, config file, storage URI or ModelConfig list: {source!r}"
        )
    path = os.fspath(base_path)
    if _is_remote(path):
        return validate([ModelConfig(name or posixpath.basename(path.rstrip("/")), path)])
    if os.path.isfile(path):
        return parse_config_file(Path(path).read_text(), source=path)
    if os.path.isdir(path):
        path = os.path.abspath(path)
        return validate([ModelConfig(name or os.path.basename(path), path)])
    raise ConfigError(
        f"{path} is neither a model folder nor a models.config file: export a model there first "
        "(tfserve_nb.export_model(model, base_path)) or pass its storage URI"
    )


def repository_for(
    configs: Sequence[ModelConfig],
    model_uri: str | Mapping[str, str] | None,
    *,
    volume_claim: str | None,
    endpoint: str | None = None,
    region: str | None = None,
    secret: str | None = None,
) -> Repository:
    """Where the cluster finds ``configs``' models.

    ``model_uri`` is the storage URI of the one model's repository, or a mapping model name →
    URI; a model it does not name uses its own base path when that is a storage URI. With no
    storage URI for any model, the models are on the volume ``volume_claim``. All models come
    from one place: a mix of storage and volume raises :class:`ConfigError`, as do ``endpoint``,
    ``region`` or ``secret`` given for a volume.
    """
    if isinstance(model_uri, str):
        if len(configs) != 1:
            raise ConfigError(
                f"model_uri={model_uri!r} names one repository for {len(configs)} models: pass "
                "a mapping of model name to storage URI"
            )
        given = {configs[0].name: model_uri}
    else:
        given = dict(model_uri or {})
    unknown = sorted(set(given) - {c.name for c in configs})
    if unknown:
        raise ConfigError(f"model_uri names models that are not configured: {unknown}")
    uris = {
        c.name: given.get(c.name) or (c.base_path if _is_remote(c.base_path) else None)
        for c in configs
    }
    local = [name for name, uri in uris.items() if uri is None]
    if not local:
        checked = {name: storage_uri(uri) for name, uri in uris.items() if uri}
        if (endpoint or region or secret) and not all(
            u.startswith("s3://") for u in checked.values()
        ):
            raise ConfigError(
                "s3_endpoint, s3_region and storage_secret are for s3:// repositories; for gs:// "
                "give the pods a service account with access (GKE Workload Identity)"
            )
        return ObjectStorage(checked, endpoint=endpoint, region=region, secret=secret)
    if len(local) != len(uris):
        raise ConfigError(
            f"Models {local} have no storage URI while the others are in object storage: give "
            "every model one (model_uri={name: 's3://...'}) or serve them all from a volume"
        )
    if endpoint or region or secret:
        raise ConfigError(
            "s3_endpoint, s3_region and storage_secret apply to object storage: give model_uri"
        )
    if not volume_claim:
        raise ConfigError("No storage URI and no volume claim: give model_uri or volume_claim")
    return Volume(volume_claim)
