"""Where requests go (latest, a version, a label), and a dropdown that offers what exists."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import traitlets

from ..errors import InvalidArgumentError
from .monitor import ServerMonitor

LATEST = "latest"


@dataclass(frozen=True)
class RequestTarget:
    """A ``ModelSpec`` choice: a ``version``, a ``label``, or neither (the latest available)."""

    version: int | None = None
    label: str | None = None

    @classmethod
    def parse(cls, key: str) -> RequestTarget:
        """Read a picker value: ``"latest"``, ``"version:2"`` or ``"label:canary"``."""
        kind, _, value = key.partition(":")
        if kind == "version":
            return cls(version=int(value))
        if kind == "label":
            return cls(label=value)
        if key == LATEST:
            return cls()
        raise InvalidArgumentError(
            f"unknown request target {key!r}; use 'latest', 'version:N' or 'label:L'"
        )

    @classmethod
    def of(cls, spec: int | str | None) -> RequestTarget:
        """From a Python twin argument: ``None``/``"latest"``, a version number, or a label."""
        if spec is None or spec == LATEST:
            return cls()
        if isinstance(spec, int):
            return cls(version=spec)
        return cls(label=spec)

    @property
    def key(self) -> str:
        """The picker value for this target."""
        if self.version is not None:
            return f"version:{self.version}"
        if self.label is not None:
            return f"label:{self.label}"
        return LATEST

    def next(self) -> tuple[int | None, str | None]:
        """``(version, label)`` of the next request: always this target (the interface it
        shares with :class:`~tfserve_nb.traffic.split.TrafficSplit`)."""
        return self.version, self.label

    def describe(self) -> str:
        """Human form, e.g. ``label canary``."""
        if self.version is not None:
            return f"version {self.version}"
        if self.label is not None:
            return f"label {self.label}"
        return "the latest version"


class TargetKey(traitlets.Unicode):  # type: ignore[type-arg]
    """A :attr:`RequestTarget.key` trait: ``"latest"``, ``"version:N"`` or ``"label:L"``."""

    def validate(self, obj: Any, value: Any) -> str:
        key = super().validate(obj, value)
        try:
            RequestTarget.parse(key)
        except ValueError as exc:
            raise traitlets.TraitError(str(exc)) from None
        return key


class TargetPicker(widgets.Dropdown):
    """A dropdown of request targets offered by a monitor: latest, each label (with the version
    it points at) and each served version. Its ``value`` is a :attr:`RequestTarget.key`. A
    target the server does not serve (yet, or any more) stays selectable once chosen: requests to
    it fail, which is worth seeing."""

    def __init__(self, monitor: ServerMonitor, **kwargs: Any) -> None:
        super().__init__(description="send to", **kwargs)
        self.style = {"description_width": "initial"}
        self._monitor: ServerMonitor | None = monitor
        # Without a kernel loop the monitor's poller and the caller's thread may both sync;
        # options and value must change together (re-entrant: setting value re-enters via bind).
        self._sync_lock = threading.RLock()
        monitor.observe(self._sync, ["labels", "served"])
        self._sync()

    @property
    def selected(self) -> str | None:
        """The selected :attr:`RequestTarget.key`."""
        value: str | None = self.value
        return value

    def choose(self, key: str) -> None:
        """Select ``key`` (a :attr:`RequestTarget.key`), offering it if it is not listed."""
        self._sync(keep=key)

    def bind(self, owner: traitlets.HasTraits, name: str = "target") -> None:
        """Keep ``owner.<name>`` (a :class:`TargetKey`) and this dropdown in step both ways,
        starting from the owner's value."""
        self.observe(lambda change: setattr(owner, name, change["new"]), "value")
        owner.observe(lambda change: self.choose(change["new"]), name)
        self.choose(getattr(owner, name))

    def _sync(self, _change: Any = None, keep: str | None = None) -> None:
        monitor = self._monitor
        if monitor is None:
            return
        with self._sync_lock:
            if keep is None:
                keep = self.selected
            options = [("latest", LATEST)]
            options += [
                (f"label {k} → v{v}", f"label:{k}") for k, v in sorted(monitor.labels.items())
            ]
            options += [(f"version {v}", f"version:{v}") for v in reversed(monitor.served)]
            if keep is not None and keep not in {v for _, v in options}:
                options.append((f"{RequestTarget.parse(keep).describe()} (not served)", keep))
            self.options = options  # keeps the current value: it is among the options
            self.value = keep if keep is not None else LATEST

    def close(self) -> None:
        """Stop following the monitor and close the dropdown (idempotent)."""
        if self._monitor is not None:
            self._monitor.unobserve(self._sync, ["labels", "served"])
            self._monitor = None
        super().close()
