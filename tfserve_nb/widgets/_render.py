"""Pure rendering: numpy arrays to PNG, examples to HTML, charts to SVG (and to PNG for files).

No widgets and no I/O here, so everything is testable as plain functions. Output is
self-contained HTML (images are ``data:`` URIs, charts inline SVG): nothing is fetched from a CDN
and no JavaScript runs. Colours use JupyterLab's CSS variables with fallbacks, so the dashboard
follows the light and dark themes; a chart meant for a file (:func:`svg_document`,
:func:`png_document`) uses the fallbacks.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FG = "var(--jp-content-font-color1, #1f2328)"
MUTED = "var(--jp-content-font-color2, #59636e)"
BORDER = "var(--jp-border-color2, #d0d7de)"
GOOD = "#1a7f37"
BAD = "#cf222e"
WARN_BG = "rgba(212, 167, 44, 0.22)"
BLUE = "#0969da"

STATE_COLOURS = {
    "START": "#6e7781",
    "LOADING": "#9a6700",
    "AVAILABLE": GOOD,
    "UNLOADING": "#8250df",
    "END": "#57606a",
    "UNKNOWN": "#6e7781",
}
"""Pill colour for each ``ModelVersionStatus.State`` name."""


def esc(value: object) -> str:
    """``str(value)`` escaped for HTML text and attributes."""
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------------------- images


def png_bytes(image: np.ndarray) -> bytes:
    """Encode ``image`` as PNG with numpy and zlib only.

    ``image`` is ``(H, W)`` (grey), ``(H, W, 1)``, ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA).
    Integer images in ``0..255`` are kept as they are; anything else is scaled from its own
    min..max to ``0..255`` (a constant image becomes black).
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"cannot encode an array of shape {array.shape} as an image")
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 255:
        pixels = array.astype(np.uint8)
    else:
        values = np.nan_to_num(array.astype(np.float64))
        low, high = float(values.min()), float(values.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        pixels = np.round((values - low) * scale).astype(np.uint8)
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else {3: 2, 4: 6}[pixels.shape[2]]
    rows = pixels.reshape(height, -1)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def upscale(image: np.ndarray, min_side: int) -> np.ndarray:
    """Nearest-neighbour enlarge ``image`` by a whole factor so its shorter side is at least
    ``min_side`` pixels (small digits stay crisp in every browser)."""
    side = min(image.shape[0], image.shape[1])
    factor = max(1, math.ceil(min_side / max(side, 1)))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def image_shape_for(example_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The image shape one example can be shown as, or ``None`` for tabular data.

    ``(H, W)`` and ``(H, W, C)`` with C in 1, 3, 4 are images; a flat vector is an image when its
    length is a square of a side of at least 4 (64 → 8x8, 784 → 28x28) or three times such a
    square (RGB, e.g. 3072 → 32x32x3).
    """
    if len(example_shape) == 2 and min(example_shape) >= 4:
        return example_shape
    if len(example_shape) == 3 and example_shape[2] in (1, 3, 4) and min(example_shape[:2]) >= 4:
        return example_shape
    if len(example_shape) == 1:
        size = example_shape[0]
        for channels in (1, 3):
            side = math.isqrt(size // channels)
            if side >= 4 and side * side * channels == size:
                return (side, side) if channels == 1 else (side, side, channels)
    return None


def img_tag(image: np.ndarray, *, min_side: int = 48, title: str = "") -> str:
    """An ``<img>`` holding ``image`` as an inline PNG, enlarged to at least ``min_side`` px."""
    data = base64.b64encode(png_bytes(upscale(image, min_side))).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{data}" alt="{esc(title)}" title="{esc(title)}" '
        'style="display:block;image-rendering:pixelated;border-radius:3px">'
    )


def value_cells(example: np.ndarray, max_values: int) -> str:
    """A compact row of a tabular example's values (the first ``max_values``, then "…")."""
    flat = np.asarray(example).reshape(-1)
    shown = ", ".join(
        f"{v:.4g}" if isinstance(v, float | np.floating) else esc(v)
        for v in flat[:max_values].tolist()
    )
    more = f", … ({flat.size} values)" if flat.size > max_values else ""
    return f'<span style="font-family:var(--jp-code-font-family, monospace)">{shown}{more}</span>'


# --------------------------------------------------------------------------------- tables


def pill(text: str, colour: str) -> str:
    """A small rounded label, e.g. a version state."""
    return (
        f'<span style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px;'
        f'font-size:11px;font-weight:600;white-space:nowrap">{esc(text)}</span>'
    )


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    row_styles: Sequence[str] | None = None,
    css_class: str = "",
) -> str:
    """An HTML table. ``headers`` and cells are HTML already; ``row_styles`` are CSS per row."""
    cell = f"padding:3px 8px;border-bottom:1px solid {BORDER};text-align:left;vertical-align:middle"
    head = "".join(f'<th style="{cell};color:{MUTED};font-weight:600">{h}</th>' for h in headers)
    body = []
    for i, row in enumerate(rows):
        style = row_styles[i] if row_styles else ""
        cells = "".join(f'<td style="{cell}">{c}</td>' for c in row)
        body.append(f'<tr style="{style}">{cells}</tr>')
    return (
        f'<table class="{esc(css_class)}" '
        f'style="border-collapse:collapse;font-size:12px;color:{FG}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def note(text: str, colour: str = MUTED) -> str:
    """A line of small explanatory text (``text`` is HTML)."""
    return f'<div style="color:{colour};font-size:12px;line-height:1.45;margin:4px 0">{text}</div>'


# --------------------------------------------------------------------------------- charts

PALETTE = ("#0969da", "#e69f00", "#009e73", "#8250df", "#56b4e9", "#9a6700", "#1b7c83")
"""Colours for versions in charts, in the order versions get them; none is close to :data:`BAD`,
which stays the colour of errors."""

UNREPORTED = "#8c959f"
"""The colour of requests whose answering version was not reported."""

SVG_NAMESPACE = "http://www.w3.org/2000/svg"

_THEME_VARIABLE = re.compile(r"var\(--[\w-]+,\s*([^()]*?)\s*\)")
"""``var(--name, fallback)`` (a fallback without parentheses, as every theme colour here has)."""


class VersionColours:
    """A colour per version for charts: a version gets the next :data:`PALETTE` colour the first
    time it is asked for (after the last, the first again) and keeps it, so it has the same colour
    while a chart scrolls and in every chart drawn with the same instance; ``None`` (version not
    reported) is :data:`UNREPORTED`. Holds one entry per version ever asked for. Not thread-safe:
    ask from the thread that draws."""

    def __init__(self) -> None:
        self._colours: dict[int, str] = {}

    def __call__(self, version: int | None) -> str:
        if version is None:
            return UNREPORTED
        return self._colours.setdefault(version, PALETTE[len(self._colours) % len(PALETTE)])


@dataclass(frozen=True)
class Series:
    """One series of a chart: a legend entry (``name``; ``""`` for none), a colour and a value per
    x (``None``: a gap in a line, nothing in a bar). Bars are stacked in the order the chart lists
    them, from zero up; lines are solid or ``dashed``."""

    name: str
    colour: str
    values: Sequence[float | None]
    bars: bool = False
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A labelled dashed vertical line at ``x``."""

    x: float
    text: str
    colour: str


@dataclass(frozen=True)
class Chart:
    """What one small chart shows, for :func:`svg_chart` and :func:`png_document` alike:
    ``series`` over ``xs`` (seconds; the axis shows them relative to the last one) with a title,
    a y ``unit``, a legend and ``markers``.

    The x axis covers ``span`` seconds up to the last x (default: all of ``xs``), so a growing
    series scrolls in from the right; bars are one second wide. The y axis runs from 0 to a round
    number at least the highest stack of bars and the highest line value.
    """

    xs: Sequence[float]
    series: Sequence[Series]
    title: str
    unit: str = ""
    markers: Sequence[Marker] = ()
    span: float | None = None

    def x_range(self) -> tuple[float, float]:
        """The seconds at the left and right ends of the x axis."""
        x_max = self.xs[-1] if self.xs else 1.0
        first = self.xs[0] if self.xs else 0.0
        return x_max - max(self.span if self.span is not None else x_max - first, 1.0), x_max

    def y_max(self) -> float:
        """The top of the y axis."""
        stacked = [
            bottom + (v or 0.0)
            for s, bottoms in self.bar_layers()
            for bottom, v in zip(bottoms, s.values, strict=True)
        ]
        lines = [v for s in self.series if not s.bars for v in s.values if v is not None]
        return _nice_ceiling(max(stacked + lines, default=0.0))

    def bar_layers(self) -> list[tuple[Series, list[float]]]:
        """Each bar series with the height its bars start from at each x (the ones below)."""
        layers = []
        bottoms = [0.0] * len(self.xs)
        for s in self.series:
            if s.bars:
                layers.append((s, bottoms))
                bottoms = [b + (v or 0.0) for b, v in zip(bottoms, s.values, strict=True)]
        return layers

    def line_segments(self, s: Series) -> list[list[tuple[float, float]]]:
        """A line series' unbroken runs of ``(x, value)`` points (split at ``None``)."""
        segments: list[list[tuple[float, float]]] = [[]]
        for x, v in zip(self.xs, s.values, strict=True):
            if v is None:
                segments.append([])
            else:
                segments[-1].append((x, v))
        return [points for points in segments if points]


def svg_chart(chart: Chart, *, width: int = 460, height: int = 120) -> str:
    """``chart`` as a small inline SVG (theme colours as JupyterLab CSS variables)."""
    left, right, top, bottom = 40, 8, 18, 16
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = chart.y_max()
    x_min, x_max = chart.x_range()
    span = x_max - x_min

    def px(x: float) -> float:
        return left + (x - x_min) / span * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y / y_max) * plot_h

    parts = [
        f'<svg xmlns="{SVG_NAMESPACE}" width="{width}" height="{height}" '
        f'style="font-family:var(--jp-ui-font-family, sans-serif);font-size:10px">',
        f'<text x="{left}" y="11" fill="{FG}" font-weight="600">{esc(chart.title)}</text>',
    ]
    legend_x = left + 8 + 7 * len(chart.title)
    for s in chart.series:
        if s.name:
            parts.append(f'<rect x="{legend_x}" y="4" width="8" height="8" fill="{s.colour}"/>')
            parts.append(f'<text x="{legend_x + 11}" y="11" fill="{MUTED}">{esc(s.name)}</text>')
            legend_x += 18 + 6 * len(s.name)
    for frac in (0.0, 0.5, 1.0):
        y = py(y_max * frac)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{BORDER}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{_fmt(y_max * frac)}{esc(chart.unit)}</text>"
        )
    parts.append(f'<text x="{left}" y="{height - 3}" fill="{MUTED}">-{span:.0f} s</text>')
    parts.append(
        f'<text x="{left + plot_w}" y="{height - 3}" text-anchor="end" fill="{MUTED}">now</text>'
    )
    slot = plot_w / (span + 1)
    for s, bottoms in chart.bar_layers():
        for x, v, base in zip(chart.xs, s.values, bottoms, strict=True):
            if v:
                parts.append(
                    f'<rect x="{px(x) - slot * 0.4:.1f}" y="{py(base + v):.1f}" '
                    f'width="{max(1.0, slot * 0.8):.1f}" height="{py(base) - py(base + v):.1f}" '
                    f'fill="{s.colour}"/>'
                )
    for s in chart.series:
        if s.bars:
            continue
        dash = ' stroke-dasharray="4,3"' if s.dashed else ""
        for points in chart.line_segments(s):
            if len(points) == 1:  # a lone value: a dot, since a one-point line is invisible
                ((x, v),) = points
                parts.append(f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="2" fill="{s.colour}"/>')
            else:
                coordinates = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in points)
                parts.append(
                    f'<polyline points="{coordinates}" fill="none" '
                    f'stroke="{s.colour}" stroke-width="1.6"{dash}/>'
                )
    for marker in chart.markers:
        mx = px(marker.x)
        parts.append(
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="{marker.colour}" stroke-dasharray="3,2"/>'
        )
        parts.append(
            f'<text x="{mx + 2:.1f}" y="{top + 9}" fill="{marker.colour}">{esc(marker.text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def plain_colours(svg: str) -> str:
    """``svg`` with every JupyterLab theme variable replaced by its (light theme) fallback, for
    viewers outside JupyterLab."""
    return _THEME_VARIABLE.sub(r"\1", svg)


def svg_document(charts: Sequence[Chart], *, width: int = 460, height: int = 120) -> str:
    """One standalone SVG document (XML declaration, SVG namespace, white background, plain
    colours) with ``charts`` one under the other as :func:`svg_chart` draws them: it opens on its
    own in a browser or a slide deck."""
    total = height * len(charts)
    body = "".join(
        f'<g transform="translate(0,{i * height})">{svg_chart(c, width=width, height=height)}</g>'
        for i, c in enumerate(charts)
    )
    return plain_colours(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="{SVG_NAMESPACE}" width="{width}" height="{total}" '
        f'viewBox="0 0 {width} {total}"><rect width="100%" height="100%" fill="#ffffff"/>'
        f"{body}</svg>\n"
    )


def png_document(
    charts: Sequence[Chart], *, width: int = 460, height: int = 120, scale: float = 2.0
) -> bytes:
    """``charts`` one under the other as a PNG, drawn with matplotlib the way :func:`svg_chart`
    draws them (stacked bars, solid and dashed lines, markers, legends; plain colours on white),
    ``width`` x ``height`` points per chart at ``scale`` pixels per point.

    matplotlib is imported here, not with the module: it is in tfserve-nb's ``examples`` extra,
    and an ``ImportError`` naming that extra is raised without it.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "drawing a chart as PNG needs matplotlib, which tfserve-nb's examples extra installs: "
            "pip install 'tfserve-nb[examples]' (or save the chart as .svg)"
        ) from exc
    figure = Figure(figsize=(width / 72, height * len(charts) / 72), dpi=72 * scale)
    figure.set_facecolor("#ffffff")
    axes = figure.subplots(len(charts), 1, squeeze=False)[:, 0]
    for ax, chart in zip(axes, charts, strict=True):
        _draw_on(ax, chart)
    figure.tight_layout(pad=0.4)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="#ffffff")
    return buffer.getvalue()


def _draw_on(ax: Any, chart: Chart) -> None:
    """Draw ``chart`` on a matplotlib ``Axes``."""
    x_min, x_max = chart.x_range()
    fg, muted, border = (plain_colours(c) for c in (FG, MUTED, BORDER))
    for s, bottoms in chart.bar_layers():
        ax.bar(
            [x - x_max for x in chart.xs],
            [v or 0.0 for v in s.values],
            bottom=bottoms,
            width=0.8,
            color=s.colour,
            linewidth=0,
            label=s.name or None,
        )
    for s in chart.series:
        if s.bars:
            continue
        style = {"color": s.colour, "linewidth": 1.6, "linestyle": (0, (4, 3)) if s.dashed else "-"}
        for i, points in enumerate(chart.line_segments(s)):
            label = s.name if s.name and i == 0 else None
            xs, ys = [x - x_max for x, _ in points], [v for _, v in points]
            ax.plot(
                xs, ys, marker="o" if len(points) == 1 else "", markersize=4, label=label, **style
            )
    y_max = chart.y_max()
    for marker in chart.markers:
        ax.axvline(marker.x - x_max, color=marker.colour, linewidth=1, linestyle=(0, (3, 2)))
        ax.text(
            marker.x - x_max + 0.4,
            y_max * 0.92,
            marker.text,
            color=marker.colour,
            fontsize=7,
            va="top",
        )
    ax.set_xlim(x_min - x_max - 0.5, 0.5)
    ax.set_ylim(0, y_max)
    ax.set_xticks([x_min - x_max, 0], [f"-{x_max - x_min:.0f} s", "now"])
    ax.set_yticks([0, y_max / 2, y_max], [f"{_fmt(y_max * f)}{chart.unit}" for f in (0, 0.5, 1)])
    ax.tick_params(labelsize=7, colors=muted, length=0)
    ax.grid(axis="y", color=border, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color(border)
    ax.set_title(chart.title, loc="left", fontsize=8, fontweight="bold", color=fg)
    named = sum(1 for s in chart.series if s.name)
    if named:
        ax.legend(
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncols=named,
            fontsize=7,
            frameon=False,
            handlelength=1.2,
            borderaxespad=0.1,
            labelcolor=muted,
        )


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.2g}"
