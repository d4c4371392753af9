"""StatusPanel: backend, addresses, policy, labels and a live versions table."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from ..by_hand import StatusCall
from ..errors import TfServeNbError
from ._code import code_blocks
from ._panel import Panel
from ._render import BAD, MUTED, STATE_COLOURS, esc, note, pill, table
from .monitor import Snapshot


class StatusPanel(Panel):
    """Where the model is served and what each version is doing right now.

    The versions table shows every known version, newest first, with its state (START, LOADING,
    AVAILABLE, UNLOADING, END), the labels pointing at it and its load error, if any. Versions
    present on disk that the version policy does not ask for are listed as "on disk". The table
    follows the monitor's polls; the Refresh button (twin: :meth:`refresh`) polls at once and
    shows the same status read by hand: ``curl .../v1/models/NAME`` and its JSON (``last_call``).
    """

    last_call = traitlets.Any(
        None, allow_none=True, help="StatusCall of the last refresh (None before one, or no REST)"
    )

    def __init__(self, source: Any, **monitor_options: Any) -> None:
        super().__init__(source, "Server & versions", **monitor_options)
        self.summary = widgets.HTML()
        self.versions_table = widgets.HTML()
        self.versions_table.add_class("tfnb-versions")
        self.refresh_button = widgets.Button(
            description="Refresh",
            icon="refresh",
            tooltip="Ask the server for its status now",
            layout=widgets.Layout(width="auto"),
        )
        self.refresh_button.on_click(lambda _: self._refresh_in_background())
        self.footer = widgets.HTML()
        self.by_hand = widgets.HTML()
        self.by_hand.add_class("tfnb-status-by-hand")
        self._set_body(
            self.summary,
            self.versions_table,
            widgets.HBox([self.refresh_button, self.footer]),
            self.by_hand,
        )
        self._watch(
            self._render,
            ["statuses", "labels", "policy", "known_versions", "alive", "error", "polling"],
        )
        self._render()

    def refresh(self) -> StatusCall | None:
        """Poll the server now (blocks for one status call), resume polling if it stopped, and
        return the status read by hand (``GET /v1/models/NAME``: the ``curl`` line and its JSON;
        ``None`` without a REST address or when that read fails, as the panel then says)."""
        self.monitor.refresh()
        call = self._read_by_hand()
        self.monitor.dispatcher.run(self._show_call, call)
        return call

    def _refresh_in_background(self) -> None:
        monitor = self.monitor

        def work() -> tuple[Snapshot, StatusCall | str | None]:
            return monitor.fetch(), self._read_by_hand_or_why()

        def done(result: tuple[Snapshot, StatusCall | str | None]) -> None:
            monitor.apply(result[0])
            self._show_call(result[1])

        monitor.runner.submit(work, done)
        monitor.start()

    def _read_by_hand(self) -> StatusCall | None:
        call = self._read_by_hand_or_why()
        return call if isinstance(call, StatusCall) else None

    def _read_by_hand_or_why(self) -> StatusCall | str | None:
        """The status read over REST, or why it failed (network I/O; any thread)."""
        try:
            return self.monitor.target.status_call()
        except TfServeNbError as exc:
            return f"GET /v1/models/{self.monitor.target.model_name} failed: {exc}"

    def _show_call(self, call: StatusCall | str | None) -> None:
        if isinstance(call, str):
            self.last_call = None
            self.by_hand.value = note(esc(call), BAD)
            return
        self.last_call = call
        self.by_hand.value = "" if call is None else code_blocks(call.blocks(), open_first=2)

    def _render(self, _change: Any = None) -> None:
        monitor, target = self.monitor, self.monitor.target
        facts = [
            ("backend", target.backend),
            ("model", target.model_name),
            ("gRPC", target.grpc_address),
            ("REST", target.rest_url or "—"),
            ("policy", monitor.policy or "unknown (read-only)"),
        ]
        self.summary.value = note(
            " · ".join(
                f"<span style='white-space:nowrap'>{esc(k)} "
                f"<b style='font-family:var(--jp-code-font-family, monospace)'>{esc(v)}</b></span>"
                for k, v in facts
            )
            + (f"<br>{esc(target.backend_reason)}" if target.backend_reason else "")
        )
        by_version = {s.version: s for s in monitor.statuses}
        labels_of: dict[int, list[str]] = {}
        for label, version in sorted(monitor.labels.items()):
            labels_of.setdefault(version, []).append(label)
        rows = []
        for version in sorted(set(monitor.known_versions) | set(by_version), reverse=True):
            status = by_version.get(version)
            if status is None:
                state = f'<span style="color:{MUTED}">on disk · not asked for by the policy</span>'
                detail = ""
            else:
                state = pill(status.state, STATE_COLOURS.get(status.state, MUTED))
                detail = (
                    f'<span style="color:{BAD}">{esc(status.error_code)}: '
                    f"{esc(status.error_message)}</span>"
                    if status.error_message
                    else ""
                )
            tags = " ".join(pill(label, "#0969da") for label in labels_of.get(version, []))
            rows.append([f"<b>{version}</b>", state, tags, detail])
        self.versions_table.value = (
            table(["version", "state", "labels", "details"], rows, css_class="tfnb-versions-table")
            if rows
            else note("The server reports no versions yet.")
        )
        if not monitor.alive:
            self.footer.value = note(f"⏹ {esc(monitor.error)}", BAD)
        elif monitor.error:
            self.footer.value = note(f"⚠ last poll failed: {esc(monitor.error)}", BAD)
        elif monitor.polling:
            self.footer.value = note(f"live · polling every {monitor.interval:g} s")
        else:
            self.footer.value = note("polling stopped")
