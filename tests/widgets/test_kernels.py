"""The dashboard notebook under ipykernel 6 and 7, in a real kernel each.

Widget updates from background threads go through the kernel's event loop (``_kernel.
UiDispatcher``); both kernel generations must run notebook 02 top to bottom that way. ipykernel 7
is the one installed; ipykernel 6 is put in ``.venv/ipykernel6`` by ``scripts/test`` and put on
the kernel's ``PYTHONPATH`` only.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "02_versions_and_rollout.ipynb"
IPYKERNEL6 = ROOT / ".venv" / "ipykernel6"
CHECK = """\
import ipykernel
assert dash.monitor.dispatcher.has_loop, "updates do not go through the kernel's event loop"
print("ipykernel", ipykernel.__version__)"""


@pytest.mark.parametrize("major", [6, 7])
def test_the_dashboard_notebook_runs_under_ipykernel(major: int, tmp_path: Path) -> None:
    import nbclient
    import nbformat
    from jupyter_client.manager import KernelManager

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if major == 6:
        if not IPYKERNEL6.is_dir():
            message = f"{IPYKERNEL6} is missing: scripts/test installs ipykernel 6 there"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        env["PYTHONPATH"] = os.pathsep.join([str(IPYKERNEL6), env.get("PYTHONPATH", "")])
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    shown = next(i for i, c in enumerate(notebook.cells) if "tfs.dashboard(" in c.source)
    notebook.cells.insert(shown + 1, nbformat.v4.new_code_cell(CHECK))
    kernel = KernelManager(kernel_name="python3")
    kernel.start_kernel(env=env, cwd=str(tmp_path))
    try:
        nbclient.NotebookClient(notebook, km=kernel, timeout=300).execute()
    finally:
        if kernel.is_alive():
            kernel.shutdown_kernel(now=True)
    (printed,) = [o["text"] for o in notebook.cells[shown + 1].outputs if o.get("name") == "stdout"]
    assert printed.startswith(f"ipykernel {major}."), printed
