"""Browser-test plumbing: remember each test phase's report, so fixtures can save a screenshot of
a failed test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
