"""``tfserve-nb manifests``: the same files as ``deployment()`` given the same settings, and its
refusals on standard error with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import rollout_configs
from tfserve_nb.cli import main
from tfserve_nb.config import render_config_file
from tfserve_nb.deploy import deployment


def test_the_command_writes_what_the_function_writes(tmp_path: Path) -> None:
    configs = rollout_configs(tmp_path / "models")
    config_file = tmp_path / "models.config"
    config_file.write_text(render_config_file(configs))  # the notebook's state, as a file
    expected = deployment(
        configs,
        out_dir=tmp_path / "function",
        model_uri="s3://models/digits",
        s3_endpoint="https://s3.example",
        storage_secret="creds",
        namespace="ml",
        replicas=4,
        split={"stable": 80, "canary": 20},
        hpa=(4, 8, 60),
        resources={"requests": {"cpu": "250m"}, "limits": {"memory": "2Gi"}},
        poll_seconds=30,
    )
    command = [
        *(sys.executable, "-m", "tfserve_nb.cli", "manifests", str(config_file)),
        *("--out", str(tmp_path / "command")),
        *("--model-uri", "s3://models/digits", "--s3-endpoint", "https://s3.example"),
        *("--storage-secret", "creds", "--namespace", "ml", "--replicas", "4"),
        *("--split", "stable=80,canary=20", "--hpa", "4,8,60"),
        *("--requests", "cpu=250m", "--limits", "memory=2Gi", "--poll-seconds", "30"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    written = {
        str(path.relative_to(tmp_path / "command")): path.read_text()
        for path in (tmp_path / "command").rglob("*")
        if path.is_file() and path.name != ".tfserve-nb-manifests"
    }
    assert written == dict(expected.files)
    assert done.stdout.splitlines()[0] == f"wrote {len(written)} files into {tmp_path / 'command'}:"
    assert "  kserve/digits-canary.yaml" in done.stdout.splitlines()


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--model-uri", "http://host/digits"], "use s3://bucket/path or gs://bucket/path"),
        (["--model-uri", "a=s3://b/a", "--model-uri", "s3://b/c"], "give each as NAME=URI"),
        (["--split", "stable=ninety"], "split weight 'ninety' is not a number"),
        (["--split", "stable=-1"], "must be >= 0"),
        (["--hpa", "2,5"], "expected MIN,MAX,CPU_PERCENT"),
    ],
)
def test_refusals_exit_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], complaint: str
) -> None:
    base = rollout_configs(tmp_path)[0].base_path
    assert exit_status(["manifests", base, "--out", str(tmp_path / "out"), *options]) == 2
    assert complaint in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def exit_status(argv: list[str]) -> int | str | None:
    """``tfserve-nb``'s exit status for ``argv`` (argparse's refusals exit from inside)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def test_the_command_is_listed_and_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "manifests" in capsys.readouterr().out
    assert exit_status(["manifests", "--help"]) == 0
    assert "--model-uri" in capsys.readouterr().out
