"""Model configs: what to serve, as TF Serving's ``ModelServerConfig`` says it.

:class:`ModelConfig` is the Python form of one ``model_config_list.config`` entry. It converts to
and from the protobuf (for ``HandleReloadConfigRequest``) and the text format (for
``--model_config_file``), and validates the way ``tensorflow_model_server`` does, with its texts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf import text_format
from google.protobuf.message import Message
from tensorflow_serving.config import model_server_config_pb2

from .core.version_policy import All, Latest, Specific, VersionPolicy
from .errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    """One served model: a name, the directory holding its numeric version folders, a version
    policy and version labels (label → version)."""

    name: str
    base_path: str
    version_policy: VersionPolicy = field(default_factory=Latest)
    labels: Mapping[str, int] = field(default_factory=dict)
    platform: str = "tensorflow"

    def to_proto(self) -> Message:
        """This entry as a ``tensorflow.serving.ModelConfig`` message."""
        proto = model_server_config_pb2.ModelConfig(
            name=self.name, base_path=self.base_path, model_platform=self.platform
        )
        policy = proto.model_version_policy
        if isinstance(self.version_policy, Latest):
            policy.latest.num_versions = self.version_policy.num_versions
        elif isinstance(self.version_policy, All):
            policy.all.SetInParent()
        else:
            policy.specific.versions.extend(self.version_policy.versions)
        for label, version in self.labels.items():
            proto.version_labels[label] = version
        return proto

    @classmethod
    def from_proto(cls, proto: Message) -> ModelConfig:
        """Read a ``tensorflow.serving.ModelConfig`` message (absent policy = latest 1; an
        absent platform stays empty, which the server refuses as upstream does)."""
        which = proto.model_version_policy.WhichOneof("policy_choice")
        policy: VersionPolicy
        if which == "all":
            policy = All()
        elif which == "specific":
            policy = Specific(tuple(proto.model_version_policy.specific.versions))
        elif which == "latest":
            policy = Latest(proto.model_version_policy.latest.num_versions or 1)
        else:
            policy = Latest()
        return cls(
            name=proto.name,
            base_path=proto.base_path,
            version_policy=policy,
            labels=dict(proto.version_labels),
            platform=proto.model_platform,
        )


def validate(configs: Iterable[ModelConfig]) -> list[ModelConfig]:
    """Check a config list as ``ServerCore``'s ``ValidateModelConfigList`` does (unique names
    first, then absolute base paths), plus two checks of ours (an empty name, a ``specific``
    policy listing no versions); raise :class:`ConfigError`. Platforms are the server's to
    check."""
    checked = list(configs)
    seen: set[str] = set()
    for config in checked:
        if config.name in seen:
            raise ConfigError(f"Illegal to list model {config.name} multiple times in config list")
        seen.add(config.name)
    for config in checked:
        if not (os.path.isabs(config.base_path) or "://" in config.base_path):
            raise ConfigError(
                f"Expected model {config.name} to have an absolute path or URI; "
                f"got base_path()={config.base_path}"
            )
    for config in checked:
        if not config.name:
            raise ConfigError("A model config has an empty name")
        if isinstance(config.version_policy, Specific) and not config.version_policy.versions:
            raise ConfigError(f"Model {config.name}: a specific version policy lists no versions")
    return checked


def to_server_config(configs: Iterable[ModelConfig]) -> Message:
    """A ``ModelServerConfig`` holding ``model_config_list`` with these entries."""
    server_config = model_server_config_pb2.ModelServerConfig()
    server_config.model_config_list.config.extend(c.to_proto() for c in configs)
    return server_config


def from_server_config(server_config: Message) -> list[ModelConfig]:
    """Entries of a ``ModelServerConfig``; only ``model_config_list`` is supported."""
    if server_config.WhichOneof("config") != "model_config_list":
        raise ConfigError("ServerCore only supports model_config_list")
    return validate(ModelConfig.from_proto(c) for c in server_config.model_config_list.config)


def render_config_file(configs: Iterable[ModelConfig]) -> str:
    """The text-format config file ``--model_config_file`` reads."""
    return text_format.MessageToString(to_server_config(configs))


def text_format_error(message_type: str, exc: text_format.ParseError) -> str:
    """The line protobuf's C++ text parser logs for ``exc`` (its ``ParserErrorCollector``):
    ``Error parsing text-format <type>: <line>:<column>: <complaint>``."""
    line, column = exc.GetLine(), exc.GetColumn()
    complaint = str(exc)
    if line is None:
        return f"Error parsing text-format {message_type}: {complaint}"
    position = f"{line}:{column}" if column else f"{line}"
    complaint = complaint.removeprefix(f"{position} : ")
    return f"Error parsing text-format {message_type}: {line}:{column or 0}: {complaint}"


def parse_config_file(text: str, source: str = "<config>") -> list[ModelConfig]:
    """Parse a ``--model_config_file`` text, as upstream's ``ParseProtoTextFile``: a text that
    does not parse logs protobuf's complaint (:func:`text_format_error`, at ERROR, so on the
    server's stderr) and raises :class:`ConfigError` ``Invalid protobuf file: '<source>'``."""
    server_config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, server_config)
    except text_format.ParseError as exc:
        log.error("%s", text_format_error(server_config.DESCRIPTOR.full_name, exc))
        raise ConfigError(f"Invalid protobuf file: '{source}'") from exc
    return from_server_config(server_config)
