"""Rollout rules: what a version-policy change or a label move may do to a model's labels.

TF Serving guards one direction itself: a label may point only at a version that is AVAILABLE
(``FAILED_PRECONDITION`` otherwise, unless the server runs with
``--allow_version_labels_for_unavailable_models``). It does not guard the other direction: it
accepts a config whose version policy unloads a version a label points at, and from then on
answers ``NOT_FOUND`` for the label. Such a label is *stranded*. The rules here refuse changes
that would strand a label or pin a version that is not on disk, and put a server's refusal of a
config reload into plain words.

:meth:`ModelServer.set_version_policy <tfserve_nb.handle.ModelServer.set_version_policy>`,
:meth:`ModelServer.set_labels <tfserve_nb.handle.ModelServer.set_labels>` and the dashboard's
Switch panel apply the same functions, so a script and a click get the same answer.

Every function is pure (no I/O, no shared state) and therefore thread-safe; "raises" below is the
only way they fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from .config import ModelConfig
from .core.version_policy import Specific, VersionPolicy
from .errors import ConfigError, ServingError

__all__ = [
    "check_labels",
    "check_pin",
    "check_version_policy",
    "explain",
    "join_versions",
    "kept_versions",
    "moved_labels",
    "stranded_labels",
]

_LABEL_ON_UNAVAILABLE = re.compile(r"assign label to version (\d+) of model (.+?), which is not")


def kept_versions(policy: VersionPolicy, disk_versions: Iterable[int] | None) -> set[int] | None:
    """The versions the server serves once it has applied ``policy``, or ``None`` when that
    cannot be known.

    ``specific`` keeps exactly its versions. ``latest`` and ``all`` keep what they select among
    ``disk_versions`` (the numeric version folders under the model's base path); when those are
    unknown (``None``: the base path is not local) or there are none, the result is ``None``.
    """
    if isinstance(policy, Specific):
        return set(policy.versions)
    disk = set(disk_versions or ())
    return policy.select(disk) if disk else None


def stranded_labels(labels: Mapping[str, int], kept: Iterable[int] | None) -> dict[str, int]:
    """The entries of ``labels`` (label → version) whose version is not among ``kept``; none
    when ``kept`` is ``None`` (unknown)."""
    if kept is None:
        return {}
    keep = set(kept)
    return {label: version for label, version in labels.items() if version not in keep}


def _names(stranded: Mapping[str, int]) -> str:
    return ", ".join(f"{label} → {version}" for label, version in sorted(stranded.items()))


def join_versions(versions: Iterable[int]) -> str:
    """``versions`` in words, in the given order: ``"1"``, ``"1 and 2"``, ``"1, 2 and 3"``."""
    items = [str(v) for v in versions]
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def check_pin(versions: Iterable[int], disk_versions: Iterable[int] | None) -> None:
    """Check that ``versions`` can be pinned (a ``specific`` policy): there is at least one, and
    each is among ``disk_versions`` (the numeric version folders under the model's base path;
    ``None`` when unknown, and then any version passes).

    Raises :class:`~tfserve_nb.errors.ConfigError` for no versions, or naming the versions that
    are not on disk and what to do.
    """
    wanted = list(versions)
    if not wanted:
        raise ConfigError("Select at least one version to pin.")
    if disk_versions is None:
        return
    disk = set(disk_versions)
    missing = [v for v in wanted if v not in disk]
    if missing:
        raise ConfigError(
            f"Version {join_versions(missing)} is not on disk under the model's base path; "
            "export it first."
        )


def check_version_policy(
    config: ModelConfig, policy: VersionPolicy, disk_versions: Iterable[int] | None
) -> set[int] | None:
    """Check that moving ``config`` to ``policy`` strands none of its labels; return the versions
    the server will serve (:func:`kept_versions`, ``None`` when unknown).

    Raises :class:`~tfserve_nb.errors.ConfigError` naming the labels whose version the change
    would unload, and what to do instead. With unknown kept versions nothing is refused.
    """
    kept = kept_versions(policy, disk_versions)
    stranded = stranded_labels(config.labels, kept)
    if stranded:
        raise ConfigError(
            f"Label {_names(stranded)} points at a version this change would unload; the server "
            "would accept it and then answer NOT_FOUND for the label. Move the label to a "
            "version that stays (or remove it) first."
        )
    return kept


def moved_labels(labels: Mapping[str, int], label: str, version: int | None) -> dict[str, int]:
    """``labels`` with ``label`` pointing at ``version``, or without ``label`` when ``version``
    is ``None``; the other labels unchanged. Never raises."""
    moved = {name: v for name, v in labels.items() if name != label}
    if version is not None:
        moved[label] = version
    return moved


def check_labels(
    config: ModelConfig,
    labels: Mapping[str, int],
    disk_versions: Iterable[int] | None,
    available: Callable[[], Iterable[int]],
) -> None:
    """Check that giving ``config`` exactly ``labels`` strands none of them.

    A label is stranded when it points at a version that is AVAILABLE now (so the server would
    accept it) but that ``config``'s version policy does not keep (:func:`kept_versions`), so it
    is about to be unloaded. ``available()`` returns the versions AVAILABLE now; it is called at
    most once, and only when some label points at a version the policy does not keep. A label on
    a version that is not AVAILABLE is left to the server, which refuses it
    (``FAILED_PRECONDITION``, see :func:`explain`).

    Raises :class:`~tfserve_nb.errors.ConfigError` naming the stranded labels and what to do.
    """
    outside = stranded_labels(labels, kept_versions(config.version_policy, disk_versions))
    if not outside:
        return
    now = set(available())
    stranded = {label: version for label, version in outside.items() if version in now}
    if stranded:
        raise ConfigError(
            f"Label {_names(stranded)} points at a version the version policy "
            f"{config.version_policy} unloads; the server would accept it and then answer "
            "NOT_FOUND for the label. Keep the version (pin it together with the ones you "
            "serve) first, or point the label at a version that stays."
        )


def explain(error: ServingError) -> str:
    """Plain words for a server's refusal of a config reload (``HandleReloadConfigRequest``),
    ending in what changed (nothing). Never raises."""
    match = _LABEL_ON_UNAVAILABLE.search(error.message)
    if error.code == "FAILED_PRECONDITION" and match:
        version = match.group(1)
        return (
            f"Version {version} is not loaded, and TF Serving lets a label point only at a "
            f"version that is AVAILABLE. Load it first — pin it together with the version(s) "
            f"you serve now — wait until it is AVAILABLE, then move the label. Nothing changed."
        )
    if error.code == "UNAVAILABLE":
        return "The server did not answer; it may have stopped. Nothing changed."
    if error.code == "NOT_FOUND":
        return "The server does not know this model. Nothing changed."
    return f"The server refused the new config ({error.code}). Nothing changed."
