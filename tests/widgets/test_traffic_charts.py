"""The traffic charts of a promotion under traffic, as the panel draws them and as saved files:
one colour per answering version, red only where requests failed, latency per version.

The snapshot comes from :class:`TrafficStats` on a fake clock, so every bar is known; the same
charts drawn from real traffic are in ``test_panels.py`` and ``test_dashboard.py``."""

from __future__ import annotations

import io
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from tfserve_nb.traffic.statistics import TrafficSnapshot, TrafficStats
from tfserve_nb.widgets._render import (
    BAD,
    PALETTE,
    UNREPORTED,
    Chart,
    VersionColours,
    png_document,
    svg_chart,
    svg_document,
)
from tfserve_nb.widgets.traffic import traffic_charts

SVG = "{http://www.w3.org/2000/svg}"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record_promotion(failures: int) -> TrafficSnapshot:
    """v1 answers 3 s, both the 4th, v2 3 s, then v2 once and ``failures`` in the 8th second."""
    clock = Clock()
    stats = TrafficStats(clock)
    plan = [{1: 4}] * 3 + [{1: 2, 2: 3}] + [{2: 5}] * 3 + [{2: 1}]
    for second, answers in enumerate(plan):
        clock.now = second + 0.5
        for version, count in answers.items():
            for i in range(count):
                stats.record((version + i) / 1000.0, version)
    for _ in range(failures):
        stats.record(0.03, None, "[UNAVAILABLE] connection refused")
    return stats.snapshot()


@pytest.fixture
def promotion() -> TrafficSnapshot:
    """A promotion with two failed requests in its last second."""
    return record_promotion(failures=2)


def bars_by_x(svg: str) -> list[list[tuple[str, float]]]:
    """The fill colours and heights of the chart's bars at each x, left to right, bottom to top
    (legend boxes, at the top and 8 px wide, are not bars)."""
    stacks: dict[float, list[tuple[float, str, float]]] = defaultdict(list)
    for rect in ET.fromstring(svg).iter(f"{SVG}rect"):
        if rect.get("y") != "4":
            x, y, height = (float(rect.get(a, "")) for a in ("x", "y", "height"))
            stacks[x].append((-y, rect.get("fill", ""), height))
    return [[(fill, h) for _, fill, h in sorted(stack)] for _, stack in sorted(stacks.items())]


def legend(svg: str) -> list[str]:
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    boxes = [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if r.get("y") == "4"]
    return [str(text) for text in texts[1 : 1 + len(boxes)]]


def test_requests_are_stacked_per_version_with_errors_in_red_on_top(
    promotion: TrafficSnapshot,
) -> None:
    colours = VersionColours()
    requests, _ = traffic_charts(promotion, colours)
    svg = svg_chart(requests)
    v1, v2 = colours(1), colours(2)
    assert (v1, v2) == PALETTE[:2]
    stacks = bars_by_x(svg)
    assert [[fill for fill, _ in stack] for stack in stacks] == (
        [[v1]] * 3 + [[v1, v2]] + [[v2]] * 3 + [[v2, BAD]]
    )
    unit = stacks[4][0][1] / 5  # the pixels of one request
    assert [round(sum(h for _, h in stack) / unit, 3) for stack in stacks] == [
        4,
        4,
        4,
        5,
        5,
        5,
        5,
        3,
    ]
    assert round(stacks[3][0][1] / unit, 3) == 2 and round(stacks[7][1][1] / unit, 3) == 2
    assert legend(svg) == ["v1", "v2", "errors"]


def test_a_clean_promotion_has_no_red_at_all() -> None:
    clean = record_promotion(failures=0)
    requests, latency = traffic_charts(clean, VersionColours())
    for chart in (requests, latency):
        assert BAD not in svg_chart(chart)
    assert legend(svg_chart(requests)) == ["v1", "v2"]


def test_latency_is_one_solid_and_one_dashed_line_per_version_with_the_switch_marked(
    promotion: TrafficSnapshot,
) -> None:
    colours = VersionColours()
    _, latency = traffic_charts(promotion, colours)
    root = ET.fromstring(svg_chart(latency))
    lines = [
        (line.get("stroke"), line.get("stroke-dasharray") is not None)
        for line in root.iter(f"{SVG}polyline")
    ]
    assert lines == [
        (colours(1), False),
        (colours(1), True),
        (colours(2), False),
        (colours(2), True),
    ]
    marker = [line for line in root.iter(f"{SVG}line") if line.get("stroke") == colours(2)]
    assert len(marker) == 1 and marker[0].get("stroke-dasharray") == "3,2"
    assert legend(svg_chart(latency)) == ["v1", "v2"]
    assert latency.unit == " ms" and "p95 dashed" in latency.title


def test_a_version_keeps_its_colour_as_the_chart_scrolls() -> None:
    colours = VersionColours()
    assert [colours(v) for v in (7, 3, 7, 1712345678)] == [
        PALETTE[0],
        PALETTE[1],
        PALETTE[0],
        PALETTE[2],
    ]
    assert colours(None) == UNREPORTED and BAD not in PALETTE
    for version in range(100, 100 + len(PALETTE)):
        colours(version)
    assert colours(3) == PALETTE[1]  # an old version keeps its colour when the palette wraps


def test_the_svg_document_stands_alone_with_both_charts(promotion: TrafficSnapshot) -> None:
    document = svg_document(traffic_charts(promotion, VersionColours()))
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns=')
    root = ET.fromstring(document)
    assert root.tag == f"{SVG}svg" and (root.get("width"), root.get("height")) == ("460", "240")
    assert [child.tag for child in root] == [f"{SVG}rect", f"{SVG}g", f"{SVG}g"]
    assert len(list(root.iter(f"{SVG}svg"))) == 3  # the document and its two charts
    assert "var(" not in document and "#59636e" in document  # theme colours fixed for files


def png_colours(png: bytes) -> set[str]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > 0 and image.height > 0
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    return {"#{:02x}{:02x}{:02x}".format(*p) for p in np.unique(pixels, axis=0)}


def test_the_png_shows_the_versions_colours_and_red_errors(promotion: TrafficSnapshot) -> None:
    colours = VersionColours()
    requests, latency = traffic_charts(promotion, colours)
    png = png_document([requests, latency])
    assert {colours(1), colours(2), BAD} <= png_colours(png)
    assert BAD not in png_colours(png_document([latency]))  # red stands for errors only
    assert Image.open(io.BytesIO(png)).size == (920, 480)  # two 460x120 charts, 2 px per point


def test_without_matplotlib_the_png_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'tfserve-nb\[examples\]'"):
        png_document([Chart([0.0], [], "empty")])
