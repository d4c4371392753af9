"""Pure rendering: numpy arrays to PNG, examples to HTML, series to SVG.

No widgets and no I/O here, so everything is testable as plain functions. Output is
self-contained HTML (images are ``data:`` URIs, charts inline SVG): nothing is fetched from a CDN
and no JavaScript runs. Colours use JupyterLab's CSS variables with fallbacks, so the dashboard
follows the light and dark themes.
"""

from __future__ import annotations

import base64
import html
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FG = "var(--jp-content-font-color1, #1f2328)"
MUTED = "var(--jp-content-font-color2, #59636e)"
BORDER = "var(--jp-border-color2, #d0d7de)"
GOOD = "#1a7f37"
BAD = "#cf222e"
WARN_BG = "rgba(212, 167, 44, 0.22)"
BLUE = "#0969da"
ORANGE = "#bc4c00"

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


@dataclass(frozen=True)
class Series:
    """One line or bar series of a chart: a name, a colour and a value per x (``None`` = gap)."""

    name: str
    colour: str
    values: Sequence[float | None]
    bars: bool = False


def svg_chart(
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    title: str,
    unit: str,
    width: int = 460,
    height: int = 120,
    markers: Sequence[tuple[float, str]] = (),
    span: float | None = None,
) -> str:
    """A small inline SVG chart of ``series`` over ``xs`` (seconds; the axis shows them relative
    to the last one), with a legend and optional labelled vertical ``markers`` (x, text).

    The x axis covers ``span`` seconds up to the last x (default: all of ``xs``), so a growing
    series scrolls in from the right; bars are one second wide.
    """
    left, right, top, bottom = 40, 8, 18, 16
    plot_w, plot_h = width - left - right, height - top - bottom
    numbers = [v for s in series for v in s.values if v is not None]
    y_max = _nice_ceiling(max(numbers, default=0.0))
    x_max = xs[-1] if xs else 1.0
    span = max(span if span is not None else x_max - (xs[0] if xs else 0.0), 1.0)
    x_min = x_max - span

    def px(x: float) -> float:
        return left + (x - x_min) / span * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y / y_max) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'style="font-family:var(--jp-ui-font-family, sans-serif);font-size:10px">',
        f'<text x="{left}" y="11" fill="{FG}" font-weight="600">{esc(title)}</text>',
    ]
    legend_x = left + 8 + 7 * len(title)
    for s in series:
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
            f"{_fmt(y_max * frac)}{esc(unit)}</text>"
        )
    parts.append(f'<text x="{left}" y="{height - 3}" fill="{MUTED}">-{span:.0f} s</text>')
    parts.append(
        f'<text x="{left + plot_w}" y="{height - 3}" text-anchor="end" fill="{MUTED}">now</text>'
    )
    bar_series = [s for s in series if s.bars]
    slot = plot_w / (span + 1)
    bar_w = max(1.0, slot * 0.8 / max(len(bar_series), 1))
    for k, s in enumerate(bar_series):
        for x, v in zip(xs, s.values, strict=True):
            if v:
                x0 = px(x) - slot * 0.4 + k * bar_w
                parts.append(
                    f'<rect x="{x0:.1f}" y="{py(v):.1f}" width="{bar_w:.1f}" '
                    f'height="{py(0) - py(v):.1f}" fill="{s.colour}"/>'
                )
    for s in series:
        if s.bars:
            continue
        segments: list[list[str]] = []
        current: list[str] = []
        for x, v in zip(xs, s.values, strict=True):
            if v is None:
                segments.append(current)
                current = []
            else:
                current.append(f"{px(x):.1f},{py(v):.1f}")
        segments.append(current)
        for points in segments:
            if len(points) == 1:  # a lone value: a dot, since a one-point line is invisible
                cx, cy = points[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{s.colour}"/>')
            elif points:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" '
                    f'stroke="{s.colour}" stroke-width="1.6"/>'
                )
    for x, text in markers:
        mx = px(x)
        parts.append(
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="{ORANGE}" stroke-dasharray="3,2"/>'
        )
        parts.append(f'<text x="{mx + 2:.1f}" y="{top + 9}" fill="{ORANGE}">{esc(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.2g}"
