"""TrafficPanel: a steady request stream, charted, to watch a version switch under load.

The stream and its numbers are :class:`~tfserve_nb.traffic.sender.TrafficSender` and
:class:`~tfserve_nb.traffic.statistics.TrafficStats`; this panel starts and stops them and draws
what they report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets

from ..errors import InvalidArgumentError, ServerTimeoutError, TrafficStoppedError
from ..traffic.sender import TrafficSender
from ..traffic.split import SplitLike, TrafficSplit
from ..traffic.statistics import WINDOW_SECONDS, TrafficSnapshot
from ..waiting import wait_until
from ._panel import Panel
from ._picker import RequestTarget, TargetKey, TargetPicker
from ._render import (
    BAD,
    MUTED,
    Chart,
    Marker,
    Series,
    VersionColours,
    esc,
    note,
    png_document,
    svg_chart,
    svg_document,
)


class TrafficPanel(Panel):
    """A toggle that sends a steady stream of predict requests, and charts of what came back over
    the last minute: requests per second stacked by the version that answered them (one colour per
    version, kept while the chart scrolls; errors in red on top) and p50/p95 latency per version
    (a dashed line marks the second another version started answering most requests), plus
    requests answered per version and their latency. A promotion under traffic shows as the
    colour changing with no red. :meth:`save_chart` writes the charts to an SVG or PNG file.

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
        self._colours = VersionColours()
        self._charts: tuple[Chart, ...] = ()
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
            raise InvalidArgumentError("start_traffic: give a target or a split, not both")
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
        many it has answered since traffic started. Raises ``ServerTimeoutError`` saying what was
        answered instead, ``InvalidArgumentError`` when no traffic is being sent, and
        ``TrafficStoppedError`` when it stops before enough answers came."""
        sender = self._sender
        if sender is None:
            raise InvalidArgumentError("no traffic is being sent: call start_traffic() first")
        snap = sender.stats.snapshot()
        start = dict(snap.answered).get(version, 0)

        def failure(error: type[Exception], why: str) -> Exception:
            answered = dict(snap.answered).get(version, 0)
            last = f", last: {snap.last_error}" if snap.last_error else ""
            return error(
                f"version {version} answered {answered - start} of the {count} requests "
                f"waited for {why} (answered so far: {dict(snap.answered)}, "
                f"errors: {snap.total_errors}{last})"
            )

        def enough() -> int | None:
            nonlocal snap
            snap = sender.stats.snapshot()
            answered = dict(snap.answered).get(version, 0)
            if answered - start >= count:
                return answered
            if self._sender is not sender:
                raise failure(TrafficStoppedError, "before the traffic stopped")
            return None

        return wait_until(
            enough,
            timeout,
            timed_out=lambda: failure(ServerTimeoutError, f"within {timeout:g} s"),
            interval=0.02,
        )

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
        target, batch, dispatcher = (
            self.monitor.target,
            example[np.newaxis],
            self.monitor.dispatcher,
        )

        def send(version: int | None, label: str | None) -> int | None:
            answered: int | None = target.predict(batch, version=version, label=label).version
            return answered

        self._sender = TrafficSender(
            send, self._request_target(), self.rate, lambda snap: dispatcher.run(self._show, snap)
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

    def save_chart(self, path: str | os.PathLike[str]) -> Path:
        """Write the charts as they are shown now to ``path`` and return it as a ``Path``: a
        ``.svg`` file is one standalone SVG document holding both charts, a ``.png`` file the same
        drawn with matplotlib (tfserve-nb's ``examples`` extra; ``ImportError`` naming it
        without). Both use the light theme's colours on white, for slides.

        Raises ``InvalidArgumentError`` (a ``ValueError``) for another suffix, or before any
        traffic was charted."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".svg", ".png"):
            raise InvalidArgumentError(
                f"cannot save a chart as {path.name!r}: the file name must end in .svg or .png"
            )
        if not self._charts:
            raise InvalidArgumentError("no traffic charted yet: call start_traffic() first")
        if suffix == ".svg":
            path.write_text(svg_document(self._charts), encoding="utf-8")
        else:
            path.write_bytes(png_document(self._charts))
        return path

    def _show(self, snap: TrafficSnapshot) -> None:
        with self.hold_trait_notifications():
            self.answered = dict(snap.answered)
            self.succeeded = snap.total_ok
            self.failed = snap.total_errors
            self.last_error = snap.last_error
        text = f"answered by version — {self._per_version(snap)} · " + (
            f'<span style="color:{BAD if snap.total_errors else MUTED}">'
            f"errors: <b>{snap.total_errors}</b></span>"
        )
        if self.split is not None:
            text += f"<br>split: {esc(self.split.describe())}"
        if snap.last_error:
            text += f'<br><span style="color:{BAD}">last error: {esc(snap.last_error)}</span>'
        self.counters.value = note(text)
        if not snap.seconds:
            self._charts = ()
            self.chart.value = note("Start traffic to see requests and latency per version.")
            return
        self._charts = traffic_charts(snap, self._colours)
        charts = "".join(svg_chart(chart) for chart in self._charts)
        self.chart.value = f'<div style="display:flex;flex-wrap:wrap;gap:12px">{charts}</div>'

    def _per_version(self, snap: TrafficSnapshot) -> str:
        """Requests each version answered since traffic started, each with its colour swatch and
        its p50/p95 latency over the chart's window (while it answered in it)."""
        latency = {v.version: v for v in snap.by_version}
        entries: list[tuple[int | None, str]] = [
            (version, f"v{version}: <b>{n}</b>") for version, n in snap.answered
        ]
        unreported = snap.total_ok - sum(n for _, n in snap.answered)
        if unreported:
            entries.append((None, f"version not reported: <b>{unreported}</b>"))
        shown = []
        for version, text in entries:
            swatch = f'<span style="color:{self._colours(version)}">■</span> '
            if version in latency:
                v = latency[version]
                text += f" (p50 {v.window_p50_ms:.1f} ms, p95 {v.window_p95_ms:.1f} ms)"
            shown.append(swatch + text)
        return " · ".join(shown) or "none yet"


def traffic_charts(snap: TrafficSnapshot, colours: VersionColours) -> tuple[Chart, Chart]:
    """What :class:`TrafficPanel` charts of ``snap``: requests per second as bars stacked by the
    version that answered (``v?``: not reported), errors in red on top, and p50 (solid) and p95
    (dashed) latency per version with the switches marked (in the requests chart the change of
    colour shows them). Each version is drawn in ``colours(version)``."""
    bars, lines = [], []
    for v in snap.by_version:
        name, colour = "v?" if v.version is None else f"v{v.version}", colours(v.version)
        bars.append(Series(name, colour, v.requests, bars=True))
        lines += [Series(name, colour, v.p50_ms), Series("", colour, v.p95_ms, dashed=True)]
    if any(snap.errors):
        bars.append(Series("errors", BAD, snap.errors, bars=True))
    markers = [Marker(s, f"v{v}", colours(v)) for s, v in snap.switches]
    return (
        Chart(snap.seconds, bars, "requests / s", span=WINDOW_SECONDS),
        Chart(
            snap.seconds,
            lines,
            "latency (p50 solid, p95 dashed)",
            unit=" ms",
            markers=markers,
            span=WINDOW_SECONDS,
        ),
    )
