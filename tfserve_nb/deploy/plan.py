"""What the manifests are made from: the notebook's configs and the deployment's settings,
resolved and checked once (:func:`make_plan`), so the builders of :mod:`.kubernetes`,
:mod:`.kserve` and :mod:`.readme` only lay them out.

Names follow Kubernetes' rules: every object name here is an RFC 1035 label (a Service's name
must be one): lower-case letters, digits and ``-``, starting with a letter, at most 63
characters. A name derived from a model name is made into one (``half_plus_two`` →
``half-plus-two``); a name given that is not one raises :class:`ConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..by_hand import POLL_SECONDS
from ..config import ModelConfig
from ..errors import ConfigError
from ..traffic.split import SplitLike, TrafficSplit
from ..version import __version__
from .repository import Repository, Volume

__all__ = [
    "DEFAULT_RESOURCES",
    "Autoscaling",
    "Plan",
    "app_name",
    "dns_name",
    "make_plan",
]

DEFAULT_RESOURCES: Mapping[str, Mapping[str, str]] = {
    "requests": {"cpu": "500m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
"""TF Serving's container resources unless given: sized for small models such as the course's
(raise them for large ones; the autoscaler's CPU target is a share of ``requests.cpu``)."""

_RFC1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_RFC1123 = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""A namespace's name is the looser RFC 1123 label (it may start with a digit)."""
_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
"""A Secret's or a PersistentVolumeClaim's name: an RFC 1123 subdomain."""
_IMAGE_TAG = re.compile(r"^(?P<repository>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?$")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Autoscaling:
    """A ``HorizontalPodAutoscaler`` keeping average CPU use at ``cpu_percent`` % of the
    requests, with ``min_replicas`` to ``max_replicas`` pods."""

    min_replicas: int
    max_replicas: int
    cpu_percent: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ConfigError(
                f"Autoscaling {self.min_replicas}..{self.max_replicas} replicas: need "
                "1 <= min <= max"
            )
        if not 1 <= self.cpu_percent <= 1000:
            raise ConfigError(f"Autoscaling CPU target {self.cpu_percent} %: use 1..1000")


@dataclass(frozen=True)
class Plan:
    """The resolved settings of one deployment.

    ``configs`` are the notebook's (base paths as the notebook has them); ``image`` is
    ``repository:tag`` (``@sha256:...`` appended when pinned by digest) and ``tag`` its TF Serving
    version; ``replicas`` is ignored by the Deployment when ``autoscaling`` manages the count.
    """

    name: str
    namespace: str | None
    configs: tuple[ModelConfig, ...]
    repository: Repository
    image: str
    tag: str
    replicas: int
    resources: Mapping[str, Mapping[str, str]]
    autoscaling: Autoscaling | None
    poll_seconds: int
    split: TrafficSplit | None

    @property
    def model(self) -> ModelConfig:
        """The default model: the first configured (the one probes ask for and a split is of)."""
        return self.configs[0]

    @property
    def has_labels(self) -> bool:
        return any(config.labels for config in self.configs)

    @property
    def pinned_by_digest(self) -> bool:
        return "@" in self.image

    @property
    def selector(self) -> dict[str, str]:
        """The labels that pick this deployment's pods."""
        return {
            "app.kubernetes.io/name": "tensorflow-serving",
            "app.kubernetes.io/instance": self.name,
        }

    @property
    def labels(self) -> dict[str, str]:
        """The labels every object carries (the selector's and the recommended others)."""
        return {
            **self.selector,
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/version": self.tag,
            "app.kubernetes.io/managed-by": "tfserve-nb",
        }

    def metadata(self, name: str | None = None) -> dict[str, object]:
        """``metadata`` of an object named ``name`` (default: the deployment's name)."""
        metadata: dict[str, object] = {"name": name or self.name}
        if self.namespace:
            metadata["namespace"] = self.namespace
        metadata["labels"] = self.labels
        metadata["annotations"] = {"tfserve-nb/generator": f"tfserve-nb {__version__}"}
        return metadata


def dns_name(text: str, what: str, *, derived: bool) -> str:
    """``text`` as an RFC 1035 label; when ``derived`` (from a model name) it is lower-cased and
    its other characters become ``-`` first. Raises :class:`ConfigError` when it cannot be one."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") if derived else text
    if not _RFC1035.fullmatch(name):
        hint = f"pass {what}= explicitly" if derived else "fix it"
        raise ConfigError(
            f"{what} {name!r} (from {text!r}) is not a Kubernetes name: use lower-case letters, "
            f"digits and '-', starting with a letter, at most 63 characters; {hint}"
        )
    return name


def app_name(name: str | None, configs: Sequence[ModelConfig]) -> str:
    """The objects' name: ``name`` checked, or the first model's name made a Kubernetes name."""
    if name:
        return dns_name(name, "name", derived=False)
    return dns_name(configs[0].name, "name", derived=True)


def _namespace(namespace: str | None) -> str | None:
    if namespace is not None and not _RFC1123.fullmatch(namespace):
        raise ConfigError(
            f"namespace {namespace!r} is not a Kubernetes namespace name: lower-case letters, "
            "digits and '-', at most 63 characters"
        )
    return namespace or None


def _check_references(repository: Repository) -> None:
    """The Secret and the PersistentVolumeClaim named are possible Kubernetes names."""
    name: str | None
    if isinstance(repository, Volume):
        what, name = "volume_claim", repository.claim
    else:
        what, name = "storage_secret", repository.secret
    if name is not None and not _SUBDOMAIN.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} is not a Kubernetes name: lower-case letters, digits, '-' and '.'"
        )


def _image(image: str, digest: str | None) -> tuple[str, str]:
    """``(image, tag)``: ``image`` pinned by ``digest`` if given; the tag checked present."""
    match = _IMAGE_TAG.match(image)
    if not match or not match.group("tag"):
        raise ConfigError(f"Image {image!r}: give it as repository:tag (pinned, not implicit)")
    if match.group("tag") == "latest":
        raise ConfigError(
            f"Image {image!r}: 'latest' is not a version; pin the TF Serving version's tag"
        )
    if digest is None:
        return image, match.group("tag")
    if not _DIGEST.fullmatch(digest):
        raise ConfigError(f"Image digest {digest!r}: expected sha256:<64 hex digits>")
    return f"{image}@{digest}", match.group("tag")


def _split(split: SplitLike | None, model: ModelConfig) -> TrafficSplit | None:
    """The split, its labels checked to be the model's."""
    if split is None:
        return None
    chosen = TrafficSplit.of(split)
    unknown = sorted(t for t in chosen.weights if isinstance(t, str) and t not in model.labels)
    if unknown:
        raise ConfigError(
            f"The traffic split asks for labels {unknown} that model {model.name} does not "
            f"have (its labels: {dict(model.labels)}); set them first"
        )
    return chosen


def make_plan(
    configs: Sequence[ModelConfig],
    repository: Repository,
    *,
    name: str,
    namespace: str | None,
    image: str,
    image_digest: str | None,
    replicas: int,
    resources: Mapping[str, Mapping[str, str]] | None,
    autoscaling: Autoscaling | tuple[int, int, int] | None,
    poll_seconds: int | None,
    split: SplitLike | None,
) -> Plan:
    """Resolve and check the settings (see :func:`~tfserve_nb.deploy.deployment`); ``name`` is
    :func:`app_name`'s."""
    if replicas < 1:
        raise ConfigError(f"replicas={replicas}: at least 1")
    poll = POLL_SECONDS if poll_seconds is None else poll_seconds
    if poll < 1:
        raise ConfigError(f"poll_seconds={poll}: at least 1 (0 would turn polling off)")
    unknown = sorted(set(resources or {}) - {"requests", "limits"})
    if unknown:
        raise ConfigError(f"resources: only 'requests' and 'limits', not {unknown}")
    merged = {
        part: {**DEFAULT_RESOURCES[part], **(resources or {}).get(part, {})}
        for part in DEFAULT_RESOURCES
    }
    _check_references(repository)
    full_image, tag = _image(image, image_digest)
    scaling = Autoscaling(*autoscaling) if isinstance(autoscaling, tuple) else autoscaling
    return Plan(
        name=name,
        namespace=_namespace(namespace),
        configs=tuple(configs),
        repository=repository,
        image=full_image,
        tag=tag,
        replicas=replicas,
        resources=merged,
        autoscaling=scaling,
        poll_seconds=poll,
        split=_split(split, configs[0]),
    )
