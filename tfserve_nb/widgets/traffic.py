"""TrafficPanel: a steady request stream, charted, to watch a version switch under load."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets

from ..traffic.split import SplitLike, TrafficSplit
from ._kernel import Repeater, UiDispatcher
from ._panel import Panel
from ._picker import RequestTarget, TargetKey, TargetPicker
from ._render import BAD, BLUE, GOOD, MUTED, ORANGE, Series, esc, note, svg_chart
from ._target import REQUEST_ERRORS, ServingTarget

WINDOW_SECONDS = 60
"""How much history the charts show."""

TICK_SECONDS = 0.5
"""How often the sender hands fresh numbers to the widget thread."""


@dataclass(frozen=True)
class TrafficSnapshot:
    """Traffic so far: per-second buckets over the last :data:`WINDOW_SECONDS` (``seconds`` are
    offsets from the start), totals, and requests answered per version."""

    seconds: tuple[float, ...] = ()
    p50_ms: tuple[float | None, ...] = ()
    p95_ms: tuple[float | None, ...] = ()
    ok: tuple[int, ...] = ()
    errors: tuple[int, ...] = ()
    switches: tuple[tuple[float, int], ...] = ()
    answered: tuple[tuple[int, int], ...] = ()
    total_ok: int = 0
    total_errors: int = 0
    last_error: str = ""


class TrafficStats:
    """Thread-safe record of requests (latency, answering version or error) in 1-s buckets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._buckets: dict[int, tuple[list[float], collections.Counter[int], int]] = {}
        self._answered: collections.Counter[int] = collections.Counter()
        self._total_errors = 0
        self._last_error = ""

    def record(self, latency: float, version: int | None, error: str = "") -> None:
        """Add one request that took ``latency`` seconds, answered by ``version`` or failed."""
        second = int(time.monotonic() - self._start)
        with self._lock:
            latencies, versions, errors = self._buckets.get(second, ([], collections.Counter(), 0))
            if error:
                errors += 1
                self._total_errors += 1
                self._last_error = error
            else:
                latencies.append(latency)
                if version is not None:
                    versions[version] += 1
                    self._answered[version] += 1
            self._buckets[second] = (latencies, versions, errors)
            for old in [s for s in self._buckets if s < second - WINDOW_SECONDS]:
                del self._buckets[old]

    def snapshot(self) -> TrafficSnapshot:
        """A copy of the numbers, with empty seconds filled in."""
        now = int(time.monotonic() - self._start)
        with self._lock:
            seconds = list(range(max(0, now - WINDOW_SECONDS), now + 1))
            p50: list[float | None] = []
            p95: list[float | None] = []
            ok, errors, switches = [], [], []
            previous = None
            for second in seconds:
                latencies, versions, failed = self._buckets.get(
                    second, ([], collections.Counter(), 0)
                )
                if latencies:
                    ms = np.asarray(latencies) * 1000.0
                    p50.append(float(np.percentile(ms, 50)))
                    p95.append(float(np.percentile(ms, 95)))
                else:
                    p50.append(None)
                    p95.append(None)
                ok.append(len(latencies))
                errors.append(failed)
                if versions:
                    top = versions.most_common(1)[0][0]
                    if previous is not None and top != previous:
                        switches.append((float(second), top))
                    previous = top
            return TrafficSnapshot(
                seconds=tuple(float(s) for s in seconds),
                p50_ms=tuple(p50),
                p95_ms=tuple(p95),
                ok=tuple(ok),
                errors=tuple(errors),
                switches=tuple(switches),
                answered=tuple(sorted(self._answered.items())),
                total_ok=sum(self._answered.values()),
                total_errors=self._total_errors,
                last_error=self._last_error,
            )


