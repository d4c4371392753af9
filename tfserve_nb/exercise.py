"""Exercise checkers for the course notebooks.

An exercise cell in ``notebooks/0N_*.ipynb`` leaves the student an ``answer = ...`` line and
calls :func:`check_answer` on it. The checker prints one line an instructor can hand out as it
is: a right answer says so, a wrong one says what to look at, an unanswered one (still ``...``)
asks for an answer. It never raises, so a notebook with open exercises still runs top to bottom.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check_answer"]


def check_answer(answer: Any, expected: Any, *, look_at: str, tolerance: float = 0.0) -> None:
    """Print whether ``answer`` equals ``expected`` (and nothing else: the cell shows no value).

    Strings compare without surrounding whitespace and case (``"not_found"`` matches
    ``"NOT_FOUND"``); numbers compare within ``tolerance`` (absolute); lists, tuples and sets
    compare as their elements, sets and unordered collections as sets; anything else with ``==``.
    ``look_at`` is the hint a wrong answer prints: where in the notebook the answer can be found.
    """
    if answer is Ellipsis:
        print(f"… not answered yet: replace the ... with your answer (hint: {look_at})")
    elif _matches(answer, expected, tolerance):
        print(f"✔ right: {answer!r}")
    else:
        print(f"✘ not quite: {answer!r} is not it. Look at {look_at}")


def _matches(answer: Any, expected: Any, tolerance: float) -> bool:
    if isinstance(expected, str):
        return isinstance(answer, str) and answer.strip().lower() == expected.strip().lower()
    if isinstance(expected, bool) or isinstance(answer, bool):
        return answer is expected
    if isinstance(expected, int | float):
        return isinstance(answer, int | float) and math.isclose(
            answer, expected, rel_tol=0.0, abs_tol=tolerance
        )
    if isinstance(expected, set | frozenset):
        return isinstance(answer, set | frozenset | list | tuple) and set(answer) == set(expected)
    if isinstance(expected, list | tuple):
        return (
            isinstance(answer, list | tuple)
            and len(answer) == len(expected)
            and all(_matches(a, e, tolerance) for a, e in zip(answer, expected, strict=True))
        )
    return bool(answer == expected)
