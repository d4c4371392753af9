"""``--grpc_channel_arguments``: gRPC channel arguments for the gRPC server, as upstream reads them.

After ``parseGrpcChannelArgs`` and ``BuildAndStart`` in upstream's ``model_servers/server.cc``:
the flag is a comma-separated list of ``key=value`` items; a value that ``absl::SimpleAtoi`` reads
as a 32-bit integer (base 10, optional sign, surrounding whitespace allowed) is passed as an int,
any other value as a string, and gRPC ignores keys it does not know. They are applied after the
server's own settings, so they override them (``grpc.max_receive_message_length`` limits requests
though the server otherwise accepts messages of any size, as upstream's ``ServerBuilder`` does).

Upstream splits each item at every ``=`` and uses the first two parts (``a=b=c`` sets ``a`` to
``b``); so do we. An item without ``=`` (or an empty one, as ``a=1,``) makes upstream read past
the end of a vector; here it is a start-up error naming the item.
"""

from __future__ import annotations

import re

ChannelArgument = tuple[str, int | str]

_INT32 = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
_INT32_RANGE = range(-(2**31), 2**31)


class ChannelArgumentsError(ValueError):
    """``--grpc_channel_arguments`` holds an item that is not ``key=value``."""


def _value(text: str) -> int | str:
    """``text`` as ``absl::SimpleAtoi`` into an ``int32`` reads it, else ``text`` itself."""
    if _INT32.fullmatch(text):
        number = int(text)
        if number in _INT32_RANGE:
            return number
    return text


def parse_grpc_channel_arguments(text: str) -> list[ChannelArgument]:
    """The ``(key, value)`` pairs of ``--grpc_channel_arguments=text``, in order (empty text:
    none). Raises :class:`ChannelArgumentsError` naming an item that is not ``key=value``."""
    if not text:
        return []
    arguments: list[ChannelArgument] = []
    for item in text.split(","):
        parts = item.split("=")
        if len(parts) < 2:
            raise ChannelArgumentsError(
                f"--grpc_channel_arguments item {item!r} is not key=value (in {text!r}); "
                "separate items with commas, e.g. grpc.max_connection_age_ms=2000"
            )
        arguments.append((parts[0], _value(parts[1])))
    return arguments


def merged_options(
    defaults: list[ChannelArgument], overrides: list[ChannelArgument]
) -> list[ChannelArgument]:
    """``defaults`` with ``overrides`` applied in order: a key set again takes its last value
    (as ``ServerBuilder``'s ``ChannelArguments::SetInt``/``SetString`` replace), so the gRPC
    core sees each key once."""
    merged = dict(defaults)
    merged.update(overrides)
    return list(merged.items())