class TrafficSender:
    """Sends ``batch`` to ``target``, one request at a time at about ``rate`` per second, in a
    daemon thread.

    ``rate`` and ``request_target`` may change while running. The sender never bursts to catch up
    more than half a second. Every :data:`TICK_SECONDS` (and once when stopping) it passes
    ``stats.snapshot()`` to ``on_tick`` through the dispatcher.
    """

    def __init__(
        self,
        target: ServingTarget,
        batch: np.ndarray,
        request_target: RequestTarget | TrafficSplit,
        rate: float,
        dispatcher: UiDispatcher,
        on_tick: Callable[[TrafficSnapshot], None],
    ) -> None:
        self.target = target
        self.batch = batch
        self.request_target = request_target
        self.rate = rate
        self.stats = TrafficStats()
        self._dispatcher = dispatcher
        self._on_tick = on_tick
        self._next_at = time.monotonic()
        self._last_tick = 0.0
        self._repeater = Repeater("tfserve-nb-traffic", self._step, 0.0)

    def start(self) -> None:
        self._repeater.start()

    def stop(self) -> None:
        """Stop sending (returns at once; a request in flight completes unrecorded) and hand the
        last numbers over."""
        self._repeater.stop()
        self._dispatcher.run(self._on_tick, self.stats.snapshot())

    def _step(self) -> bool:
        if self._repeater.wait(max(self._next_at - time.monotonic(), 0.0)):
            return False
        self._next_at = max(self._next_at + 1.0 / max(self.rate, 0.1), time.monotonic() - 0.5)
        version, label = self.request_target.next()
        began = time.perf_counter()
        try:
            result = self.target.predict(self.batch, version=version, label=label)
            self.stats.record(time.perf_counter() - began, result.version)
        except REQUEST_ERRORS as exc:
            self.stats.record(time.perf_counter() - began, None, str(exc))
        if time.monotonic() - self._last_tick >= TICK_SECONDS:
            self._last_tick = time.monotonic()
            return self._dispatcher.run(self._on_tick, self.stats.snapshot())
        return True


