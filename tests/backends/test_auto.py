"""``backend="auto"``: which backend is chosen, and the sentence saying why. (Docker chosen for
real, with an engine and an image present, is in tests/docker/.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tfserve_nb.backends.auto import choose_backend
from tfserve_nb.backends.embedded import EmbeddedBackend
from tfserve_nb.backends.local import LocalBinaryBackend
from tfserve_nb.errors import BackendUnavailableError


@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """DOCKER_HOST pointing at a socket path where no engine listens."""
    host = f"unix://{tmp_path / 'docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", host)
    return host


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory that is the whole PATH."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def test_embedded_when_there_is_no_engine_and_no_binary(no_engine: str, bin_dir: Path) -> None:
    backend, reason = choose_backend()
    assert isinstance(backend, EmbeddedBackend)
    assert reason == (
        f"Using the embedded server (same protocol): no Docker engine answers at {no_engine} "
        "(No such file or directory); no tensorflow_model_server is on PATH."
    )


def test_local_binary_when_one_is_on_path(no_engine: str, bin_dir: Path) -> None:
    binary = bin_dir / "tensorflow_model_server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    backend, reason = choose_backend(grpc_port=9000)
    assert isinstance(backend, LocalBinaryBackend) and backend.grpc_port == 9000
    assert reason.startswith(f"Using the local binary {binary}: no Docker engine answers at")


def test_options_go_to_every_backend_that_takes_them(no_engine: str, bin_dir: Path) -> None:
    backend, _ = choose_backend(image="me/serving:1", binary="my_server", bind_address="127.0.0.2")
    assert isinstance(backend, EmbeddedBackend) and backend.bind_address == "127.0.0.2"
    with pytest.raises(TypeError, match="'colour'"):
        choose_backend(colour="blue")


def test_no_backend_at_all_names_every_reason(
    no_engine: str, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(self: EmbeddedBackend) -> None:
        raise BackendUnavailableError("The embedded backend needs tensorflow")

    monkeypatch.setattr(EmbeddedBackend, "check_available", unavailable)
    with pytest.raises(BackendUnavailableError) as caught:
        choose_backend()
    message = str(caught.value)
    assert message.startswith("No backend can serve here: no Docker engine answers at")
    assert "no tensorflow_model_server is on PATH" in message and "needs tensorflow" in message


def test_serve_says_which_backend_it_picked_and_why(
    no_engine: str, bin_dir: Path, half_plus_two_base: Path, capsys: pytest.CaptureFixture
) -> None:
    import tfserve_nb as tfs

    with tfs.serve(half_plus_two_base) as server:
        said = capsys.readouterr().out
        assert server.backend == "embedded"
        assert said == f"tfserve-nb: {server.reason}\n"
        assert server.reason.startswith("Using the embedded server (same protocol)")
        assert "no tensorflow_model_server is on PATH" in server._repr_html_()
