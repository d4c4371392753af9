"""The dashboard: status, switching, predictions, traffic and teaching aids in one widget."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..by_hand import StatusCall
from ..config import ModelConfig
from ..traffic.split import SplitLike
from ._render import FG, esc
from .monitor import ServerMonitor
from .predictions import PredictionPanel
from .status import StatusPanel
from .switch import SwitchOutcome, SwitchPanel
from .teaching import TeachingPanel
from .traffic import TrafficPanel


class Dashboard(widgets.VBox):
    """A live view of one served model, with controls; every control has a Python twin.

    Layout: status and switching side by side, then tabs for predictions, traffic and the
    equivalent ``curl``/gRPC calls. The parts are attributes (``status``, ``switch``,
    ``predictions``, ``traffic``, ``teaching``) sharing one :class:`ServerMonitor`
    (``monitor``), and each is usable alone.

    Construct it on the widget thread (a notebook cell). Background threads only do network I/O;
    widget updates run on the kernel's event loop. :meth:`close` (or the server stopping) ends
    polling and traffic.
    """

    def __init__(
        self,
        server: Any,
        examples: Any = None,
        labels: Any = None,
        *,
        class_names: Sequence[str] | None = None,
        model_name: str | None = None,
        configs: Sequence[ModelConfig] | None = None,
        label_names: Iterable[str] = ("stable", "canary"),
        output: str | None = None,
        max_rows: int = 8,
        poll_interval: float = 1.0,
        title: str | None = None,
    ) -> None:
        super().__init__()
        self._parts: list[widgets.Widget | ServerMonitor] = []
        self.monitor = ServerMonitor(
            server, model_name=model_name, configs=configs, interval=poll_interval
        )
        self._parts.append(self.monitor)
        example = None if examples is None else np.asarray(examples)[0]
        self.status = StatusPanel(self.monitor)
        self.switch = SwitchPanel(self.monitor, label_names=label_names)
        self.predictions = PredictionPanel(
            self.monitor,
            examples,
            labels,
            class_names=class_names,
            output=output,
            max_rows=max_rows,
        )
        self.traffic = TrafficPanel(self.monitor, example)
        self.teaching = TeachingPanel(self.monitor, example)
        widgets.link((self.traffic, "target"), (self.teaching, "target"))
        self.tabs = widgets.Tab(
            children=[self.predictions, self.traffic, self.teaching],
            titles=("Predictions", "Traffic", "curl & gRPC"),
        )
        self.status.layout.flex = "3 1 0"
        self.switch.layout.flex = "2 1 0"
        name = title or f"Serving {self.monitor.target.model_name}"
        heading = widgets.HTML(
            f'<div style="font-size:15px;font-weight:700;color:{FG}">{esc(name)}</div>'
        )
        top = widgets.HBox([self.status, self.switch])
        self.children = [heading, top, self.tabs]
        # closed in this order: traffic first, the shared monitor last
        self._parts[:0] = [
            self.traffic,
            self.teaching,
            self.predictions,
            self.switch,
            self.status,
            self.tabs,
            top,
            heading,
        ]
        self.add_class("tfnb-dashboard")

    # ------------------------------------------------------------------ Python twins

    def follow_latest(self, *, wait: bool = True) -> SwitchOutcome:
        """Serve the newest version (the "Follow latest" button)."""
        return self.switch.follow_latest(wait=wait)

    def pin(self, versions: int | Iterable[int], *, wait: bool = True) -> SwitchOutcome:
        """Serve exactly ``versions`` (the version toggles and "Pin selected")."""
        return self.switch.pin(versions, wait=wait)

    def move_label(self, label: str, version: int | None) -> SwitchOutcome:
        """Point ``label`` at ``version``; ``None`` removes it (a label's "Move" button)."""
        return self.switch.move_label(label, version)

    def start_traffic(
        self,
        rate: int | None = None,
        target: int | str | None = None,
        split: SplitLike | None = None,
    ) -> None:
        """Start a steady request stream (the "Send traffic" toggle, rate slider and target),
        or spread it over a ``split`` (:meth:`TrafficPanel.start_traffic`)."""
        self.traffic.start_traffic(rate=rate, target=target, split=split)

    def stop_traffic(self) -> None:
        """Stop the request stream."""
        self.traffic.stop_traffic()

    def wait_for_answers(self, version: int, count: int, timeout: float = 60.0) -> int:
        """Block until ``version`` has answered ``count`` more requests of the stream
        (:meth:`TrafficPanel.wait_for_answers`)."""
        return self.traffic.wait_for_answers(version, count, timeout)

    def save_chart(self, path: str | os.PathLike[str]) -> Path:
        """Write the traffic charts to an ``.svg`` or ``.png`` file, for slides
        (:meth:`TrafficPanel.save_chart`)."""
        return self.traffic.save_chart(path)

    def reload(self) -> SwitchOutcome:
        """Send the current config again, unchanged (the "Reload config" button)."""
        return self.switch.reload()

    def refresh(self) -> StatusCall | None:
        """Poll the server and predict with every served version now (blocks until done); return
        the status read by hand (the status panel's "Refresh": :meth:`StatusPanel.refresh`)."""
        call = self.status.refresh()
        self.predictions.refresh()
        return call

    def close(self) -> None:
        """Stop polling and traffic, and close every widget of the dashboard."""
        for key, board in list(_LIVE.items()):
            if board is self:
                del _LIVE[key]
        for part in self._parts:
            part.close()
        self._parts.clear()
        super().close()


_LIVE: dict[tuple[int, str | None], Dashboard] = {}
"""The dashboard :func:`dashboard` made last for each (server object, model name)."""


def dashboard(server: Any, examples: Any = None, labels: Any = None, **options: Any) -> Dashboard:
    """A :class:`Dashboard` for ``server`` (a ``ModelServer`` or a ``ServingClient``).

    ``examples`` (one per row) are shown with each served version's predictions; ``labels`` are
    their true answers (for accuracy). ``options`` are :class:`Dashboard`'s keyword arguments.

    One live dashboard per server and model: this closes the one it made before for the same
    ``server`` and ``model_name``, so re-running a notebook cell leaves no earlier dashboard
    polling and sending traffic in the background. (Construct :class:`Dashboard` itself for
    several at once.)
    """
    key = (id(server), options.get("model_name"))
    previous = _LIVE.pop(key, None)
    if previous is not None:
        previous.close()
    board = Dashboard(server, examples, labels, **options)
    _LIVE[key] = board
    return board
