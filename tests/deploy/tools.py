"""Checking tools that live in virtualenvs of their own, beside ``.venv``: their dependencies
clash with the package's (``kserve`` pins ``protobuf<7``, which TensorFlow's ``.venv`` is past) or
are many and unrelated (``checkov``), so they are called in subprocesses.

``python -m tests.deploy.tools`` creates or updates each one under ``.venv/tools/<name>`` (from
the package registry, as ``scripts/install`` does for ``.venv``); it does nothing for a tool whose
requirements are unchanged since its last install. Tests find a tool with :func:`require_tool`:
they fail in CI (``CI=true``) when it is missing, and skip elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = [
    "INSTALL",
    "TOOLS",
    "install",
    "require_tool",
    "tool_bin",
    "tool_problem",
    "tool_python",
]

ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = ROOT / ".venv" / "tools"
INSTALL = ".venv/bin/python -m tests.deploy.tools"
"""The command that installs every tool (``scripts/test`` runs it)."""

TOOLS: dict[str, tuple[str, ...]] = {
    # the policy scanner of the manifests (tests/deploy/test_checkov.py)
    "checkov": ("checkov==3.3.30",),
    # KServe's Python SDK: its InferenceService models (tests/deploy/test_kserve.py)
    "kserve": ("kserve==0.21.0",),
    # KServe's storage code, what its storage initializer runs (tests/docker/test_cluster_path.py)
    "kserve-storage": ("kserve-storage==0.21.0",),
}
"""Each tool's virtualenv name and its pinned requirements."""

_STAMP = ".tfserve-nb-requirements"
_INSTALL_TIMEOUT = 1200.0
"""Seconds one tool's ``pip install`` may take (checkov brings some 150 packages)."""


def tool_bin(name: str) -> Path:
    """The ``bin`` folder of tool ``name``'s virtualenv."""
    return TOOLS_DIR / name / "bin"


def tool_python(name: str) -> Path:
    """The Python of tool ``name``'s virtualenv."""
    return tool_bin(name) / "python"


def _requirements_text(name: str) -> str:
    return "\n".join(TOOLS[name]) + "\n"


def tool_problem(name: str) -> str | None:
    """Why tool ``name`` cannot be used (not installed, or installed with other requirements),
    with the command that fixes it; ``None`` when it is ready."""
    stamp = TOOLS_DIR / name / _STAMP
    if not tool_python(name).exists() or not stamp.exists():
        return f"{name} is not installed in .venv/tools/{name}: run {INSTALL}"
    if stamp.read_text() != _requirements_text(name):
        return f"{name} in .venv/tools/{name} is not {', '.join(TOOLS[name])}: run {INSTALL}"
    return None


def require_tool(name: str) -> Path:
    """The Python of tool ``name``; when it cannot be used the calling test fails in CI
    (``CI=true``) and is skipped elsewhere, with :func:`tool_problem`'s reason."""
    problem = tool_problem(name)
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return tool_python(name)


def install(name: str) -> None:
    """Create tool ``name``'s virtualenv (with the interpreter running this) and install its
    requirements, unless they are installed already."""
    if tool_problem(name) is None:
        print(f"[tools] {name} is up to date", flush=True)
        return
    venv = TOOLS_DIR / name
    if not tool_python(name).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    print(f"[tools] installing {', '.join(TOOLS[name])} into .venv/tools/{name}", flush=True)
    subprocess.run(
        [
            str(tool_python(name)),
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *TOOLS[name],
        ],
        check=True,
        timeout=_INSTALL_TIMEOUT,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    (venv / _STAMP).write_text(_requirements_text(name))


if __name__ == "__main__":
    for tool in sys.argv[1:] or TOOLS:
        install(tool)
