"""Project-level promises: the curated API, a light import, environment.yml == pip install,
and the README's two commands being what CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_public_api_is_curated_and_resolves():
    import tfserve_nb

    assert sorted(dir(tfserve_nb)) == sorted(tfserve_nb.__all__)
    for name in tfserve_nb.__all__:
        assert getattr(tfserve_nb, name) is not None, name


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


def test_core_and_sources_import_no_framework():
    """``core/`` and ``sources/`` are framework-free: no TensorFlow, gRPC, Docker or widgets."""
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for folder in ("core", "sources")
        for path in (ROOT / "tfserve_nb" / folder).glob("*.py")
    )
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in ('tensorflow', 'grpc', 'docker', 'ipywidgets', 'keras') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
