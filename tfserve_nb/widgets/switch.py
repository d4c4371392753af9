"""SwitchPanel: follow the latest version, pin versions, move labels — through config reloads.

Every change is one ``HandleReloadConfigRequest`` carrying the model's whole config with one thing
changed, exactly what an operator would send to TF Serving. TF Serving's rules hold, and a refusal
is explained in plain words next to the server's own text:

- a label may only point at a version that is AVAILABLE (``FAILED_PRECONDITION``), so moving a
  label to a new version takes two steps: load it (pin it with the current one), then move;
- the dashboard adds one check of its own: it does not unload a version a label points at, because
  the server would accept that and then answer ``NOT_FOUND`` for the label.

Those rules and the plain words are :mod:`tfserve_nb.rollout`'s, shared with ``ModelServer``;
this panel only runs them and shows the outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import traitlets

from ..by_hand import ConfigReload, StatusCall
from ..core.version_policy import Latest, Specific, VersionPolicy
from ..errors import ConfigError, ServingError, TfServeNbError
from ..responses import available_versions
from ..rollout import (
    check_labels,
    check_pin,
    check_version_policy,
    explain,
    join_versions,
    moved_labels,
)
from ._code import code_blocks
from ._panel import Panel
from ._render import BAD, FG, GOOD, MUTED, esc, note
from .monitor import Snapshot

UNSET = -1
"""Label dropdown value meaning "remove this label"."""


@dataclass(frozen=True)
class SwitchOutcome:
    """The result of one switch: ``ok``, what was asked (``action``), what happened in plain words
    (``message``), for a refusal by the server its code and text (``upstream``), and the protocol
    by hand: the ``HandleReloadConfigRequest`` sent with its Python, ``models.config`` and
    ``docker run`` line (``reload``; ``None`` when nothing was sent) and the model's status read
    afterwards as ``curl`` and JSON (``status``; ``None`` without REST or when it failed)."""

    ok: bool
    action: str
    message: str
    upstream: str = ""
    reload: ConfigReload | None = None
    status: StatusCall | None = None

    def __str__(self) -> str:
        head = f"{'done' if self.ok else 'refused'}: {self.action} — {self.message}"
        if self.upstream:
            head += f"\nserver said: {self.upstream}"
        return "\n\n".join(
            [head, *(f"# {title}\n{text.rstrip()}" for title, text in self._blocks())]
        )

    def _blocks(self) -> list[tuple[str, str]]:
        return [
            *(self.reload.blocks() if self.reload else ()),
            *(self.status.blocks() if self.status else ()),
        ]

    def _repr_html_(self) -> str:
        return self.html()

    def html(self) -> str:
        """The outcome as the panel shows it."""
        colour, mark = (GOOD, "✔") if self.ok else (BAD, "✖")
        text = (
            f'<div style="color:{colour};font-size:12px;line-height:1.45">'
            f"<b>{mark} {esc(self.action)}</b>"
            f'<div style="color:{FG};margin-top:2px">{esc(self.message)}</div>'
        )
        if self.upstream:
            text += (
                f'<div style="color:{MUTED};margin-top:2px">the server said: '
                f"<code>{esc(self.upstream)}</code></div>"
            )
        return f'{text}<div class="tfnb-by-hand">{code_blocks(self._blocks())}</div></div>'


class SwitchPanel(Panel):
    """Controls that change which versions are served and where labels point.

    Python twins (blocking; they return a :class:`SwitchOutcome` and never raise for a refusal):
    :meth:`follow_latest`, :meth:`pin`, :meth:`move_label`, :meth:`reload`. Buttons run the same
    code in a background thread, so the kernel stays responsive while versions load. Each outcome
    shows the protocol it sent (:class:`~tfserve_nb.by_hand.ConfigReload`) and the status after
    it (:class:`~tfserve_nb.by_hand.StatusCall`), ready to copy.
    """

    busy = traitlets.Bool(False, help="True while a switch runs in the background")
    outcome = traitlets.Any(None, allow_none=True, help="SwitchOutcome of the last switch")
    wait_timeout = traitlets.Float(
        120.0, help="seconds a switch waits for the versions it asks for to become AVAILABLE"
    )
    label_names = traitlets.Tuple(
        ("stable", "canary"), help="labels offered even before they exist on the server"
    )

    def __init__(
        self,
        source: Any,
        *,
        label_names: Iterable[str] = ("stable", "canary"),
        **monitor_options: Any,
    ) -> None:
        super().__init__(source, "Switch versions", **monitor_options)
        # One change at a time, clicks and Python twins alike. ModelServer applies each config
        # change atomically; this lock is for the panel's own multi-step actions: a label move
        # builds the whole label map from the config it read, a pin checks the labels, sends
        # the policy and waits for the versions, so two at once could lose a move or strand a
        # label (a bare ServingClient target has no handle lock at all).
        self._change_lock = threading.Lock()
        self.follow_button = _button(
            "Follow latest",
            "forward",
            "Serve the newest version on disk (version policy latest { num_versions: 1 })",
        )
        self.follow_button.on_click(lambda _: self._submit(self._follow_latest_work))
        self.reload_button = _button(
            "Reload config",
            "refresh",
            "Send the current config again (HandleReloadConfigRequest, nothing changed)",
        )
        self.reload_button.on_click(lambda _: self._submit(self._reload_work))
        self.version_toggles = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.pin_button = _button(
            "Pin selected",
            "thumb-tack",
            "Serve exactly the selected versions (version policy specific { ... })",
        )
        self.pin_button.on_click(lambda _: self._submit(self._pin_work(self.selected_versions)))
        self.label_rows = widgets.VBox()
        self.version_buttons: dict[int, widgets.ToggleButton] = {}
        self.label_pickers: dict[str, widgets.Dropdown] = {}
        self.move_buttons: dict[str, widgets.Button] = {}
        self._label_rows: dict[str, widgets.HBox] = {}
        self.message = widgets.HTML()
        self.message.add_class("tfnb-switch-message")
        self.label_names = tuple(label_names)
        self._set_body(
            widgets.HBox([self.follow_button, self.reload_button]),
            widgets.HTML(note("or pin versions:")),
            widgets.HBox([self.version_toggles, self.pin_button]),
            widgets.HTML(note("labels:")),
            self.label_rows,
            self.message,
        )
        self._watch(self._sync_versions, ["known_versions", "served", "policy"])
        self._watch(self._sync_labels, ["labels", "known_versions", "served"])
        self._sync_versions()
        self._sync_labels()
        self._sync_enabled()

    # ------------------------------------------------------------------ Python twins

    @property
    def selected_versions(self) -> tuple[int, ...]:
        """Versions whose toggle is on, ascending."""
        return tuple(sorted(v for v, toggle in self.version_buttons.items() if toggle.value))

    def follow_latest(self, *, wait: bool = True) -> SwitchOutcome:
        """Serve the latest version (policy ``latest { num_versions: 1 }``); with ``wait``,
        return once it is AVAILABLE and the others unloaded (when the base path is local)."""
        return self._run_now(self._follow_latest_work, wait)

    def pin(self, versions: int | Iterable[int], *, wait: bool = True) -> SwitchOutcome:
        """Serve exactly ``versions`` (policy ``specific``); with ``wait``, return once they are
        AVAILABLE and every other version unloaded."""
        wanted = (versions,) if isinstance(versions, int) else tuple(versions)
        return self._run_now(self._pin_work(tuple(sorted(set(wanted)))), wait)

    def move_label(self, label: str, version: int | None) -> SwitchOutcome:
        """Point ``label`` at ``version`` (``None`` removes it). The server refuses a version that
        is not AVAILABLE, and the panel one that the version policy is unloading
        (:func:`~tfserve_nb.rollout.check_labels`); the outcome explains either."""
        return self._run_now(self._move_label_work(label, version), False)

    def reload(self) -> SwitchOutcome:
        """Send the current config unchanged (``HandleReloadConfigRequest``): the server re-reads
        it, as after an edit of ``--model_config_file``; nothing is waited for."""
        return self._run_now(self._reload_work, False)

    # ------------------------------------------------------------------ work (background-safe)

    def _reload_work(self, _wait: bool) -> tuple[SwitchOutcome, Snapshot]:
        action = "reload the config"
        if self.monitor.target.config() is None:
            return self._refuse(action, _READ_ONLY)
        try:
            sent = self.monitor.target.reload()
        except ServingError as exc:
            return self._refuse(action, explain(exc), exc)
        except TfServeNbError as exc:
            return self._failed(action, exc)
        return self._done_outcome(action, "Config sent again, unchanged.", sent)

    def _follow_latest_work(self, wait: bool) -> tuple[SwitchOutcome, Snapshot]:
        return self._change("follow the latest version", Latest(1), wait)

    def _pin_work(
        self, versions: tuple[int, ...]
    ) -> Callable[[bool], tuple[SwitchOutcome, Snapshot]]:
        def work(wait: bool) -> tuple[SwitchOutcome, Snapshot]:
            action = "pin version" + ("s " if len(versions) > 1 else " ") + join_versions(versions)
            try:
                check_pin(versions, self.monitor.target.disk_versions())
            except ConfigError as exc:
                return self._refuse(action if versions else "pin", str(exc))
            return self._change(action, Specific(versions), wait)

        return work

    def _move_label_work(
        self, label: str, version: int | None
    ) -> Callable[[bool], tuple[SwitchOutcome, Snapshot]]:
        def work(_wait: bool) -> tuple[SwitchOutcome, Snapshot]:
            target = self.monitor.target
            action = f"remove label {label}" if version is None else f"move {label} → {version}"
            config = target.config()
            if config is None:
                return self._refuse(action, _READ_ONLY)
            labels = moved_labels(config.labels, label, version)
            try:
                check_labels(
                    config,
                    labels,
                    target.disk_versions(),
                    lambda: available_versions(target.status()),
                )
                sent = target.set_labels(labels)
            except ConfigError as exc:
                return self._refuse(action, str(exc))
            except ServingError as exc:
                return self._refuse(action, explain(exc), exc)
            except TfServeNbError as exc:
                return self._failed(action, exc)
            done = (
                f"Requests for label {label} now go to version {version}."
                if version is not None
                else f"Label {label} removed."
            )
            return self._done_outcome(action, done, sent)

        return work

    def _change(
        self, action: str, policy: VersionPolicy, wait: bool
    ) -> tuple[SwitchOutcome, Snapshot]:
        target = self.monitor.target
        config = target.config()
        if config is None:
            return self._refuse(action, _READ_ONLY)
        try:
            expected = check_version_policy(config, policy, target.disk_versions())
        except ConfigError as exc:
            return self._refuse(action, str(exc))
        try:
            sent = target.set_policy(policy)
            if wait:
                statuses = target.wait_settled(expected, self.wait_timeout)
                served = sorted(s.version for s in statuses if s.state == "AVAILABLE")
                done = (
                    f"Now serving version{'s' if len(served) > 1 else ''} {join_versions(served)}."
                )
            else:
                done = "Config sent; the server loads and unloads versions in the background."
        except ServingError as exc:
            return self._refuse(action, explain(exc), exc)
        except TfServeNbError as exc:  # e.g. ServerTimeoutError while waiting for the versions
            return self._failed(action, exc)
        return self._done_outcome(action, done, sent)

    def _done_outcome(
        self, action: str, done: str, sent: ConfigReload
    ) -> tuple[SwitchOutcome, Snapshot]:
        outcome = SwitchOutcome(True, action, done, reload=sent, status=self._status_call())
        return outcome, self.monitor.fetch()

    def _refuse(
        self, action: str, why: str, error: ServingError | None = None
    ) -> tuple[SwitchOutcome, Snapshot]:
        upstream = f"[{error.code}] {error.message}" if error is not None else ""
        outcome = SwitchOutcome(False, action, why, upstream, status=self._status_call())
        return outcome, self.monitor.fetch()

    def _failed(self, action: str, error: Exception) -> tuple[SwitchOutcome, Snapshot]:
        return SwitchOutcome(False, action, f"{error}"), self.monitor.fetch()

    def _status_call(self) -> StatusCall | None:
        """The model's status by hand right after a switch; ``None`` if it cannot be read (the
        outcome still stands: the status is for reading along)."""
        try:
            return self.monitor.target.status_call()
        except TfServeNbError:
            return None

    # ------------------------------------------------------------------ running

    def _run_now(
        self, work: Callable[[bool], tuple[SwitchOutcome, Snapshot]], wait: bool
    ) -> SwitchOutcome:
        with self._change_lock:
            result = work(wait)
        self.monitor.dispatcher.run(self._done, result)
        return result[0]

    def _submit(self, work: Callable[[bool], tuple[SwitchOutcome, Snapshot]]) -> None:
        if self.busy:
            return
        self.busy = True
        self.message.value = note("working…")

        def serialized() -> tuple[SwitchOutcome, Snapshot]:
            with self._change_lock:
                return work(True)

        self.monitor.runner.submit(serialized, self._done)

    def _done(self, result: tuple[SwitchOutcome, Snapshot]) -> None:
        outcome, snapshot = result
        self.monitor.apply(snapshot)
        self.outcome = outcome
        self.message.value = outcome.html()
        self.busy = False

    # ------------------------------------------------------------------ widget state

    @traitlets.observe("busy")
    def _sync_enabled(self, _change: Any = None) -> None:
        disabled = self.busy or not self.monitor.target.can_switch
        buttons = [
            self.follow_button,
            self.reload_button,
            self.pin_button,
            *self.move_buttons.values(),
        ]
        for button in buttons:
            button.disabled = disabled
        if not self.monitor.target.can_switch:
            self.message.value = note(_READ_ONLY)

    def _sync_versions(self, _change: Any = None) -> None:
        monitor = self.monitor
        pinned = self._pinned()
        for version in monitor.known_versions:
            if version not in self.version_buttons:
                self.version_buttons[version] = widgets.ToggleButton(
                    description=f"v{version}", layout=widgets.Layout(width="auto")
                )
            toggle = self.version_buttons[version]
            toggle.value = version in pinned
            toggle.tooltip = f"version {version}: " + (
                "AVAILABLE" if version in monitor.served else "not loaded"
            )
        for version in set(self.version_buttons) - set(monitor.known_versions):
            self.version_buttons.pop(version).close()
        self.version_toggles.children = [self.version_buttons[v] for v in monitor.known_versions]

    def _pinned(self) -> set[int]:
        config = self.monitor.target.config()
        if config is not None and isinstance(config.version_policy, Specific):
            return set(config.version_policy.versions)
        return set(self.monitor.served)

    @traitlets.observe("label_names")
    def _sync_labels(self, _change: Any = None) -> None:
        monitor = self.monitor
        names = list(dict.fromkeys([*self.label_names, *sorted(monitor.labels)]))
        options = [("(remove)", UNSET)] + [
            (f"v{v}" + ("" if v in monitor.served else " — not loaded"), v)
            for v in reversed(monitor.known_versions)
        ]
        for name in names:
            if name not in self.label_pickers:
                self._add_label_row(name)
            picker = self.label_pickers[name]
            current = monitor.labels.get(name, UNSET)
            picker.options = options
            picker.value = current if current in {v for _, v in options} else UNSET
        self.label_rows.children = [self._label_rows[name] for name in names]
        self._sync_enabled()

    def _add_label_row(self, name: str) -> None:
        picker = widgets.Dropdown(layout=widgets.Layout(width="150px"))
        picker.add_class(f"tfnb-label-{name}")
        button = _button(f"Move {name}", "tag", f"Point label {name} at the chosen version")

        def move(_: widgets.Button) -> None:
            chosen = picker.value
            self._submit(self._move_label_work(name, None if chosen == UNSET else chosen))

        button.on_click(move)
        caption = widgets.HTML(
            f'<div style="width:60px;font-size:12px;color:{FG}">{esc(name)}</div>'
        )
        self.label_pickers[name], self.move_buttons[name] = picker, button
        self._label_rows[name] = widgets.HBox([caption, picker, button])


def _button(description: str, icon: str, tooltip: str) -> widgets.Button:
    """A switch button sized to its text."""
    return widgets.Button(
        description=description, icon=icon, tooltip=tooltip, layout=widgets.Layout(width="auto")
    )


_READ_ONLY = (
    "Read-only: a bare ServingClient cannot tell the server's config. Pass "
    "configs=[ModelConfig(...)] to the dashboard to switch versions."
)
