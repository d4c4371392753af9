"""TrafficSplit: the caller's weighted choice of label or version, request by request."""

from __future__ import annotations

import collections
import threading

import numpy as np
import pytest

import tfserve_nb as tfs
from tfserve_nb.traffic.split import TrafficSplit


def counts(split: TrafficSplit, n: int) -> collections.Counter:
    return collections.Counter(split.next() for _ in range(n))


def test_weights_are_followed_exactly_and_evenly():
    split = TrafficSplit({"stable": 90, "canary": 10})
    assert counts(split, 100) == {(None, "stable"): 90, (None, "canary"): 10}
    picks = [split.next() for _ in range(20)]
    canary = [i for i, p in enumerate(picks) if p == (None, "canary")]
    assert len(canary) == 2 and canary[1] - canary[0] == 10  # spread out, not bunched
    versions = TrafficSplit({1: 1, 2: 2, "x": 0})
    assert counts(versions, 30) == {(1, None): 10, (2, None): 20}
    assert versions.shares == {1: 1 / 3, 2: 2 / 3, "x": 0.0}
    assert split.describe() == "label stable 90 % · label canary 10 %"


@pytest.mark.parametrize(
    ("weights", "complaint"),
    [
        ({}, "at least one"),
        ({"a": 0, "b": 0}, "add up to 0"),
        ({"a": -1, "b": 2}, "weight of 'a' is -1"),
        ({"a": float("nan")}, "weight of 'a' is nan"),
        ({"": 1}, "target ''"),
        ({1.5: 1}, "target 1.5"),
    ],
)
def test_bad_weights_are_named(weights, complaint):
    with pytest.raises(ValueError, match=complaint):
        TrafficSplit(weights)


def test_threads_share_one_split_without_losing_turns():
    split = TrafficSplit({"a": 3, "b": 1})
    seen: list[tuple] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [split.next() for _ in range(1000)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert collections.Counter(seen) == {(None, "a"): 3000, (None, "b"): 1000}


def test_predict_with_a_split_asks_for_each_label_in_turn(half_plus_two_base, half_plus_two_models):
    half_plus_two_models.add_version(half_plus_two_base, 2)
    with tfs.serve(half_plus_two_base, backend="embedded", version_policy=[1, 2]) as server:
        server.set_labels({"stable": 1, "canary": 2})
        split = tfs.TrafficSplit({"stable": 3, "canary": 1})
        answers = [server.predict_detailed([[1.0]], split=split) for _ in range(8)]
        assert collections.Counter(a.version for a in answers) == {1: 6, 2: 2}
        for answer in answers:
            np.testing.assert_allclose(answer.value(), [[1.5 + answer.version]])
        with pytest.raises(ValueError, match="not both"):
            server.predict([[1.0]], label="stable", split=split)
