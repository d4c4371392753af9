"""model_server.grpc.channel_arguments: ``--grpc_channel_arguments`` read as upstream's
``parseGrpcChannelArgs`` and ``absl::SimpleAtoi`` read it, and applied over the server's own
options (the effect on a real server: ``test_conformance_grpc_flags.py``)."""

from __future__ import annotations

import pytest

from tfserve_nb.model_server.grpc.channel_arguments import (
    ChannelArgumentsError,
    merged_options,
    parse_grpc_channel_arguments,
)


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        ("", []),
        (
            "grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
            [("grpc.max_connection_age_ms", 2000), ("grpc.lb_policy_name", "grpclb")],
        ),
        ("a=-5,b=+7,c= 12 ", [("a", -5), ("b", 7), ("c", 12)]),  # SimpleAtoi: sign, spaces
        ("a=2147483647,b=2147483648", [("a", 2**31 - 1), ("b", "2147483648")]),  # int32 only
        ("a=-2147483648,b=-2147483649", [("a", -(2**31)), ("b", "-2147483649")]),
        ("a=1_000,b=0x10,c=1.5,d=", [("a", "1_000"), ("b", "0x10"), ("c", "1.5"), ("d", "")]),
        ("a=b=c", [("a", "b")]),  # split at every '=', the first two parts used
    ],
)
def test_items_are_read_as_upstream_reads_them(text, arguments):
    assert parse_grpc_channel_arguments(text) == arguments


@pytest.mark.parametrize("text", ["grpc.max_connection_age_ms", "a=1,", "a=1,,b=2"])
def test_an_item_without_a_value_is_an_error_naming_it(text):
    with pytest.raises(ChannelArgumentsError, match="is not key=value"):
        parse_grpc_channel_arguments(text)


def test_arguments_override_the_servers_options_and_the_last_wins():
    defaults = [("grpc.max_receive_message_length", 2**31 - 1), ("grpc.so_reuseport", 0)]
    overrides = parse_grpc_channel_arguments(
        "grpc.max_receive_message_length=1024,grpc.max_receive_message_length=4096,x=y"
    )
    assert merged_options(defaults, overrides) == [
        ("grpc.max_receive_message_length", 4096),
        ("grpc.so_reuseport", 0),
        ("x", "y"),
    ]
