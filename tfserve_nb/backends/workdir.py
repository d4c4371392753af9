"""The work folders of backends that run a server as a child process: ``/tmp/tfserve-nb-*``.

One folder per server holds what it needs (``models.config``, ``ports.json``, ``server.log``);
the server's ``stop`` removes it, and so does interpreter exit. A notebook kernel that was
killed can do neither, so every new work folder is named after its owner (pid and start time,
see :func:`~tfserve_nb.processes.owned_temp_dir`) and making one first removes the folders whose
owner is gone — never a live notebook's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..processes import owned_temp_dir, remove_abandoned

__all__ = ["WORK_DIR_PREFIX", "make_work_dir", "remove_abandoned_work_dirs"]

WORK_DIR_PREFIX = "tfserve-nb-"


def remove_abandoned_work_dirs() -> list[Path]:
    """Remove the work folders (of any backend) whose owner process is gone; return them."""
    return remove_abandoned(tempfile.gettempdir(), WORK_DIR_PREFIX)


def make_work_dir(kind: str = "") -> Path:
    """A new work folder ``/tmp/tfserve-nb-<kind><owner>-<random>`` (mode 0700), after removing
    abandoned ones."""
    remove_abandoned_work_dirs()
    return owned_temp_dir(f"{WORK_DIR_PREFIX}{kind}")
