"""PredictionPanel: every served version's answers on the same examples, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets

from ..errors import InvalidArgumentError, TfServeNbError
from ._panel import Panel
from ._render import (
    BAD,
    BLUE,
    GOOD,
    MUTED,
    WARN_BG,
    esc,
    image_shape_for,
    img_tag,
    note,
    pill,
    value_cells,
)
from ._render import table as html_table


@dataclass(frozen=True)
class Answers:
    """One version's answers on all examples: ``values`` are class indices (``is_class``) or
    regression values; ``confidence`` the winning probability per example (classes only)."""

    values: np.ndarray
    confidence: np.ndarray | None
    is_class: bool


def interpret(outputs: Any, output: str | None = None) -> Answers:
    """Read a ``predict`` result as per-example answers.

    ``outputs`` is an array or a dict of arrays (several outputs); ``output`` picks one by alias
    (default: the only one, else ``output_0``, else the first in alphabetical order). A
    ``(n, k)`` output with ``k > 1`` is a classifier: the answer is the arg-max and the confidence
    its probability (rows that are not probabilities are soft-maxed first). Anything else is
    read as one regression value per example. An ``output`` that is not among the outputs raises
    :class:`~tfserve_nb.errors.InvalidArgumentError`.
    """
    if isinstance(outputs, dict):
        if output is None:
            output = "output_0" if "output_0" in outputs else sorted(outputs)[0]
        if output not in outputs:
            raise InvalidArgumentError(
                f"output {output!r} not in the model's outputs {sorted(outputs)}"
            )
        outputs = outputs[output]
    array = np.asarray(outputs)
    if array.ndim == 2 and array.shape[1] > 1:
        scores = array.astype(np.float64)
        is_probability = (
            scores.min() >= 0
            and scores.max() <= 1
            and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)
        )
        if not is_probability:
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
        return Answers(scores.argmax(axis=1), scores.max(axis=1), True)
    return Answers(array.reshape(len(array), -1)[:, 0].astype(np.float64), None, False)


@dataclass(frozen=True)
class _Run:
    """Answers fetched for one set of served versions (``key``); a str is a version's error."""

    key: tuple[Any, ...]
    answers: dict[int, Answers | str]


