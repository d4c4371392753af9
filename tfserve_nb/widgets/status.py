"""StatusPanel: backend, addresses, policy, labels and a live versions table."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ._panel import Panel
from ._render import BAD, MUTED, STATE_COLOURS, esc, note, pill, table


class StatusPanel(Panel):
    """Where the model is served and what each version is doing right now.

    The versions table shows every known version, newest first, with its state (START, LOADING,
    AVAILABLE, UNLOADING, END), the labels pointing at it and its load error, if any. Versions
    present on disk that the version policy does not ask for are listed as "on disk". The table
    follows the monitor's polls; the Refresh button (twin: :meth:`refresh`) polls at once.
    """

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
        self._set_body(
            self.summary, self.versions_table, widgets.HBox([self.refresh_button, self.footer])
        )
        self._watch(
            self._render,
            ["statuses", "labels", "policy", "known_versions", "alive", "error", "polling"],
        )
        self._render()

    def refresh(self) -> None:
        """Poll the server now (blocks for one status call) and resume polling if it stopped."""
        self.monitor.refresh()

    def _refresh_in_background(self) -> None:
        monitor = self.monitor
        monitor.runner.submit(monitor.fetch, monitor.apply)
        monitor.start()

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
