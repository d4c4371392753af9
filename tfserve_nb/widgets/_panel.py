"""Base of the dashboard's parts: a VBox bound to a :class:`ServerMonitor`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ._render import FG, esc
from .monitor import ServerMonitor


class Panel(widgets.VBox):
    """A titled part of the dashboard, usable on its own.

    ``source`` is a :class:`ServerMonitor` to share (the dashboard's) or a server/client, in which
    case the panel makes its own monitor from ``monitor_options`` (``model_name``, ``configs``,
    ``interval``) and closes it with itself. Construct panels on the widget thread.
    """

    def __init__(self, source: Any, title: str, **monitor_options: Any) -> None:
        super().__init__()
        self._watching: list[tuple[Callable[[Any], None], list[str]]] = []
        self._owns_monitor = False
        if isinstance(source, ServerMonitor):
            self.monitor = source
        else:
            self.monitor = ServerMonitor(source, **monitor_options)
            self._owns_monitor = True
        self._heading = widgets.HTML(
            f'<div style="font-weight:600;font-size:13px;color:{FG};margin-bottom:2px">'
            f"{esc(title)}</div>"
        )
        self.add_class("tfnb-panel")
        self.layout = widgets.Layout(padding="6px 10px", min_width="0")

    def _set_body(self, *children: widgets.Widget) -> None:
        self.children = (self._heading, *children)

    def _watch(self, handler: Callable[[Any], None], names: list[str]) -> None:
        """Observe monitor traits until this panel closes."""
        self.monitor.observe(handler, names)
        self._watching.append((handler, names))

    def close(self) -> None:
        """Stop observing; close the monitor if this panel made it; close the widgets."""
        for handler, names in self._watching:
            self.monitor.unobserve(handler, names)
        self._watching.clear()
        if self._owns_monitor:
            self.monitor.close()
        for child in self.children:
            child.close()
        super().close()
