"""Polls model base paths and emits each stream's aspired versions (paths).

After ``FileSystemStoragePathSource``: every ``poll_wait_seconds`` it lists each configured base
path, keeps the children whose names parse as non-negative integers (``0001`` is version 1;
``v1`` and temporary export folders are ignored), applies the stream's version policy and calls
the aspired-versions callback with the complete list. A base path with no version emits an empty
list (so the stream unloads) and logs TF Serving's hint; a missing base path logs an error and
leaves that stream as it was. Streams removed by :meth:`update_config` get an empty list once.

``poll_wait_seconds`` > 0 polls periodically, 0 polls once per config, < 0 never polls.
Thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.servable_id import ServableData, ServableId, list_versions
from ..core.source import AspiredVersionsCallback
from ..core.version_policy import Latest, VersionPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServableToMonitor:
    servable_name: str
    base_path: str
    version_policy: VersionPolicy = field(default_factory=Latest)


class FileSystemStoragePathSource:
    """Emits aspired versions for the configured servables to ``callback``."""

    def __init__(
        self,
        servables: Sequence[ServableToMonitor],
        callback: AspiredVersionsCallback,
        poll_wait_seconds: float = 1.0,
    ) -> None:
        self._callback = callback
        self._poll_wait = poll_wait_seconds
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._servables = list(servables)
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False

    def start(self) -> None:
        """Poll once now (in the caller's thread), then keep polling in the background."""
        self._started = True
        if self._poll_wait >= 0:
            self.poll()
        if self._poll_wait > 0:
            self._thread = threading.Thread(target=self._run, name="fs-source", daemon=True)
            self._thread.start()

    def update_config(self, servables: Sequence[ServableToMonitor]) -> None:
        """Replace the monitored servables; once started, removed ones are unaspired and the
        new set is polled at once."""
        with self._lock:
            removed = {s.servable_name for s in self._servables} - {
                s.servable_name for s in servables
            }
            self._servables = list(servables)
        if not self._started:
            return
        for name in removed:
            self._callback(name, [])
        if self._poll_wait >= 0:
            self.poll()

    def poll(self) -> None:
        """List every base path once and emit the aspired versions."""
        with self._lock:
            servables = list(self._servables)
        with self._poll_lock:
            for servable in servables:
                versions = self._aspired_versions(servable)
                if versions is not None:
                    self._callback(servable.servable_name, versions)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_wait):
            try:
                self.poll()
            except Exception:  # keep polling whatever one poll hit
                log.exception("FileSystemStoragePathSource poll failed")

    def _aspired_versions(self, servable: ServableToMonitor) -> list[ServableData[str]] | None:
        name, base_path = servable.servable_name, servable.base_path
        try:
            found = list_versions(base_path)
        except OSError as exc:
            if name not in self._warned:
                log.error(
                    "FileSystemStoragePathSource encountered a filesystem access error: "
                    "Could not find base path %s for servable %s with error %s",
                    base_path,
                    name,
                    exc.strerror or exc,
                )
                self._warned.add(name)
            return None
        if not found:
            if name not in self._warned:
                log.warning(
                    "No versions of servable %s found under base path %s. Did you forget to "
                    "name your leaf directory as a number (eg. '/1/')?",
                    name,
                    base_path,
                )
                self._warned.add(name)
        else:
            self._warned.discard(name)
        chosen = servable.version_policy.select(found)
        return [ServableData(ServableId(name, v), found[v]) for v in sorted(chosen, reverse=True)]
