"""The course notebooks' committed form, their expected outputs, and how to refresh both.

A notebook in ``notebooks/`` is committed stripped: no outputs, no execution counts. The outputs
nbval compares (``scripts/test`` runs ``--nbval-lax``: only cells marked ``# NBVAL_CHECK_OUTPUT``)
live beside it in ``notebooks/expected/<notebook>.json``, the outputs of a real run keyed by cell
id; ``notebooks/conftest.py`` hands them to nbval's items at collection (:func:`with_expected`),
so a run that prints something else fails. After changing a notebook, refresh both:

    .venv/bin/python -m tests.helpers.notebooks notebooks/03_the_protocol_by_hand.ipynb

which executes it top to bottom in this environment's kernel, writes the expected outputs of
its checked cells and the notebook stripped.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import nbformat

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def is_checked(cell: Any) -> bool:
    """Whether a code cell's output is compared by nbval (its first line is the mark)."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK)


def expected_path(path: Path) -> Path:
    """Where the expected outputs of notebook ``path`` are kept."""
    return path.parent / "expected" / f"{path.stem}.json"


def expected_outputs(notebook: Any) -> dict[str, list[Any]]:
    """The outputs of ``notebook``'s checked cells by cell id, execution counts left out."""
    return {
        cell.id: [
            {key: value for key, value in output.items() if key != "execution_count"}
            for output in cell.outputs
        ]
        for cell in notebook.cells
        if is_checked(cell)
    }


def committed_form(notebook: Any) -> Any:
    """``notebook`` stripped: no outputs, execution counts, widget state or per-cell execution
    metadata (so a refresh changes only what an edit changed)."""
    notebook.metadata.pop("widgets", None)  # a run's widget state (ports, model ids)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


def with_expected(cell: Any, expected: dict[str, list[Any]], position: int) -> None:
    """Give checked ``cell`` its expected outputs as nbval's reference, and an execution count
    (``position``: nbval refuses a reference output of a cell that was never run)."""
    cell.outputs = [nbformat.from_dict(output) for output in expected.get(cell.id, [])]
    cell.execution_count = position
    for output in cell.outputs:
        if output.output_type == "execute_result":
            output.execution_count = position


def refresh(path: Path, timeout: int = 600) -> None:
    """Execute ``path`` top to bottom in the python3 kernel; write its checked cells' outputs to
    :func:`expected_path` and the notebook back in its committed form."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    write_expected(path, expected_outputs(notebook))
    nbformat.write(committed_form(notebook), path)


def write_expected(path: Path, expected: dict[str, list[Any]]) -> None:
    """Write notebook ``path``'s expected outputs (sorted, indented: reviewable diffs)."""
    target = expected_path(path)
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def read_expected(path: Path) -> dict[str, list[Any]]:
    """Notebook ``path``'s expected outputs (empty when it has none)."""
    target = expected_path(path)
    return json.loads(target.read_text()) if target.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    for path in parser.parse_args().paths:
        refresh(path)
        print(f"refreshed {path}")


if __name__ == "__main__":
    main()
