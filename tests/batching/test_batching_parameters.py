"""``--batching_parameters_file``: parsing, upstream defaults, upstream validation texts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.protobuf import text_format

from tfserve_nb.batching.batching_parameters import (
    BatchingParameters,
    batching_parameters_for_server,
    parse_batching_parameters,
    read_batching_parameters_file,
)
from tfserve_nb.core.status import Code, ServingStatusError

CONTRACT_EXAMPLE = """
max_batch_size { value: 64 }  batch_timeout_micros { value: 1000 }
num_batch_threads { value: 2 }  max_enqueued_batches { value: 100 }
allowed_batch_sizes: 16  allowed_batch_sizes: 64   # last must equal max_batch_size
pad_variable_length_inputs: true
"""


def _error(text: str) -> ServingStatusError:
    with pytest.raises(ServingStatusError) as info:
        parse_batching_parameters(text)
    return info.value


def test_empty_file_gives_upstream_defaults() -> None:
    params = parse_batching_parameters("")
    assert params == BatchingParameters()
    assert params.max_batch_size == 1000
    assert params.batch_timeout_micros == 0
    assert params.max_enqueued_batches == 10
    assert params.num_batch_threads == len(os.sched_getaffinity(0))
    assert params.thread_pool_name == "batch_threads"
    assert params.enable_large_batch_splitting is False
    assert params.execution_batch_size_limit == 1000
    assert params.allowed_batch_sizes == ()
    assert params.pad_variable_length_inputs is False


def test_contract_example() -> None:
    params = parse_batching_parameters(CONTRACT_EXAMPLE)
    assert params == BatchingParameters(
        max_batch_size=64,
        batch_timeout_micros=1000,
        num_batch_threads=2,
        max_enqueued_batches=100,
        allowed_batch_sizes=(16, 64),
        pad_variable_length_inputs=True,
    )


def test_every_field() -> None:
    params = parse_batching_parameters(
        """
        max_batch_size { value: 128 }
        batch_timeout_micros { value: 5 }
        max_enqueued_batches { value: 3 }
        num_batch_threads { value: 4 }
        thread_pool_name { value: "pool" }
        enable_large_batch_splitting { value: true }
        max_execution_batch_size { value: 32 }
        allowed_batch_sizes: [8, 32, 128]
        pad_variable_length_inputs: false
        """
    )
    assert params == BatchingParameters(
        max_batch_size=128,
        batch_timeout_micros=5,
        max_enqueued_batches=3,
        num_batch_threads=4,
        thread_pool_name="pool",
        enable_large_batch_splitting=True,
        max_execution_batch_size=32,
        allowed_batch_sizes=(8, 32, 128),
    )
    assert params.execution_batch_size_limit == 32


@pytest.mark.parametrize(
    "text",
    [
        "max_batch_size: 64",  # a wrapper type needs { value: ... }
        "max_batch_size { value: 64 ",
        "batch_size { value: 64 }",
        "max_batch_size { value: 1.5 }",
    ],
)
def test_malformed_text_is_invalid_argument_with_upstream_text(text: str) -> None:
    with pytest.raises(ServingStatusError) as info:
        parse_batching_parameters(text, source="/cfg/batching.config")
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message == "Invalid protobuf file: '/cfg/batching.config'"
    assert isinstance(info.value.__cause__, text_format.ParseError)


def test_last_allowed_batch_size_must_match_max_batch_size() -> None:
    error = _error("max_batch_size { value: 64 } allowed_batch_sizes: 16 allowed_batch_sizes: 32")
    assert error.code is Code.INVALID_ARGUMENT
    assert error.message == (
        "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 32; "
        "expected 64"
    )
    # max_batch_size left out: compared with upstream's default.
    assert _error("allowed_batch_sizes: 64").message.endswith("last entry was 64; expected 1000")


def test_allowed_batch_sizes_need_not_increase_as_in_the_model_server() -> None:
    params = parse_batching_parameters("max_batch_size { value: 8 } allowed_batch_sizes: [4, 2, 8]")
    assert params.allowed_batch_sizes == (4, 2, 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("num_batch_threads { value: 0 }", "num_batch_threads must be positive; was 0"),
        ("max_batch_size { value: 0 }", "input_batch_size_limit must be positive; was 0"),
        ("max_batch_size { value: -3 }", "input_batch_size_limit must be positive; was -3"),
        (
            "batch_timeout_micros { value: -1 }",
            "batch_timeout_micros must be non-negative; was -1",
        ),
        ("max_enqueued_batches { value: -2 }", "max_enqueued_batches must be positive; was -2"),
        (
            "enable_large_batch_splitting { value: true } max_enqueued_batches { value: 0 }",
            "max_enqueued_batches must be positive; was 0",
        ),
        (
            "enable_large_batch_splitting { value: true } max_batch_size { value: 16 } "
            "max_execution_batch_size { value: 32 }",
            "When enable_large_batch_splitting is true, input_batch_size_limit must be greater "
            "than or equal to max_execution_batch_size.11632",
        ),
    ],
)
def test_invalid_values(text: str, message: str) -> None:
    error = _error(text)
    assert error.code is Code.INVALID_ARGUMENT
    assert error.message == message


def test_zero_max_enqueued_batches_becomes_one_without_splitting() -> None:
    assert parse_batching_parameters("max_enqueued_batches { value: 0 }").max_enqueued_batches == 1


def test_max_execution_batch_size_applies_only_with_splitting() -> None:
    without = parse_batching_parameters(
        "max_batch_size { value: 64 } max_execution_batch_size { value: 16 }"
    )
    assert without.execution_batch_size_limit == 64
    defaulted = parse_batching_parameters(
        "max_batch_size { value: 64 } enable_large_batch_splitting { value: true }"
    )
    assert defaulted.execution_batch_size_limit == 64


def test_read_file(tmp_path: Path) -> None:
    path = tmp_path / "batching.config"
    path.write_text(CONTRACT_EXAMPLE)
    assert read_batching_parameters_file(path).max_batch_size == 64


def test_read_missing_file_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.config"
    with pytest.raises(ServingStatusError) as info:
        read_batching_parameters_file(path)
    assert info.value.code is Code.NOT_FOUND
    assert str(path) in info.value.message


def test_server_flags(tmp_path: Path) -> None:
    assert batching_parameters_for_server(False, None) is None
    assert batching_parameters_for_server(False, "") is None
    defaults = batching_parameters_for_server(True, None)
    assert defaults == BatchingParameters(thread_pool_name="model_server_batch_threads")
    path = tmp_path / "batching.config"
    path.write_text(CONTRACT_EXAMPLE)
    from_file = batching_parameters_for_server(True, str(path))
    assert from_file is not None
    assert from_file.thread_pool_name == "batch_threads"
    assert from_file.max_batch_size == 64
    with pytest.raises(ServingStatusError) as info:
        batching_parameters_for_server(False, str(path))
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message == (
        "server_options.batching_parameters_file is set without setting "
        "server_options.enable_batching to true."
    )
