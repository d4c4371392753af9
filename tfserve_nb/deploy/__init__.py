"""From the notebook to a cluster: the notebook's model configs as Kubernetes and KServe
manifests.

One module per part, read in this order:

- :mod:`.repository` — where the cluster's servers find the models (object storage, downloaded
  by KServe's storage initializer, or a volume), and the storage layout KServe revisions need.
- :mod:`.plan` — the settings, resolved and checked once; object names and labels.
- :mod:`.kubernetes` — ConfigMap (``models.config``), Deployment, Service, HorizontalPodAutoscaler.
- :mod:`.kserve` — InferenceServices, the canary revision from a traffic split.
- :mod:`.readme` — the README beside them: apply, readiness, promote, roll back.
- :mod:`.manifests` — :func:`deployment`: builds them all, writes the folder.
- :mod:`.command` — ``tfserve-nb manifests``.
"""

from __future__ import annotations

from .manifests import Manifests, deployment
from .plan import Autoscaling
from .repository import revision_uri

__all__ = ["Autoscaling", "Manifests", "deployment", "revision_uri"]
