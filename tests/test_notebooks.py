"""The course notebooks' shape, read without running them (nbval runs them in scripts/test).

Every notebook is in the cookbook shape (a title, an overview, prerequisites, sections, a summary,
what's next), ends with exercises that a cell checks, and is committed stripped, with the outputs
nbval compares (cells marked ``# NBVAL_CHECK_OUTPUT``) in ``notebooks/expected/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.helpers.notebooks import NOTEBOOKS, committed_form, is_checked, read_expected

COURSE = sorted(NOTEBOOKS.glob("0*.ipynb"))


def _headings(notebook: Any) -> list[str]:
    return [
        line
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("#")
    ]


def test_the_course_has_six_notebooks() -> None:
    assert [path.name[:2] for path in COURSE] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", COURSE, ids=lambda path: path.stem)
def test_cookbook_shape(path: Path) -> None:
    headings = _headings(nbformat.read(path, as_version=4))
    assert headings[0].startswith("# "), "the first heading is the title"
    sections = [h.lstrip("#").strip().rstrip("?").lower() for h in headings if h.startswith("## ")]
    titles = {h.lstrip("#").strip().rstrip("?").lower() for h in headings[1:]}
    for required in ("overview", "prerequisites", "summary", "what's next", "exercises"):
        assert required in titles, f"{path.name} has no '{required}' heading"
    assert sections[:2] == ["overview", "prerequisites"]
    assert sections.index("exercises") > sections.index("summary"), "exercises end the notebook"
    assert len(sections) - 4 >= 2, f"{path.name} has fewer than two sections of its own"


@pytest.mark.parametrize("path", COURSE, ids=lambda path: path.stem)
def test_exercises_are_checked_by_a_cell(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    start = next(
        i for i, cell in enumerate(notebook.cells) if re.search(r"^## Exercises", cell.source, re.M)
    )
    checks = [
        cell
        for cell in notebook.cells[start:]
        if cell.cell_type == "code" and "check_answer(" in cell.source
    ]
    assert 2 <= len(checks) <= 3, f"{path.name}: {len(checks)} exercise checks"
    assert all("..." in cell.source for cell in checks), "exercises are committed unanswered"


@pytest.mark.parametrize("path", COURSE, ids=lambda path: path.stem)
def test_committed_stripped_with_expected_outputs_beside(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    checked = {cell.id for cell in notebook.cells if is_checked(cell)}
    assert checked, f"{path.name} guards no output with # NBVAL_CHECK_OUTPUT"
    expected = read_expected(path)
    assert set(expected) == checked, "expected outputs are for exactly the checked cells"
    assert all(expected.values()), "a checked cell without its expected output"
    assert nbformat.writes(committed_form(nbformat.read(path, as_version=4))) == nbformat.writes(
        notebook
    ), f"{path.name} is not in its committed form: python -m tests.helpers.notebooks {path}"
