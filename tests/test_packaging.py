"""Project-level promises: the curated API, a light import, environment.yml == pip install,
and the README's two commands being what CI runs."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_public_api_is_curated_and_resolves():
    import tfserve_nb

    assert sorted(dir(tfserve_nb)) == sorted(tfserve_nb.__all__)
    assert len(set(tfserve_nb.__all__)) == len(tfserve_nb.__all__)
    for name in tfserve_nb.__all__:
        assert getattr(tfserve_nb, name) is not None, name
    with pytest.raises(AttributeError):
        tfserve_nb.PredictAnswer  # noqa: B018 (server-internal)


def test_every_exception_is_exported():
    import tfserve_nb
    from tfserve_nb import errors

    raised = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.TfServeNbError)
    }
    assert raised <= set(tfserve_nb.__all__)
    assert all(getattr(tfserve_nb, name) is getattr(errors, name) for name in raised)


def _package_classes(hint: Any) -> set[type]:
    """The tfserve_nb classes a type hint names (through unions, containers and aliases)."""
    found = set()
    if isinstance(hint, type) and hint.__module__.startswith("tfserve_nb"):
        found.add(hint)
    for arg in typing.get_args(hint):
        found |= _package_classes(arg)
    return found


def test_every_type_the_api_takes_or_returns_is_exported():
    """What the exported functions and the public methods of the exported classes take and
    return (``ModelServer.status() -> list[VersionStatus]``, ...) is exported itself."""
    import tfserve_nb

    exported = {getattr(tfserve_nb, name) for name in tfserve_nb.__all__}
    callables = []
    for value in exported:
        if isinstance(value, type):
            callables += [
                getattr(member, "fget", member)
                for name, member in vars(value).items()
                if callable(getattr(member, "fget", member))
                and (not name.startswith("_") or name == "__init__")
            ]
        elif inspect.isfunction(value):
            callables.append(value)
    missing = {}
    for function in callables:
        for hint in typing.get_type_hints(function).values():
            for cls in _package_classes(hint) - exported:
                missing[cls.__qualname__] = function.__qualname__
    assert not missing, f"not exported from tfserve_nb: {missing}"


def test_import_is_light():
    code = (
        "import sys, tfserve_nb; "
        "print(sorted(m for m in ('tensorflow', 'grpc', 'docker', 'ipywidgets', 'keras') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _names(requirements):
    return {re.split(r"[<>=!\[ ]", r, maxsplit=1)[0].lower(): r for r in requirements}


def test_environment_yml_matches_the_pip_install():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_install = project["dependencies"] + project["optional-dependencies"]["examples"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "-e ." in pip_section
    requirements = [r for r in pip_section if r != "-e ."]
    assert {k: v.replace(" ", "") for k, v in _names(requirements).items()} == {
        k: v.split("#")[0].replace(" ", "") for k, v in _names(pip_install).items()
    }
    python = next(p for p in conda_pins if p.startswith("python"))
    assert python.split("=")[1] >= project["requires-python"].lstrip(">=")


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./scripts/quickstart", "./scripts/test"]
    assert readme.index("```bash") < readme.index("\n## ")
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == ["./scripts/test"]


def test_lint_format_and_types_are_clean():
    """ruff (lint and format) and mypy, as configured in pyproject.toml."""
    bin_dir = Path(sys.executable).parent
    for command in (
        [bin_dir / "ruff", "check", "."],
        [bin_dir / "ruff", "format", "--check", "."],
        [bin_dir / "mypy"],
    ):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}{done.stderr}"