class PredictionPanel(Panel):
    """The example inputs as a person would look at them, with each served version's prediction
    and confidence side by side; rows where versions disagree are highlighted and listed first;
    with ``labels`` (the true answers) each version's accuracy is shown.

    ``examples`` is an array with one example per row, sent as the model's (single) input.
    Image-like examples (``(n, H, W[, C])``, or flat with a square size such as 64 or 784) are
    drawn as small images; ``image_shape`` forces a shape, ``image_shape=()`` forces a table.
    The panel refreshes by itself when the served versions or labels change; twin: :meth:`refresh`.
    """

    shown_versions = traitlets.Tuple(help="versions whose answers the table shows, ascending")
    accuracy: traitlets.Dict[int, float] = traitlets.Dict(
        key_trait=traitlets.Int(),
        help="version -> fraction of examples answered right (classifier, labels given)",
    )
    disagreements = traitlets.Int(0, help="examples on which the shown versions disagree")
    errors: traitlets.Dict[int, str] = traitlets.Dict(
        key_trait=traitlets.Int(), help="version -> error text when its predict call failed"
    )
    max_rows = traitlets.Int(8, min=1, help="how many examples the table shows at most")

    def __init__(
        self,
        source: Any,
        examples: Any = None,
        labels: Any = None,
        *,
        class_names: Sequence[str] | None = None,
        output: str | None = None,
        image_shape: tuple[int, ...] | None = None,
        max_rows: int = 8,
        **monitor_options: Any,
    ) -> None:
        super().__init__(source, "Predictions by version", **monitor_options)
        self.max_rows = max_rows
        self.examples = None if examples is None else np.asarray(examples)
        self.labels = None if labels is None else np.asarray(labels)
        if (
            self.examples is not None
            and self.labels is not None
            and len(self.labels) != len(self.examples)
        ):
            raise InvalidArgumentError(
                f"labels has {len(self.labels)} entries for "
                f"{len(self.examples)} examples; pass one label per example"
            )
        self.class_names = list(class_names) if class_names is not None else None
        self.output = output
        self.view = widgets.HTML()
        self.view.add_class("tfnb-predictions")
        self._set_body(self.view)
        self._input_cells = self._draw_inputs(image_shape)
        self._shown_key: tuple[Any, ...] | None = None
        self._watch(self._served_changed, ["served", "labels"])
        self._served_changed()

    def refresh(self) -> None:
        """Predict again with every served version now (blocks) and redraw the table; without
        ``examples`` there is nothing to predict, and nothing is sent."""
        if self.examples is not None:
            self.monitor.dispatcher.run(self._apply, self._fetch(self._key()))

    # ------------------------------------------------------------------ fetching

    def _key(self) -> tuple[Any, ...]:
        return (self.monitor.served, tuple(sorted(self.monitor.labels.items())))

    def _served_changed(self, _change: Any = None) -> None:
        key = self._key()
        if self.examples is None:
            self.view.value = note(
                "Pass <code>examples=</code> (and <code>labels=</code>) to "
                "compare the served versions' predictions."
            )
            return
        if key != self._shown_key:
            self.monitor.runner.submit(lambda: self._fetch(key), self._apply)

    def _fetch(self, key: tuple[Any, ...]) -> _Run:
        assert self.examples is not None
        answers: dict[int, Answers | str] = {}
        for version in key[0]:
            try:
                result = self.monitor.target.predict(self.examples, version=version)
                answers[version] = interpret(result.outputs, self.output)
            except TfServeNbError as exc:
                answers[version] = str(exc)
        return _Run(key, answers)

    def _apply(self, run: _Run) -> None:
        if run.key != self._key() and self._shown_key is not None:
            return  # the served versions changed again meanwhile; a newer fetch is queued
        self._shown_key = run.key
        self._render(run)

    # ------------------------------------------------------------------ drawing

    def _draw_inputs(self, image_shape: tuple[int, ...] | None) -> list[str]:
        if self.examples is None:
            return []
        shape = image_shape_for(self.examples.shape[1:]) if image_shape is None else image_shape
        if shape:
            return [
                img_tag(x.reshape(shape), title=f"example {i}") for i, x in enumerate(self.examples)
            ]
        return [value_cells(x, 6) for x in self.examples]

    def _name(self, value: float, is_class: bool) -> str:
        if not is_class:
            return f"{value:.4g}"
        index = int(value)
        if self.class_names is not None and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)

    def _render(self, run: _Run) -> None:
        assert self.examples is not None
        ok = {v: a for v, a in run.answers.items() if isinstance(a, Answers)}
        self.errors = {v: a for v, a in run.answers.items() if isinstance(a, str)}
        versions = sorted(run.answers)
        n = len(self.examples)
        if len(ok) > 1:
            stacked = np.stack([a.values for a in ok.values()])
            if next(iter(ok.values())).is_class:
                disagree = (stacked != stacked[0]).any(axis=0)
            else:
                disagree = ~np.isclose(stacked, stacked[0], rtol=1e-3, atol=1e-6).all(axis=0)
        else:
            disagree = np.zeros(n, dtype=bool)
        right = {v: self._right(a) for v, a in ok.items()} if self.labels is not None else {}
        wrong = np.zeros(n, dtype=bool)
        for hits in right.values():
            wrong |= ~hits
        accuracy = {v: float(right[v].mean()) for v, a in ok.items() if v in right and a.is_class}
        order = sorted(range(n), key=lambda i: (not disagree[i], not wrong[i], i))
        shown = order[: self.max_rows]

        labels_of: dict[int, list[str]] = {}
        for label, version in sorted(self.monitor.labels.items()):
            labels_of.setdefault(version, []).append(label)
        headers = ["#", "input"] + (["truth"] if self.labels is not None else [])
        headers += [
            f"v{v} " + " ".join(pill(lb, BLUE) for lb in labels_of.get(v, [])) for v in versions
        ]
        rows, styles = [], []
        for i in shown:
            row = [str(i), self._input_cells[i]]
            if self.labels is not None:
                row.append(f"<b>{esc(self._truth_name(i))}</b>")
            for version in versions:
                row.append(self._answer_cell(run.answers[version], right.get(version), i))
            rows.append(row)
            styles.append(f"background:{WARN_BG}" if disagree[i] else "")
        if self.labels is not None:
            summary = ["", "<b>accuracy</b>", f"<b>{n}</b> examples"]
            summary += [self._score_cell(run.answers[v], right.get(v)) for v in versions]
            rows.append(summary)
            styles.append("")
        caption = (
            f"{len(versions)} served version{'s' if len(versions) != 1 else ''} · "
            f"showing {len(shown)} of {n} examples"
        )
        if len(ok) > 1:
            caption += (
                f" · <b>{int(disagree.sum())}</b> where versions disagree "
                "(highlighted, listed first)"
            )
        body = html_table(headers, rows, row_styles=styles, css_class="tfnb-predictions-table")
        if not versions:
            body = note("No version is AVAILABLE right now.")
        self.view.value = note(caption) + body
        with self.hold_trait_notifications():
            self.shown_versions = tuple(versions)
            self.accuracy = accuracy
            self.disagreements = int(disagree.sum())

    def _right(self, answers: Answers) -> np.ndarray:
        assert self.labels is not None
        if answers.is_class:
            return answers.values == self.labels.astype(np.int64)
        return np.isclose(answers.values, self.labels.astype(np.float64), rtol=1e-2)

    def _truth_name(self, i: int) -> str:
        assert self.labels is not None
        value = self.labels[i]
        is_class = np.issubdtype(self.labels.dtype, np.integer)
        return self._name(float(value), is_class)

    def _answer_cell(self, answers: Answers | str, right: np.ndarray | None, i: int) -> str:
        if isinstance(answers, str):
            return f'<span style="color:{BAD}" title="{esc(answers)}">error</span>'
        text = f"<b>{esc(self._name(answers.values[i], answers.is_class))}</b>"
        if answers.confidence is not None:
            text += f' <span style="color:{MUTED}">{answers.confidence[i]:.0%}</span>'
        if right is not None:
            text += (
                f' <span style="color:{GOOD if right[i] else BAD}">'
                f"{'✓' if right[i] else '✗'}</span>"
            )
        return text

    def _score_cell(self, answers: Answers | str, right: np.ndarray | None) -> str:
        if isinstance(answers, str):
            return f'<span style="color:{BAD}">{esc(answers)}</span>'
        if answers.is_class and right is not None:
            return f"<b>{right.mean():.1%}</b>"
        assert self.labels is not None
        error = np.abs(answers.values - self.labels.astype(np.float64)).mean()
        return f"<b>MAE {error:.3g}</b>"