class TrafficPanel(Panel):
    """A toggle that sends a steady stream of predict requests, and charts of what came back:
    p50/p95 latency and successes/errors per second over the last minute (a dashed line marks the
    second another version started answering), plus requests answered per version.

    ``example`` is the one example each request carries (no batch dimension); by default the
    first of the dashboard's examples, else zeros shaped like the serving signature's input. Twins:
    :meth:`start_traffic`, :meth:`stop_traffic`. Traffic stops when the server stops.
    """

    sending = traitlets.Bool(False, help="whether the request stream is running")
    rate = traitlets.Int(20, min=1, max=200, help="requests per second to aim for")
    target = TargetKey(
        "latest", help="where requests go: 'latest', 'version:N' or 'label:L' (see RequestTarget)"
    )
    answered: traitlets.Dict[int, int] = traitlets.Dict(
        key_trait=traitlets.Int(), help="version -> requests it answered since traffic started"
    )
    succeeded = traitlets.Int(0, help="requests answered since traffic started")
    failed = traitlets.Int(0, help="requests that failed since traffic started")
    last_error = traitlets.Unicode(help="the text of the most recent failed request")
    split = traitlets.Instance(
        TrafficSplit,
        allow_none=True,
        help="a weighted split over labels/versions used instead of target (None: target)",
    )

    def __init__(self, source: Any, example: Any = None, **monitor_options: Any) -> None:
        super().__init__(source, "Traffic", **monitor_options)
        self.example = None if example is None else np.asarray(example)
        self._sender: TrafficSender | None = None
        self.toggle = widgets.ToggleButton(
            description="Send traffic",
            icon="play",
            tooltip="Start or stop a steady stream of requests",
            layout=widgets.Layout(width="auto"),
        )
        self.toggle.add_class("tfnb-traffic-toggle")
        self.rate_slider = widgets.IntSlider(
            min=1, max=200, description="req/s", continuous_update=False
        )
        self.picker = TargetPicker(self.monitor, layout=widgets.Layout(width="230px"))
        widgets.link((self, "sending"), (self.toggle, "value"))
        widgets.link((self, "rate"), (self.rate_slider, "value"))
        self.picker.bind(self)
        self.counters = widgets.HTML()
        self.chart = widgets.HTML()
        self.chart.add_class("tfnb-traffic-chart")
        self._set_body(
            widgets.HBox([self.toggle, self.rate_slider, self.picker]), self.counters, self.chart
        )
        self._watch(self._server_gone, ["alive"])
        self._show(TrafficSnapshot())

    # ------------------------------------------------------------------ Python twins

    def start_traffic(
        self,
        rate: int | None = None,
        target: int | str | None = None,
        split: SplitLike | None = None,
    ) -> None:
        """Start the stream (or retarget it): ``rate`` requests per second, to ``target`` — a
        version number, a label, or ``"latest"`` — or spread over a ``split`` such as
        ``{"stable": 90, "canary": 10}`` (a canary share; TF Serving has no weighted routing, so
        each request names the label its turn falls on). ``None`` keeps the current choice; a
        target ends a split."""
        if target is not None and split is not None:
            raise ValueError("start_traffic: give a target or a split, not both")
        if rate is not None:
            self.rate = rate
        if target is not None:
            self.split = None
            self.target = RequestTarget.of(target).key
        if split is not None:
            self.split = TrafficSplit.of(split)
        self.sending = True

    def stop_traffic(self) -> None:
        """Stop the stream; at most the request already in flight still completes."""
        self.sending = False

    def wait_for_answers(self, version: int, count: int, timeout: float = 60.0) -> int:
        """Block until ``version`` has answered ``count`` more of the stream's requests than
        when called (a notebook cell's way to let traffic flow without sleeping); returns how
        many it has answered since traffic started. Raises ``TimeoutError`` saying what was
        answered instead, and ``RuntimeError`` when no traffic is being sent (or it stops)."""
        sender = self._sender
        if sender is None:
            raise RuntimeError("no traffic is being sent: call start_traffic() first")
        start = dict(sender.stats.snapshot().answered).get(version, 0)
        deadline = time.monotonic() + timeout
        while True:
            snap = sender.stats.snapshot()
            answered = dict(snap.answered).get(version, 0)
            if answered - start >= count:
                return answered
            stopped = self._sender is not sender
            if stopped or time.monotonic() > deadline:
                last = f", last: {snap.last_error}" if snap.last_error else ""
                why = "before the traffic stopped" if stopped else f"within {timeout:g} s"
                raise (RuntimeError if stopped else TimeoutError)(
                    f"version {version} answered {answered - start} of the {count} requests "
                    f"waited for {why} (answered so far: {dict(snap.answered)}, "
                    f"errors: {snap.total_errors}{last})"
                )
            time.sleep(0.02)

    # ------------------------------------------------------------------ wiring

    @traitlets.observe("sending")
    def _sending_changed(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._start()
        elif self._sender is not None:
            sender, self._sender = self._sender, None
            sender.stop()
        self.toggle.icon = "stop" if self.sending else "play"
        self.toggle.description = "Stop traffic" if self.sending else "Send traffic"

    @traitlets.observe("rate")
    def _rate_changed(self, change: dict[str, Any]) -> None:
        if self._sender is not None:
            self._sender.rate = change["new"]

    @traitlets.observe("target", "split")
    def _target_changed(self, _change: dict[str, Any]) -> None:
        self.picker.disabled = self.split is not None
        if self._sender is not None:
            self._sender.request_target = self._request_target()

    def _request_target(self) -> RequestTarget | TrafficSplit:
        return self.split if self.split is not None else RequestTarget.parse(self.target)

    def _start(self) -> None:
        example = self._request_example()
        if example is None:
            self.last_error = (
                "no example to send yet: pass example= or wait until the server "
                "reports the model's signature"
            )
            self._show(TrafficSnapshot(last_error=self.last_error))
            self.sending = False
            return
        self._sender = TrafficSender(
            self.monitor.target,
            example[np.newaxis],
            self._request_target(),
            self.rate,
            self.monitor.dispatcher,
            self._show,
        )
        self._sender.start()

    def _request_example(self) -> np.ndarray | None:
        if self.example is not None:
            return self.example
        spec = self.monitor.input_spec
        return spec.zeros_example() if spec is not None else None

    def _server_gone(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            self.sending = False

    def close(self) -> None:
        """Stop traffic, then close the panel."""
        self.sending = False
        super().close()

    # ------------------------------------------------------------------ drawing

    def _show(self, snap: TrafficSnapshot) -> None:
        with self.hold_trait_notifications():
            self.answered = dict(snap.answered)
            self.succeeded = snap.total_ok
            self.failed = snap.total_errors
            self.last_error = snap.last_error
        per_version = " · ".join(f"v{v}: <b>{n}</b>" for v, n in snap.answered) or "none yet"
        text = (
            f"answered by version — {per_version} · "
            f'<span style="color:{BAD if snap.total_errors else MUTED}">'
            f"errors: <b>{snap.total_errors}</b></span>"
        )
        if self.split is not None:
            text += f"<br>split: {esc(self.split.describe())}"
        if snap.last_error:
            text += f'<br><span style="color:{BAD}">last error: {esc(snap.last_error)}</span>'
        self.counters.value = note(text)
        if not snap.seconds:
            self.chart.value = note("Start traffic to see latency and errors over time.")
            return
        markers = [(s, f"v{v}") for s, v in snap.switches]
        latency = svg_chart(
            snap.seconds,
            [Series("p50", BLUE, snap.p50_ms), Series("p95", ORANGE, snap.p95_ms)],
            title="latency",
            unit=" ms",
            markers=markers,
            span=WINDOW_SECONDS,
        )
        counts = svg_chart(
            snap.seconds,
            [Series("ok", GOOD, snap.ok, bars=True), Series("errors", BAD, snap.errors, bars=True)],
            title="requests / s",
            unit="",
            markers=markers,
            span=WINDOW_SECONDS,
        )
        self.chart.value = (
            f'<div style="display:flex;flex-wrap:wrap;gap:12px">{latency}{counts}</div>'
        )
