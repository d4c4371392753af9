"""The REST API's paths, names and labels URL-quoted."""

from __future__ import annotations

from tfserve_nb.protocol.rest_paths import model_path


def test_model_paths() -> None:
    assert model_path("digits") == "/v1/models/digits"
    assert model_path("digits", 3) == "/v1/models/digits/versions/3"
    assert model_path("digits", label="canary") == "/v1/models/digits/labels/canary"
    assert model_path("digits", 3, "canary") == "/v1/models/digits/versions/3"  # version wins
    assert model_path("a/b c", label="x/y") == "/v1/models/a%2Fb%20c/labels/x%2Fy"
