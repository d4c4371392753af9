"""Notebook widgets: a live dashboard of a served model, and its parts.

Thin by design: every control calls the same TF Serving protocol a script would (through
:class:`~tfserve_nb.handle.ModelServer` or :class:`~tfserve_nb.client.ServingClient`), and every
control has a Python twin, so the dashboard is scriptable and testable headless.
Only stock ipywidgets are used; nothing is loaded from the network.
"""

from __future__ import annotations

from .dashboard import Dashboard, dashboard
from .monitor import ServerMonitor
from .predictions import PredictionPanel
from .status import StatusPanel
from .switch import SwitchOutcome, SwitchPanel
from .teaching import TeachingPanel
from .traffic import TrafficPanel

__all__ = [
    "Dashboard",
    "PredictionPanel",
    "ServerMonitor",
    "StatusPanel",
    "SwitchOutcome",
    "SwitchPanel",
    "TeachingPanel",
    "TrafficPanel",
    "dashboard",
]
