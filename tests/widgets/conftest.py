"""Fixtures for the dashboard tests: one embedded server per module, reset before each test.

The server serves ``digits`` from a base path holding versions 1 (88 %) and 2 (97 %). Before each
test it is put back to the baseline a rollout starts from: version 1 pinned, version 2 on disk but
not served, no labels. Tests that add versions to disk or stop the server make their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.waiting import wait_until
from tfserve_nb.config import ModelConfig
from tfserve_nb.core.version_policy import Specific


@pytest.fixture(scope="module")
def rollout_base(tmp_path_factory: pytest.TempPathFactory, digits_models: Any) -> Path:
    """A base path with digits versions 1 and 2 (shared by the module; do not add versions)."""
    return digits_models.make_base_path(tmp_path_factory.mktemp("rollout"), versions=(1, 2))


@pytest.fixture(scope="module")
def rollout_server_module(rollout_base: Path) -> Iterator[Any]:
    """An embedded server for ``rollout_base`` with version 1 pinned."""
    from tfserve_nb import serve

    server = serve(rollout_base, backend="embedded", version_policy=1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rollout_server(rollout_server_module: Any, rollout_base: Path) -> Any:
    """The module's server, reset to the baseline: version 1 pinned, v2 on disk, no labels."""
    server = rollout_server_module
    server.reload_config([ModelConfig("digits", str(rollout_base), Specific((1,)))])
    wait_until(
        lambda: (
            [(s.version, s.state) for s in server.status() if s.state != "END"]
            == [(1, "AVAILABLE")]
        ),
        what="the baseline: only version 1 AVAILABLE",
    )
    return server
