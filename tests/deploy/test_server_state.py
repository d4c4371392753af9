"""``ModelServer.deployment()`` writes the state the notebook left the server in: notebook 02's
moves made over the protocol against a live embedded server (both versions pinned, ``stable`` on
1, ``canary`` on 2), then the manifests — their models.config is that state, and KServe's
revisions pin those versions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tfserve_nb as tfs
from tfserve_nb.config import ModelConfig, parse_config_file
from tfserve_nb.core.version_policy import Specific


def test_the_manifests_hold_the_state_the_server_was_last_sent(
    tmp_path: Path, half_plus_two_models
) -> None:
    base = half_plus_two_models.make_base_path(tmp_path, versions=(1, 2))
    with tfs.serve(base, backend="embedded", version_policy=1) as server:
        server.set_version_policy([1, 2])
        server.wait_until_available(2, timeout=60)
        server.set_labels({"stable": 1, "canary": 2})
        written = server.deployment(
            tmp_path / "out",
            model_uri="s3://models/half_plus_two",
            split={"stable": 90, "canary": 10},
        )
        state = list(server.models.values())
    assert state == [
        ModelConfig("half_plus_two", str(base), Specific((1, 2)), {"stable": 1, "canary": 2})
    ]
    manifests = written.manifests()
    models_config = manifests["kubernetes/configmap.yaml"]["data"]["models.config"]
    assert parse_config_file(models_config) == [
        dataclasses.replace(state[0], base_path="/models/half_plus_two")
    ]
    (init,) = manifests["kubernetes/deployment.yaml"]["spec"]["template"]["spec"]["initContainers"]
    assert init["args"] == ["s3://models/half_plus_two/", "/models/half_plus_two"]
    revisions = [
        (
            m["spec"]["predictor"]["model"]["storageUri"],
            m["spec"]["predictor"].get("canaryTrafficPercent"),
        )
        for m in manifests.values()
        if m["kind"] == "InferenceService"
    ]
    assert revisions == [
        ("s3://models/half_plus_two-v1/", None),
        ("s3://models/half_plus_two-v2/", 10),
    ]
