"""ServerMonitor: the live state every panel reads, polled in the background.

One monitor per dashboard polls ``GetModelStatus`` (and, when the served versions change,
``GetModelMetadata``) in a daemon thread, and applies what it got to its traits on the widget
thread. Panels observe those traits. Polling stops when the server stops (a handle's ``alive()``
turns false, or three polls in a row fail) or when :meth:`ServerMonitor.close` is called;
:meth:`ServerMonitor.refresh` polls once more and resumes it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import traitlets

from ..config import ModelConfig
from ..core.version_policy import Specific
from ..errors import InvalidArgumentError, ServingError, TfServeNbError
from ._kernel import ActionRunner, Repeater, UiDispatcher
from ._target import InputSpec, ServingTarget, Target

MAX_FAILED_POLLS = 3
"""Consecutive failed polls after which a server is taken for stopped."""


@dataclass(frozen=True)
class Snapshot:
    """What one poll saw. ``started`` (monotonic) orders snapshots taken by different threads."""

    started: float
    statuses: tuple[Any, ...] = ()
    config: ModelConfig | None = None
    disk_versions: tuple[int, ...] | None = None
    input_spec: InputSpec | None = None
    alive: bool = True
    error: str = ""
    failed: bool = False


class ServerMonitor(traitlets.HasTraits):
    """Live state of one model on one server; the traits change only on the widget thread.

    Construct it on the widget thread (a notebook cell). ``server`` is a ``ModelServer`` or a
    ``ServingClient``; see :class:`~tfserve_nb.widgets._target.ServingTarget` for ``model_name``
    and ``configs``. It may also be a :class:`~tfserve_nb.widgets._target.Target` itself (such as
    a test's fake server), used as it is; ``model_name`` and ``configs`` are then refused
    (``ValueError``). Polling starts at once unless ``start=False``.
    """

    statuses = traitlets.Tuple(
        help="VersionStatus entries as the server last reported them, newest first"
    )
    served = traitlets.Tuple(help="versions AVAILABLE now, ascending")
    labels: traitlets.Dict[str, int] = traitlets.Dict(
        help="version labels of the current config (label -> version)"
    )
    policy = traitlets.Unicode(
        help="the current version policy in config-file words, e.g. "
        "'latest { num_versions: 1 }'; empty when unknown"
    )
    known_versions = traitlets.Tuple(
        help="every version known: on disk, reported by the server, pinned or labelled; ascending"
    )
    input_spec = traitlets.Any(
        None, allow_none=True, help="InputSpec of the serving signature's first input, or None"
    )
    alive = traitlets.Bool(True, help="False once the server stopped answering; polling stops")
    error = traitlets.Unicode(help="the last poll's error in words; empty when it worked")
    interval = traitlets.Float(1.0, min=0.05, help="seconds between status polls")
    polling = traitlets.Bool(False, help="whether the background poller is running")

    def __init__(
        self,
        server: Any,
        *,
        model_name: str | None = None,
        configs: Sequence[ModelConfig] | None = None,
        interval: float = 1.0,
        start: bool = True,
    ) -> None:
        super().__init__()
        self.target: Target
        if isinstance(server, Target):
            if model_name is not None or configs is not None:
                raise InvalidArgumentError(
                    "model_name= and configs= are for a server or client, not a Target"
                )
            self.target = server
        else:
            self.target = ServingTarget(server, model_name=model_name, configs=configs)
        self.dispatcher = UiDispatcher()
        self.runner = ActionRunner(self.dispatcher, "tfserve-nb-action")
        self._last_started = 0.0
        self._failed_polls = 0
        self._poller: Repeater | None = None
        self._closed = False
        self.interval = interval
        if start:
            self.start()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start background polling (no-op if running or closed)."""
        if self._closed or (self._poller is not None and self._poller.running):
            return
        self._failed_polls = 0
        self._poller = Repeater("tfserve-nb-status", self._poll_step, self.interval)
        self._poller.start()
        self.polling = True

    def stop(self) -> None:
        """Stop background polling; :meth:`start` or :meth:`refresh` resumes it."""
        if self._poller is not None:
            self._poller.stop()
        self.polling = False

    def close(self) -> None:
        """Stop polling and background actions for good."""
        self._closed = True
        self.stop()
        self.runner.close()

    @traitlets.observe("interval")
    def _interval_changed(self, change: dict[str, Any]) -> None:
        if self._poller is not None:
            self._poller.interval = change["new"]

    # ------------------------------------------------------------------ polling

    def refresh(self) -> None:
        """Poll now, in the calling thread, apply the result and resume polling if it stopped."""
        self.dispatcher.run(self.apply, self.fetch())
        if self.alive:
            self.start()

    def fetch(self) -> Snapshot:
        """One poll (network I/O; any thread). Never raises: failures go into the snapshot."""
        started = time.monotonic()
        target = self.target
        try:
            if not target.alive():
                return Snapshot(started, alive=False, error="the server has stopped")
            statuses = tuple(target.status())
            served = {s.version for s in statuses if s.state == "AVAILABLE"}
            spec = self.input_spec
            if served and (spec is None or served != set(self.served)):
                spec = target.input_spec()
            disk = target.disk_versions()
            return Snapshot(
                started,
                statuses=statuses,
                config=target.config(),
                disk_versions=tuple(disk) if disk is not None else None,
                input_spec=spec,
            )
        except TfServeNbError as exc:
            if isinstance(exc, ServingError) and exc.code == "CANCELLED":
                # the client is closed: ModelServer.stop() closes it first
                return Snapshot(started, alive=False, error="the server has stopped")
            return Snapshot(started, error=f"{type(exc).__name__}: {exc}", failed=True)

    def apply(self, snapshot: Snapshot) -> None:
        """Set the traits from ``snapshot`` (widget thread); older snapshots are ignored."""
        if snapshot.started < self._last_started:
            return
        self._last_started = snapshot.started
        with self.hold_trait_notifications():
            self.error = snapshot.error
            if not snapshot.alive:
                self.alive = False
                self.stop()
                return
            if snapshot.failed:
                return
            self.alive = True
            config = snapshot.config
            self.statuses = snapshot.statuses
            self.served = tuple(
                sorted(s.version for s in snapshot.statuses if s.state == "AVAILABLE")
            )
            self.labels = dict(config.labels) if config is not None else {}
            self.policy = str(config.version_policy) if config is not None else ""
            if snapshot.input_spec is not None:
                self.input_spec = snapshot.input_spec
            known = set(self.known_versions) | {s.version for s in snapshot.statuses}
            known |= set(snapshot.disk_versions or ()) | set(self.labels.values())
            if config is not None and isinstance(config.version_policy, Specific):
                known |= set(config.version_policy.versions)
            self.known_versions = tuple(sorted(known))

    def _poll_step(self) -> bool:
        snapshot = self.fetch()
        self._failed_polls = self._failed_polls + 1 if snapshot.failed else 0
        if self._failed_polls >= MAX_FAILED_POLLS:
            snapshot = Snapshot(
                snapshot.started,
                alive=False,
                error=f"the server did not answer {MAX_FAILED_POLLS} polls in a "
                f"row ({snapshot.error}); polling stopped - press Refresh "
                "to try again",
            )
        if not self.dispatcher.run(self.apply, snapshot):
            return False
        return snapshot.alive
