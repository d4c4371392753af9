"""The course notebooks' committed form, and how to refresh it.

A notebook in ``notebooks/`` is committed with its outputs stripped, except the cells marked
``# NBVAL_CHECK_OUTPUT``: they keep the outputs of a real run, and ``scripts/test`` (nbval,
``--nbval-lax``) fails when a run prints something else. After changing a notebook, refresh it:

    .venv/bin/python -m tests.helpers.notebooks notebooks/03_the_protocol_by_hand.ipynb

which executes it top to bottom in this environment's kernel and writes it back in that form.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import nbformat

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def is_checked(cell: Any) -> bool:
    """Whether a code cell's output is compared by nbval (its first line is the mark)."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK)


def committed_form(notebook: Any) -> Any:
    """``notebook`` with every output stripped but those of checked cells, and no widget state
    or per-cell execution metadata (so a refresh changes only what a run changed). A checked
    cell keeps an execution count, its position among the code cells (nbval refuses a reference
    output of a cell that was never run); every other cell has none."""
    notebook.metadata.pop("widgets", None)  # a run's widget state (ports, model ids)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    for position, cell in enumerate(code_cells, start=1):
        count = position if is_checked(cell) else None
        cell.execution_count = count
        if count is None:
            cell.outputs = []
        for output in cell.outputs:
            if "execution_count" in output:
                output.execution_count = count
    return notebook


def refresh(path: Path, timeout: int = 600) -> None:
    """Execute ``path`` top to bottom in the python3 kernel and write back its committed form."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nbformat.write(committed_form(notebook), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    for path in parser.parse_args().paths:
        refresh(path)
        print(f"refreshed {path}")


if __name__ == "__main__":
    main()
