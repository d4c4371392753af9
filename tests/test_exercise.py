"""check_answer: the line a student sees for an unanswered, wrong and right answer."""

from __future__ import annotations

import pytest

from tfserve_nb.exercise import check_answer


def test_unanswered_asks_for_an_answer_and_names_the_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_answer(..., 2, look_at="the status cell")
    out = capsys.readouterr().out
    assert "not answered yet" in out and "the status cell" in out


def test_wrong_answer_says_what_to_look_at(capsys: pytest.CaptureFixture[str]) -> None:
    check_answer(3, 2, look_at="the version that answered")
    out = capsys.readouterr().out
    assert out.startswith("✘") and "3" in out and "the version that answered" in out


def test_right_answer_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    check_answer(" not_found ", "NOT_FOUND", look_at="x")
    assert capsys.readouterr().out.startswith("✔ right")


@pytest.mark.parametrize(
    ("answer", "expected", "tolerance", "right"),
    [
        (0.91, 0.9, 0.02, True),
        (0.95, 0.9, 0.02, False),
        (1, True, 0.0, False),  # a bool is not a number here
        ([2, 1], {1, 2}, 0.0, True),
        ([1, 2], [2, 1], 0.0, False),
        ([1.001, "A"], (1, "a"), 0.01, True),
        ("2", 2, 0.0, False),
    ],
)
def test_comparison_rules(
    answer: object,
    expected: object,
    tolerance: float,
    right: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_answer(answer, expected, look_at="x", tolerance=tolerance)
    assert capsys.readouterr().out.startswith("✔" if right else "✘")
