"""Which process owns something, whether it is still alive, and children that die with it.

A process is named by its pid *and its start time*: a pid the system hands to a new process
after the owner died does not pass for the owner. Liveness comes from ``/proc`` (Linux: a
zombie counts as gone); elsewhere from ``kill(pid, 0)`` alone, which keeps a reused pid
"alive" — the safe side for everything below.

**Owned temporary folders.** :func:`owned_temp_dir` makes a folder whose *name* carries its
owner (``<prefix>p<pid>s<start>h<host>-<random>``), so the folder never exists without its
record; ``h`` is a digest of the host name, boot and pid namespace, so processes of another
machine, another boot or another container never pass for ours. :func:`remove_abandoned`
removes the folders of a prefix whose owner is gone: those of this host, boot and pid
namespace, belonging to this user, whose owner process no longer runs. A live owner's folder,
a folder of another host or user, and a folder without an owner in its name are never
touched. The notebook's server work folders (``/tmp/tfserve-nb-*``) and ``export_model``'s
``.tmp-export-*`` folders use this.

**Parent-death ties.** :func:`set_parent_death_signal` asks Linux to signal this process when
its parent dies (``prctl(PR_SET_PDEATHSIG)``); :func:`parent_death_signal_preexec` asks the same
for a child about to be started (a ``preexec_fn``). Other systems have no such call (watch the
parent's pid instead: :func:`process_alive`).

**Stopping a child.** :func:`stop_process` is the one graceful stop: SIGTERM, a grace period,
then SIGKILL.

Only the standard library; importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "namespace_tag",
    "owned_temp_dir",
    "owner_tag",
    "parent_death_signal_preexec",
    "process_alive",
    "process_start_token",
    "remove_abandoned",
    "set_parent_death_signal",
    "stop_process",
]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_OWNED_SUFFIX = re.compile(r"p(?P<pid>[0-9]+)s(?P<start>[0-9]*)h(?P<host>[0-9a-f]{8})-[a-z0-9_]+")
"""The end of an owned folder's name: the owner tag, then ``mkdtemp``'s random letters."""


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (the state first), or ``None`` if there is no such
    process (or no ``/proc``)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _have_proc() -> bool:
    return os.path.exists("/proc/self/stat")


def process_start_token(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot) where ``/proc`` tells it,
    else ``""``. Together with the pid it names a process across pid reuse."""
    fields = _proc_stat(pid)
    return fields[19] if fields else ""


def process_alive(pid: int, start_token: str = "") -> bool:
    """Whether process ``pid`` runs (and, with ``start_token``, is the one that started then).

    With ``/proc``: the pid exists, is not a zombie and started at ``start_token`` if that is
    given. Elsewhere: the pid exists (a process of another user counts).
    """
    if pid <= 0:
        return False
    if _have_proc():
        fields = _proc_stat(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        return not start_token or fields[19] == start_token
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_tag() -> str:
    """Eight hex digits naming where pids mean the same processes as here: the host name, the
    boot (Linux's ``boot_id``) and the pid namespace (an inode under ``/proc/self/ns``)."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


def owner_tag(pid: int | None = None) -> str:
    """``p<pid>s<start>h<namespace>`` for process ``pid`` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"p{pid}s{process_start_token(pid)}h{namespace_tag()}"


def owned_temp_dir(prefix: str, dir: str | os.PathLike[str] | None = None) -> Path:
    """A new folder ``<dir>/<prefix><owner tag>-<random>`` (mode 0700, as ``mkdtemp``) owned
    by this process; ``dir`` defaults to the system's temporary folder."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=dir))


def remove_abandoned(parent: str | os.PathLike[str], prefix: str) -> list[Path]:
    """Remove the folders ``<parent>/<prefix>...`` made by :func:`owned_temp_dir` whose owner
    is gone; return them.

    A folder is removed only if its name carries an owner tag of this host, boot and pid
    namespace, it belongs to this user, it is a real folder (not a symbolic link) and its owner
    process is not alive. Errors (a folder another sweep removed first, one that cannot be
    read) leave it be. Never raises ``OSError``.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    here = namespace_tag()
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _OWNED_SUFFIX.search(entry.name, len(prefix))
        if match is None or match.end() != len(entry.name) or match["host"] != here:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or (uid is not None and info.st_uid != uid):
            continue
        if process_alive(int(match["pid"]), match["start"]):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            log.info("removed %s, left behind by process %s (gone)", entry.path, match["pid"])
            removed.append(Path(entry.path))
    return removed


def set_parent_death_signal(signum: int) -> bool:
    """Have Linux send ``signum`` to this process when its parent dies; ``False`` where that
    cannot be asked for (not Linux, or ``prctl`` failed).

    The kernel sends it when the *thread* that started this process exits, and again at each
    re-parenting, so a handler should check that the parent really is gone (``os.getppid()``).
    The parent may also have died before the call: check that after calling this.
    """
    prctl = _prctl()
    return prctl is not None and bool(prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0)


def parent_death_signal_preexec(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that has Linux send ``signum`` to the child
    when this process dies; ``None`` where that cannot be asked for.

    ``prctl`` is looked up here, before the fork, and only called in the child. As with
    :func:`set_parent_death_signal` the signal follows the *thread* that starts the child, so
    start it from a long-lived thread (a notebook's main thread is). A parent that died between
    the fork and the ``prctl`` is caught by checking the child's parent pid after it: the child
    then exits at once (status 1).
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def tie() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return tie


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux, else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def stop_process(popen: subprocess.Popen[bytes], grace: float) -> None:
    """Stop the child ``popen``: SIGTERM, up to ``grace`` seconds to exit, then SIGKILL (at once
    for a ``grace`` of 0 or less); returns once it has exited and been reaped. A child that has
    already exited is only reaped."""
    if popen.poll() is not None:
        return
    if grace > 0:
        popen.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(grace)
    if popen.poll() is None:
        popen.kill()
        popen.wait()
