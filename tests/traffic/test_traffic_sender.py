"""TrafficSender with a fake predict function: rate, targets, errors, ticks and stopping."""

from __future__ import annotations

import threading
import time

from tests.helpers.waiting import wait_until
from tfserve_nb.errors import ServingError
from tfserve_nb.traffic.sender import TrafficSender
from tfserve_nb.traffic.split import TrafficSplit
from tfserve_nb.traffic.statistics import TrafficSnapshot

DEADLINE = 30.0


class Fixed:
    """A request target that always names the same version or label."""

    def __init__(self, version: int | None = None, label: str | None = None) -> None:
        self.version, self.label = version, label

    def next(self) -> tuple[int | None, str | None]:
        return self.version, self.label


class FakeServer:
    """Answers a version's request with that version and a label's with ``labels[label]``;
    ``failing`` labels raise as the server would for an unknown label."""

    def __init__(self, labels: dict[str, int], failing: frozenset[str] = frozenset()) -> None:
        self.labels = labels
        self.failing = failing
        self.calls: list[tuple[int | None, str | None]] = []
        self.lock = threading.Lock()
        self.enough = threading.Event()
        self.wanted = 0

    def send(self, version: int | None, label: str | None) -> int | None:
        with self.lock:
            self.calls.append((version, label))
            if len(self.calls) >= self.wanted:
                self.enough.set()
        if label in self.failing:
            raise ServingError(
                "FAILED_PRECONDITION", f"Unrecognized servable version label: {label}"
            )
        return version if version is not None else self.labels.get(label or "latest")

    def wait_for(self, count: int) -> None:
        with self.lock:
            self.wanted = count
            if len(self.calls) >= count:
                return
            self.enough.clear()
        assert self.enough.wait(DEADLINE), f"only {len(self.calls)} of {count} requests sent"


class Ticks:
    def __init__(self, keep_going: bool = True) -> None:
        self.snapshots: list[TrafficSnapshot] = []
        self.keep_going = keep_going

    def __call__(self, snap: TrafficSnapshot) -> bool:
        self.snapshots.append(snap)
        return self.keep_going


def wait_until_ended(sender: TrafficSender) -> None:
    wait_until(lambda: not sender.running, "the sender thread to end", DEADLINE, interval=0.01)


def test_sends_to_each_target_of_a_split_and_counts_the_answers() -> None:
    server = FakeServer({"stable": 1, "canary": 2})
    ticks = Ticks()
    sender = TrafficSender(server.send, TrafficSplit({"stable": 3, "canary": 1}), 200, ticks)
    sender.start()
    server.wait_for(40)
    sender.stop()
    assert not sender.running
    last = ticks.snapshots[-1]
    answered = dict(last.answered)
    assert answered[1] >= 30 and answered[2] >= 10
    assert abs(answered[1] - 3 * answered[2]) <= 4  # the split's 3:1, give or take
    assert last.total_errors == 0 and last.total_ok == sum(answered.values())
    assert ticks.snapshots[0].total_ok <= 1  # a tick right after the first request


def test_failed_requests_are_errors_with_their_text() -> None:
    server = FakeServer({"stable": 1}, failing=frozenset({"canary"}))
    ticks = Ticks()
    sender = TrafficSender(server.send, TrafficSplit({"stable": 1, "canary": 1}), 200, ticks)
    sender.start()
    server.wait_for(10)
    sender.stop()
    last = ticks.snapshots[-1]
    assert last.total_errors >= 5 and dict(last.answered)[1] >= 5
    assert last.last_error == "[FAILED_PRECONDITION] Unrecognized servable version label: canary"


def test_rate_and_target_may_change_while_sending() -> None:
    server = FakeServer({})
    sender = TrafficSender(server.send, Fixed(version=1), 200, Ticks())
    sender.start()
    server.wait_for(5)
    sender.request_target = Fixed(version=2)
    sender.rate = 150
    server.wait_for(len(server.calls) + 10)
    sender.stop()
    assert server.calls[0] == (1, None) and server.calls[-1] == (2, None)
    assert dict(sender.stats.snapshot().answered).keys() == {1, 2}


def test_never_sends_faster_than_the_rate_allows() -> None:
    server = FakeServer({})
    rate = 20
    sender = TrafficSender(server.send, Fixed(), rate, Ticks())
    began = time.monotonic()
    sender.start()
    server.wait_for(5)
    elapsed = time.monotonic() - began
    sender.stop()
    sent = len(server.calls)
    # one request at once, then one every 1/rate s; a late thread catches up by 0.5 s at most
    assert sent <= rate * (elapsed + 0.5) + 2, (sent, elapsed)


def test_a_tick_that_says_stop_ends_the_thread() -> None:
    server = FakeServer({})
    ticks = Ticks(keep_going=False)
    sender = TrafficSender(server.send, Fixed(), 50, ticks)
    sender.start()
    wait_until_ended(sender)
    assert len(server.calls) == 1 and len(ticks.snapshots) == 1
