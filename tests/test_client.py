"""ServingClient against the embedded server: requests built from the signature of the version
that answers (versions whose input names differ), DataFrame / dict-of-columns input, errors that
are the same over gRPC and REST, and the same call shapes as the ModelServer handle."""

from __future__ import annotations

import collections
import functools
import inspect
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tfserve_nb as tfs
from tests.helpers.waiting import wait_until
from tfserve_nb.client import ServingClient
from tfserve_nb.errors import DeadlineExceededError, InvalidArgumentError, ServingError
from tfserve_nb.handle import ModelServer
from tfserve_nb.protocol.rest_paths import model_path

X = [[1.0, 2.0, 3.0]]
"""A ``sequential`` example: version ``v`` answers ``6 + v``."""


def count_rpcs(client: ServingClient) -> collections.Counter[str]:
    """Counts of the ``Predict`` and ``GetModelMetadata`` calls ``client`` makes from now on."""
    counts: collections.Counter[str] = collections.Counter()
    stub = client._predict_stub

    def counting(name: str) -> Callable[..., Any]:
        method = getattr(stub, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return method(*args, **kwargs)

        return call

    for name in ("Predict", "GetModelMetadata"):
        setattr(stub, name, counting(name))
    return counts


def available(server: Any) -> list[int]:
    return sorted(s.version for s in server.status() if s.state == "AVAILABLE")


def test_predict_follows_the_automatic_switch_to_a_version_with_other_input_names(
    tmp_path, sequential_models
):
    base = sequential_models.make_base_path(tmp_path)
    with tfs.serve(
        base, backend="embedded", extra_args=["--file_system_poll_wait_seconds=1"]
    ) as server:
        rest_only = ServingClient(server.grpc_address, server.rest_url, model_name="sequential")
        assert server.predict_detailed(X).version == 1
        assert rest_only.predict_rest(X).tolist() == [[7.0]]
        v1_inputs = list(server.metadata()["serving_default"].inputs)

        exported = tfs.export_model(sequential_models.models[2], base)  # the next number: 2
        assert exported.version == 2
        assert list(exported.signature.inputs) != v1_inputs, "the test needs other input names"
        wait_until(
            lambda: available(server) == [2], "the server to move to version 2 alone", interval=0.05
        )

        calls = count_rpcs(server.client)
        answer = server.predict_detailed(X)  # built from v1's names, refused, rebuilt
        assert (answer.version, answer.value().tolist()) == (2, [[8.0]])
        assert calls == {"Predict": 2, "GetModelMetadata": 1}
        for _ in range(5):  # steady state: no extra round trip
            assert server.predict(X).tolist() == [[8.0]]
        assert calls == {"Predict": 7, "GetModelMetadata": 1}
        assert rest_only.predict_rest(X).tolist() == [[8.0]]  # REST: refused (400), rebuilt
        assert rest_only.predict_rest(X, columnar=True).tolist() == [[8.0]]

        calls.clear()  # a request refused for another reason: one metadata call, no retry
        with pytest.raises(ServingError) as exc:
            server.predict([[1.0, 2.0]])
        assert exc.value.code == "INVALID_ARGUMENT"
        assert calls == {"Predict": 1, "GetModelMetadata": 1}
        rest_only.close()


def test_each_version_label_and_split_target_is_built_for_its_own_version(
    tmp_path, sequential_models
):
    base = sequential_models.make_base_path(tmp_path, versions=(1, 2))
    with tfs.serve(
        base, backend="embedded", version_policy=[1, 2], labels={"stable": 1, "canary": 2}
    ) as server:
        other = ServingClient(server.grpc_address, model_name="sequential")
        names = [list(other.signature(version=v).inputs) for v in (1, 2)]
        assert names[0] != names[1], "the test needs versions with other input names"
        other.close()
        calls = count_rpcs(server.client)
        for version in (2, 1, 2, 1):
            assert server.predict_detailed(X, version=version).value().tolist() == [[6 + version]]
        for label, version in (("canary", 2), ("stable", 1)):
            assert server.predict_detailed(X, label=label).version == version
        assert server.predict_detailed(X).version == 2  # latest
        split = tfs.TrafficSplit({"stable": 1, "canary": 1, 1: 1, 2: 1})
        answers = [server.predict_detailed(X, split=split) for _ in range(8)]
        assert collections.Counter(a.version for a in answers) == {1: 4, 2: 4}
        assert all(a.value().tolist() == [[6 + a.version]] for a in answers)
        # one metadata call per target, the first time it is asked for; none after
        assert calls["GetModelMetadata"] == 5 and calls["Predict"] == 15
        for version in (1, 2):
            assert server.client.predict_rest(X, version=version).tolist() == [[6 + version]]
            label = {1: "stable", 2: "canary"}[version]
            rest = server.client.predict_rest(X, label=label, columnar=True)
            assert rest.tolist() == [[6 + version]]
        assert calls["GetModelMetadata"] == 5

        server.set_labels({"stable": 2, "canary": 1})  # moved: what was known is forgotten
        assert server.predict_detailed(X, label="stable").value().tolist() == [[8.0]]
        assert server.predict_detailed(X, label="canary").value().tolist() == [[7.0]]


def test_predict_takes_a_data_frame_and_a_dict_of_columns(tmp_path, tabular_models):
    frame = pd.DataFrame(
        {
            "vector": [[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]],
            "column": [1, 2],
            "flat": [0.5, 3.0],
        }
    )
    expected = [[110.5], [323.0]]  # flat + 10 * column + 100 * sum(vector)
    with tfs.serve(tabular_models.make_base_path(tmp_path), backend="embedded") as server:
        np.testing.assert_array_equal(server.predict(frame), expected)
        columns = {name: frame[name].tolist() for name in frame.columns}
        np.testing.assert_array_equal(server.predict(columns), expected)
        for columnar in (False, True):
            rest = server.client.predict_rest(frame, columnar=columnar)
            np.testing.assert_array_equal(rest, expected)
        with pytest.raises(InvalidArgumentError, match=r"the DataFrame columns have missing"):
            server.predict(frame.drop(columns="flat"))
        with pytest.raises(InvalidArgumentError, match=r"extra \['flat2'\]"):
            server.predict({**columns, "flat2": [1.0, 2.0]})


def test_inputs_named_like_data_frame_columns_predict_over_grpc_and_rest(
    tmp_path, column_names_models
):
    """Waits on the servable's feeding by signature alias: before it, the server answered
    ``INTERNAL: KeyError: 'petal_width'`` (tf.function's sanitized argument name)."""
    from tests.helpers import models

    frame = pd.DataFrame({"2nd": [1.0, 2.0], "petal-width": [3.0, 4.0], "f.x": [5.0, 6.0]})
    expected = [[153.0], [264.0]]  # petal-width + 10 * f.x + 100 * 2nd
    columns = {name: frame[name].to_numpy() for name in models.COLUMN_NAMES}
    batched = {name: values.reshape(-1, 1) for name, values in columns.items()}
    with tfs.serve(column_names_models.make_base_path(tmp_path), backend="embedded") as server:
        client = ServingClient(server.grpc_address, server.rest_url, model_name="column_names")
        assert sorted(client.signature().inputs) == sorted(models.COLUMN_NAMES)
        for x in (frame, columns, batched):
            np.testing.assert_array_equal(server.predict(x), expected)
            np.testing.assert_array_equal(client.predict(x), expected)
            for columnar in (False, True):
                np.testing.assert_array_equal(client.predict_rest(x, columnar=columnar), expected)
        client.close()


def test_a_refusal_has_the_same_code_over_grpc_and_rest(half_plus_two_base):
    with tfs.serve(half_plus_two_base, backend="embedded") as server:
        client = server.client
        with pytest.raises(ServingError) as over_grpc:
            client.status(model_name="absent")
        with pytest.raises(ServingError) as over_rest:
            client.rest("GET", model_path("absent"))
        assert over_grpc.value.code == over_rest.value.code == "NOT_FOUND"
        assert (over_grpc.value.http_status, over_rest.value.http_status) == (None, 404)
        with pytest.raises(ServingError) as over_rest:
            client.rest("POST", model_path(server.model_name) + ":predict", {"x": 1})
        assert (over_rest.value.code, over_rest.value.http_status) == ("INVALID_ARGUMENT", 400)
        client.close()
        with pytest.raises(ServingError) as closed:
            client.status()
        assert closed.value.code == "CANCELLED"


def test_no_server_is_unavailable_and_a_silent_one_a_deadline():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        for where, expected in ((refused, ServingError), (port, DeadlineExceededError)):
            client = ServingClient(
                f"127.0.0.1:{where}", f"http://127.0.0.1:{where}", model_name="m", timeout=0.5
            )
            for call in (client.status, functools.partial(client.rest, "GET", "/v1/models/m")):
                with pytest.raises(ServingError) as exc:
                    call()
                assert type(exc.value) is expected, exc.value
                code = "UNAVAILABLE" if expected is ServingError else "DEADLINE_EXCEEDED"
                assert (exc.value.code, exc.value.http_status) == (code, None), exc.value
            client.close()


def test_arguments_are_refused_before_anything_is_sent():
    client = ServingClient("127.0.0.1:1")
    with pytest.raises(InvalidArgumentError, match="no default model_name"):
        client.status()
    with pytest.raises(InvalidArgumentError, match="not both"):
        client.predict(X, model_name="m", version=1, label="stable")
    with pytest.raises(InvalidArgumentError, match="no rest_url"):
        client.rest("GET", "/v1/models/m")
    client.close()


@pytest.mark.parametrize(
    "name",
    ["predict", "predict_detailed", "status", "metadata", "wait_until_available", "reload_config"],
)
def test_the_client_and_the_handle_share_names_and_signatures(name):
    assert inspect.signature(getattr(ServingClient, name)) == inspect.signature(
        getattr(ModelServer, name)
    )
