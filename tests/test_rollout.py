"""The rollout rules on plain configs: which changes strand a label, how a label moves, and the
plain words for a server's refusal; and ``ModelServer`` refusing the same changes before it sends
anything. No server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tfserve_nb.backends.base import ServerProcess
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import All, Latest, Specific, VersionPolicy
from tfserve_nb.errors import ConfigError, ServingError
from tfserve_nb.handle import ModelServer
from tfserve_nb.responses import VersionStatus
from tfserve_nb.rollout import (
    check_labels,
    check_pin,
    check_version_policy,
    explain,
    join_versions,
    kept_versions,
    moved_labels,
    stranded_labels,
)


def config(policy: VersionPolicy, **labels: int) -> ModelConfig:
    return ModelConfig("digits", "/models/digits", policy, labels)


def never_asked() -> list[int]:
    raise AssertionError("the server's status is asked for only when a label is outside")


# ------------------------------------------------------------------ what a policy keeps


@pytest.mark.parametrize(
    ("policy", "disk", "kept"),
    [
        (Specific((2, 3)), None, {2, 3}),
        (Specific((2, 3)), [1, 2], {2, 3}),  # a pin keeps its versions, on disk or not
        (Latest(1), [1, 2, 3], {3}),
        (Latest(2), [1, 2, 3], {2, 3}),
        (All(), [1, 3], {1, 3}),
        (Latest(1), None, None),  # base path not local: unknown
        (All(), [], None),
    ],
)
def test_kept_versions(
    policy: VersionPolicy, disk: list[int] | None, kept: set[int] | None
) -> None:
    assert kept_versions(policy, disk) == kept


def test_stranded_labels_are_those_outside_what_is_kept() -> None:
    labels = {"stable": 1, "canary": 2}
    assert stranded_labels(labels, {2, 3}) == {"stable": 1}
    assert stranded_labels(labels, {1, 2}) == {}
    assert stranded_labels(labels, None) == {}


# ------------------------------------------------------------------ version policy changes


def test_a_pin_that_unloads_a_labelled_version_is_refused_in_plain_words() -> None:
    with pytest.raises(ConfigError) as refused:
        check_version_policy(config(Specific((1, 2)), stable=1, canary=2), Specific((2,)), [1, 2])
    assert str(refused.value) == (
        "Label stable → 1 points at a version this change would unload; the server would "
        "accept it and then answer NOT_FOUND for the label. Move the label to a version that "
        "stays (or remove it) first."
    )


def test_following_latest_is_checked_against_the_versions_on_disk() -> None:
    labelled = config(Specific((1, 2)), stable=1)
    with pytest.raises(ConfigError, match=r"Label stable → 1 points at a version"):
        check_version_policy(labelled, Latest(1), [1, 2])
    assert check_version_policy(labelled, Latest(2), [1, 2]) == {1, 2}
    assert check_version_policy(labelled, Latest(1), None) is None  # unknown: not refused


def test_changes_that_keep_every_labelled_version_pass_and_say_what_is_kept() -> None:
    assert check_version_policy(
        config(Specific((1, 2)), stable=1), Specific((1, 3)), [1, 2, 3]
    ) == {1, 3}
    assert check_version_policy(config(Latest()), Specific((3,)), [3]) == {3}  # no labels
    with pytest.raises(ConfigError, match=r"Label a → 1, b → 2 points"):
        check_version_policy(config(All(), b=2, a=1), Specific((3,)), None)  # names sorted


# ------------------------------------------------------------------ pins


def test_a_pin_names_at_least_one_version_that_is_on_disk() -> None:
    check_pin([1, 2], [1, 2, 3])
    check_pin([7], None)  # the base path is not local: not refused
    with pytest.raises(ConfigError, match=r"^Select at least one version to pin\.$"):
        check_pin([], [1, 2])
    with pytest.raises(ConfigError, match=r"^Select at least one version to pin\.$"):
        check_pin([], None)
    with pytest.raises(
        ConfigError,
        match=r"^Version 3 and 4 is not on disk under the model's base path; export it first\.$",
    ):
        check_pin([1, 3, 4], [1, 2])


def test_versions_in_words() -> None:
    assert join_versions([]) == ""
    assert join_versions([1]) == "1"
    assert join_versions([1, 2]) == "1 and 2"
    assert join_versions([3, 1, 2]) == "3, 1 and 2"


# ------------------------------------------------------------------ label moves


def test_moved_labels() -> None:
    labels = {"stable": 1, "canary": 2}
    assert moved_labels(labels, "canary", 1) == {"stable": 1, "canary": 1}
    assert moved_labels(labels, "new", 3) == {"stable": 1, "canary": 2, "new": 3}
    assert moved_labels(labels, "canary", None) == {"stable": 1}
    assert moved_labels(labels, "absent", None) == labels
    assert labels == {"stable": 1, "canary": 2}  # not changed in place


def test_a_label_on_a_kept_version_passes_without_asking_the_server() -> None:
    check_labels(config(Specific((1, 2))), {"stable": 1, "canary": 2}, None, never_asked)
    check_labels(config(Latest(1)), {"stable": 2}, [1, 2], never_asked)
    check_labels(config(Latest(1)), {"stable": 1}, None, never_asked)  # unknown: not refused


def test_a_label_on_an_available_version_the_policy_unloads_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        check_labels(config(Specific((2,))), {"stable": 1, "canary": 2}, None, lambda: [1, 2])
    assert str(refused.value) == (
        "Label stable → 1 points at a version the version policy specific { versions: 2 } "
        "unloads; the server would accept it and then answer NOT_FOUND for the label. Keep the "
        "version (pin it together with the ones you serve) first, or point the label at a "
        "version that stays."
    )
    with pytest.raises(ConfigError, match=r"Label old → 1 points at a version the version policy"):
        check_labels(config(Latest(1)), {"old": 1}, [1, 2], lambda: [1, 2])


def test_a_label_on_a_version_that_is_not_loaded_is_left_to_the_server() -> None:
    asked = []

    def available() -> list[int]:
        asked.append(True)
        return [1]

    check_labels(config(Specific((1,))), {"stable": 1, "canary": 2}, [1, 2], available)
    assert asked == [True]  # asked once; the server refuses canary → 2 (FAILED_PRECONDITION)


# ------------------------------------------------------------------ explanations


def test_refusals_in_plain_words() -> None:
    label = ServingError(
        "FAILED_PRECONDITION",
        "Request to assign label to version 3 of model digits, which is not currently "
        "available for inference",
    )
    assert explain(label) == (
        "Version 3 is not loaded, and TF Serving lets a label point only at a version that is "
        "AVAILABLE. Load it first — pin it together with the version(s) you serve now — wait "
        "until it is AVAILABLE, then move the label. Nothing changed."
    )
    assert explain(ServingError("UNAVAILABLE", "connection refused")) == (
        "The server did not answer; it may have stopped. Nothing changed."
    )
    assert explain(ServingError("NOT_FOUND", "no model")) == (
        "The server does not know this model. Nothing changed."
    )
    assert explain(ServingError("FAILED_PRECONDITION", "other")) == (
        "The server refused the new config (FAILED_PRECONDITION). Nothing changed."
    )
    assert explain(ServingError("INVALID_ARGUMENT", "x")) == (
        "The server refused the new config (INVALID_ARGUMENT). Nothing changed."
    )


# ------------------------------------------------------------------ the handle applies them


class NeverStarted(ServerProcess):
    """A server process that is not there: any call that reached it would fail UNAVAILABLE."""

    backend_name = "none"
    grpc_address = "127.0.0.1:9"
    rest_url = "http://127.0.0.1:9"

    def alive(self) -> bool:
        return False

    def logs(self, tail: int | None = None) -> str:
        return ""

    def stop(self, grace: float = 5.0) -> None:
        pass


class StatusOnly:
    """Stands in for the handle's client: reports ``available`` and refuses anything else."""

    def __init__(self, available: list[int]) -> None:
        self.available = available

    def status(self, *, model_name: str | None = None, version: int | None = None) -> list[Any]:
        return [VersionStatus(v, "AVAILABLE") for v in self.available]

    def close(self) -> None:
        pass


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[ModelServer]:
    """A handle whose model has versions 1 and 2 on disk, both pinned, ``stable`` on 1."""
    for version in (1, 2):
        (tmp_path / str(version)).mkdir()
    model = ModelConfig("m", str(tmp_path), Specific((1, 2)), {"stable": 1})
    server = ModelServer(NeverStarted(), [model])
    yield server
    server.stop()


