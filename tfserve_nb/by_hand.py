"""Every config change and status read, as the protocol a user could send by hand.

A switch (follow latest, pin, move a label, reload) is one ``HandleReloadConfigRequest``;
:func:`config_reload` turns what was sent into a :class:`ConfigReload`: the ``ModelServerConfig``
text proto on the wire, Python that sends the same request with the ``tensorflow-serving-api``
stubs, and the ``models.config`` file with the ``docker run ... tensorflow/serving`` line that
would bring a real server up in the resulting state. :func:`status_call` does the same for a
status read: ``curl .../v1/models/NAME`` and the JSON it answered.

The snippets run as shown: shell words are quoted with :func:`shlex.quote`, URL path parts with
:func:`~tfserve_nb.protocol.rest_paths.model_path`, Python strings with ``repr``. Pure functions of
their arguments, so thread-safe.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import shlex
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .config import ModelConfig, render_config_file
from .protocol.rest_paths import model_path

__all__ = [
    "CONTAINER_MODELS",
    "ConfigReload",
    "StatusCall",
    "config_reload",
    "container_path",
    "model_folder",
    "status_call",
]

CONTAINER_MODELS = "/models"
"""The ``tensorflow/serving`` image's ``MODEL_BASE_PATH``: local model folders are mounted at
``/models/<name>`` and the config file at ``/models/models.config``."""

IMAGE = "tensorflow/serving"
POLL_SECONDS = 60
"""``--model_config_file_poll_wait_seconds`` in the ``docker run`` line: edits to the mounted
``models.config`` are picked up within a minute, as reloads are here."""


@dataclass(frozen=True)
class ConfigReload:
    """One ``HandleReloadConfigRequest`` and how to send or reproduce it by hand.

    ``request`` is the ``ModelServerConfig`` text proto that was sent (base paths as the server
    sees them); ``python`` sends it over gRPC to ``grpc_address``; ``models_config`` is the
    ``--model_config_file`` for a ``tensorflow/serving`` container in the resulting state (local
    base paths become ``/models/<name>``), and ``docker_run`` starts that container with the
    model folders and the file mounted (write ``models_config`` to ``./models.config`` first),
    with ``--allow_version_labels_for_unavailable_models`` when the config has labels (upstream
    checks labels before the first load, so a labelled config would not start without it).
    """

    request: str
    python: str
    models_config: str
    docker_run: str

    def blocks(self) -> list[tuple[str, str]]:
        """(title, text) of each snippet, in the order a reader needs them."""
        return [
            ("HandleReloadConfigRequest: the ModelServerConfig sent (text proto)", self.request),
            ("the same request from Python (gRPC)", self.python),
            ("models.config for the resulting state", self.models_config),
            ("a tensorflow/serving container that reads it", self.docker_run),
        ]

    def __str__(self) -> str:
        return "\n\n".join(f"# {title}\n{text}" for title, text in self.blocks())

    def __repr__(self) -> str:
        return "<ConfigReload: print() it for the request, its Python, models.config, docker run>"


@dataclass(frozen=True)
class StatusCall:
    """A status read by hand: ``curl`` (``GET /v1/models/NAME``) and the JSON it answered."""

    curl: str
    json: str

    def blocks(self) -> list[tuple[str, str]]:
        """(title, text) of the command and of its answer."""
        return [("status by hand (REST)", self.curl), ("its answer", self.json)]

    def __str__(self) -> str:
        return f"{self.curl}\n{self.json}"


def config_reload(
    sent: Sequence[ModelConfig], grpc_address: str, served: Sequence[ModelConfig] | None = None
) -> ConfigReload:
    """The :class:`ConfigReload` of sending ``sent`` (the server's view of the configs) to
    ``grpc_address``; ``served`` are the same configs as the user wrote them (host base paths;
    default ``sent``), from which the container's ``models.config`` is made."""
    request = render_config_file(sent)
    in_container = [_in_container(config) for config in served or sent]
    return ConfigReload(
        request=request,
        python=_reload_python(request, grpc_address),
        models_config=render_config_file(in_container),
        docker_run=_docker_run(served or sent),
    )


def status_call(rest_url: str, model_name: str, answer: Any) -> StatusCall:
    """The :class:`StatusCall` of ``GET {rest_url}/v1/models/{model_name}`` that answered
    ``answer`` (decoded JSON), shown indented as TF Serving's REST API prints it."""
    url = rest_url.rstrip("/") + model_path(model_name)
    return StatusCall(curl=f"curl -s {shlex.quote(url)}", json=json.dumps(answer, indent=2))


def _reload_python(request: str, grpc_address: str) -> str:
    return "\n".join(
        [
            "import grpc",
            "from google.protobuf import text_format",
            "from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc",
            "",
            f"CONFIG = {_python_text(request)}",
            "",
            "request = model_management_pb2.ReloadConfigRequest()",
            "text_format.Parse(CONFIG, request.config)",
            f"channel = grpc.insecure_channel({grpc_address!r})",
            "stub = model_service_pb2_grpc.ModelServiceStub(channel)",
            "# raises grpc.RpcError with the server's code and text if it refuses the config",
            "stub.HandleReloadConfigRequest(request, timeout=30.0)",
            'print("reloaded")',
        ]
    )


def _python_text(text: str) -> str:
    """``text`` as a Python literal that reads well: a raw triple-quoted block when it can be."""
    if '"""' in text or text.endswith("\\"):
        return repr(text)
    return 'r"""\n' + text + '"""'


def _is_local(base_path: str) -> bool:
    return "://" not in base_path and os.path.isabs(base_path)


def _in_container(config: ModelConfig) -> ModelConfig:
    if not _is_local(config.base_path):
        return config
    return dataclasses.replace(config, base_path=container_path(config.name))


def model_folder(model_name: str) -> str:
    """A model's folder name (under ``/models``, in a volume): its name, made safe as one path
    component."""
    return urllib.parse.quote(model_name, safe="")


def container_path(model_name: str) -> str:
    """Where a ``tensorflow/serving`` container finds model ``model_name``: ``/models/<name>``."""
    return posixpath.join(CONTAINER_MODELS, model_folder(model_name))


def _docker_run(configs: Sequence[ModelConfig]) -> str:
    mounts = [
        "-v " + shlex.quote(f"{config.base_path}:{container_path(config.name)}:ro")
        for config in configs
        if _is_local(config.base_path)
    ]
    config_file = f"{CONTAINER_MODELS}/models.config"
    words = [
        "docker run --rm -p 8500:8500 -p 8501:8501",
        *mounts,
        f'-v "$PWD/models.config:{config_file}:ro"',
        IMAGE,
        f"--model_config_file={config_file}",
        f"--model_config_file_poll_wait_seconds={POLL_SECONDS}",
    ]
    if any(config.labels for config in configs):
        # ServerCore checks labels before it loads the first config's versions: without this
        # flag a labelled config fails the start with FAILED_PRECONDITION ("Request to assign
        # label to version N ..., which is not currently available for inference").
        words.append("--allow_version_labels_for_unavailable_models=true")
    return " \\\n  ".join(words)
