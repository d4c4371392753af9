"""The generators in ``upstream_models`` reproduce upstream's test binaries: the SignatureDefs
``saved_model_cli show --all`` prints for upstream's ``saved_model.pb`` files, the tensors and
``signature_defs_metadata`` of its ``model.tflite`` files, and what their graphs compute.
No server: these run in the test process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import upstream_models


def _meta_graph(base: Path) -> Any:
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(
        (base / upstream_models.VERSION_DIR / "saved_model.pb").read_bytes()
    )
    (meta_graph,) = saved_model.meta_graphs
    return meta_graph


@pytest.mark.parametrize("name", sorted(upstream_models.EXPECTED_SIGNATURE_DEFS))
def test_signature_defs_are_upstreams(testdata: Any, name: str) -> None:
    meta_graph = _meta_graph(getattr(testdata, name))
    assert list(meta_graph.meta_info_def.tags) == ["serve"]
    described = upstream_models.describe_signature_defs(meta_graph.signature_def)
    assert described == upstream_models.EXPECTED_SIGNATURE_DEFS[name]


@pytest.mark.parametrize("name", sorted(upstream_models.EXPECTED_TFLITE))
def test_tflite_models_are_upstreams(testdata: Any, name: str) -> None:
    model = getattr(testdata, name) / upstream_models.VERSION_DIR / "model.tflite"
    assert upstream_models.describe_tflite(model) == upstream_models.EXPECTED_TFLITE[name]


@pytest.mark.parametrize("name", ["saved_model_half_plus_two_cpu", "saved_model_half_plus_three"])
def test_assets_and_init_ops_are_upstreams(testdata: Any, name: str) -> None:
    """``assets/foo.txt``, and the op assigning its name run at load: a main op in the TF1.14
    half_plus_two, a ``legacy_init_op`` in the TF 1.0 half_plus_three."""
    base = getattr(testdata, name)
    asset = base / upstream_models.VERSION_DIR / "assets" / "foo.txt"
    assert asset.read_text() == upstream_models.ASSET_CONTENTS
    collections = _meta_graph(base).collection_def
    init_op = "legacy_init_op" if name == "saved_model_half_plus_three" else "saved_model_main_op"
    assert list(collections[init_op].node_list.value) == ["group_deps"]
    other = "saved_model_main_op" if init_op == "legacy_init_op" else "legacy_init_op"
    assert other not in collections


def _session_run(base: Path, fetches: list[str], feeds: dict[str, Any]) -> list[Any]:
    """Load ``base``'s version in a TF1 session, run ``fetches`` one after the other."""
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        v1.saved_model.loader.load(session, ["serve"], str(base / upstream_models.VERSION_DIR))
        return [session.run(fetch, feeds.get(fetch, {})) for fetch in fetches]


def test_half_plus_three_computes_half_plus_three(testdata: Any) -> None:
    import numpy as np
    import tensorflow as tf

    example = tf.train.Example(
        features=tf.train.Features(
            feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[2.0]))}
        )
    ).SerializeToString()
    y, regressed = _session_run(
        testdata.saved_model_half_plus_three,
        ["y:0", "Identity:0"],
        {"y:0": {"x:0": np.array([[2.0]], np.float32)}, "Identity:0": {"tf_example:0": [example]}},
    )
    assert y.tolist() == [[4.0]]
    assert regressed.tolist() == [[4.0]]


def test_counter_counts(testdata: Any) -> None:
    """``incr_counter`` adds 1, ``incr_counter_by`` adds ``delta``, ``reset_counter`` sets 0."""
    signatures = _meta_graph(testdata.saved_model_counter).signature_def

    def output(name: str) -> str:
        return str(signatures[name].outputs["output"].name)

    fetches = ["incr_counter", "incr_counter_by", "get_counter", "reset_counter", "get_counter"]
    values = _session_run(
        testdata.saved_model_counter,
        [output(name) for name in fetches],
        {output("incr_counter_by"): {signatures["incr_counter_by"].inputs["delta"].name: 3.0}},
    )
    assert values == [1.0, 4.0, 4.0, 0.0, 0.0]