def test_the_handle_refuses_a_policy_that_strands_a_label_before_sending(
    handle: ModelServer,
) -> None:
    before = handle.models
    with pytest.raises(ConfigError, match=r"^Label stable → 1 points at a version this change"):
        handle.set_version_policy(2)
    with pytest.raises(ConfigError, match=r"^Label stable → 1 points"):
        handle.set_version_policy("latest")  # the newest on disk is 2
    assert handle.models == before


def test_the_handle_refuses_a_label_on_a_version_being_unloaded(handle: ModelServer) -> None:
    pinned = ModelConfig("m", handle.models["m"].base_path, Specific((2,)))
    handle._models = {"m": pinned}  # as if version 2 had just been pinned
    handle.client = StatusOnly([1, 2])  # type: ignore[assignment]
    with pytest.raises(ConfigError, match=r"^Label stable → 1 points at a version the version"):
        handle.set_labels({"stable": 1})
    assert handle.models == {"m": pinned}


def test_the_handle_refuses_a_pin_of_a_version_not_on_disk_before_sending(
    handle: ModelServer,
) -> None:
    before = handle.models
    with pytest.raises(ConfigError, match=r"^Version 3 is not on disk .*; export it first\.$"):
        handle.set_version_policy([1, 2, 3])
    assert handle.models == before
