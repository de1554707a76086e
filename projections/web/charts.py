"""Charts as server-rendered SVG: pictures that need no JavaScript, for the operator dashboard (and any
page that shows a trend, e.g. a county's lists per month).

Pure: each function takes the numbers and the words and returns one ``<svg>`` element as text, every
piece of text escaped, so a page can put it in as it is (Jinja: ``{{ chart | safe }}``). Each chart
says what it shows to a screen reader (``role="img"``, an ``aria-label`` and a ``<title>``) and each
bar, point or cell carries its exact value in a ``<title>`` (shown on hover). Sizes are in user units
with a ``viewBox``: the chart scales with the page's width.

  * ``line_chart``: one or more series over labelled positions (hours, months), a gap where a value
    is missing;
  * ``bar_chart``: one bar per labelled position (stacked when several series are given);
  * ``heatmap``: rows by columns (departments by months), each cell coloured by a value from 0 to 1
    and labelled with a text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "bar_chart", "heatmap", "line_chart", "nice_ceiling"]

PALETTE = ("#a4161a", "#1d4e89", "#2a9d8f", "#e9a23b", "#6a4c93", "#5c5c5c")
FONT = 'font-family="Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif"'
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 28, 44


@dataclass(frozen=True)
class Series:
    """A named row of values, one per position of the chart (None: no value there)."""

    name: str
    values: Sequence[float | None]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value`` (1 for nothing above 0): the top of an axis."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def _number(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:,.2f}".rstrip("0").rstrip(".")


def _frame(title: str, width: int, height: int, summary: str, body: list[str]) -> str:
    t = escape(title)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{t}：{escape(summary)}" {FONT} font-size="12">'
            f"<title>{t}</title>"
            f'<text x="{MARGIN_LEFT}" y="16" font-size="13" font-weight="bold" fill="#222">{t}</text>'
            + "".join(body) + "</svg>")


def _empty(width: int, height: int) -> str:
    return (f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#888" '
            f'font-size="14">暂无数据</text>')


def _axes(labels: Sequence[str], top: float, unit: str, width: int, height: int,
          label_every: int) -> tuple[list[str], Callable[[int], float], Callable[[float], float]]:
    """The y grid (0 to top, five steps) and the x labels; the functions giving a position's x and a value's y."""
    plot_w, plot_h = width - MARGIN_LEFT - MARGIN_RIGHT, height - MARGIN_TOP - MARGIN_BOTTOM
    n = max(1, len(labels))

    def x(i: int) -> float:
        return MARGIN_LEFT + plot_w * (i + 0.5) / n

    def y(v: float) -> float:
        return MARGIN_TOP + plot_h * (1 - min(max(v, 0.0), top) / top)

    out = []
    for k in range(6):
        v = top * k / 5
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="{"#999" if k == 0 else "#e4e4e4"}" stroke-width="1"/>')
        out.append(f'<text x="{MARGIN_LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{_number(v)}</text>')
    if unit:
        out.append(f'<text x="{MARGIN_LEFT - 6}" y="{MARGIN_TOP - 8}" text-anchor="end" fill="#555">{escape(unit)}</text>')
    every = max(1, label_every)
    for i, label in enumerate(labels):
        if i % every == 0:
            out.append(f'<text x="{x(i):.1f}" y="{height - MARGIN_BOTTOM + 16}" text-anchor="middle" '
                       f'fill="#555">{escape(label)}</text>')
    return out, x, y


def _legend(series: Sequence[Series], width: int, height: int) -> list[str]:
    if len(series) < 2:
        return []
    out, left = [], MARGIN_LEFT
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{left}" y="{height - 16}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{left + 14}" y="{height - 7}" fill="#333">{escape(s.name)}</text>')
        left += 24 + 13 * len(s.name)
    return out


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, unit: str = "",
               width: int = 720, height: int = 240, label_every: int = 1) -> str:
    """Lines over the positions ``labels`` (a missing value breaks its line); y from 0 to a round top."""
    values = [v for s in series for v in s.values if v is not None]
    top = nice_ceiling(max(values, default=0.0))
    body, x, y = _axes(labels, top, unit, width, height, label_every)
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for j, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((x(j), y(v)))
                body.append(f'<circle cx="{x(j):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                            f"<title>{escape(s.name)} {escape(labels[j])}：{_number(v)}{escape(unit)}</title></circle>")
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
                body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
    if not values:
        body.append(_empty(width, height))
    body += _legend(series, width, height)
    latest = ", ".join(f"{s.name} {_number(v)}{unit}" for s in series
                       for v in [next((v for v in reversed(s.values) if v is not None), None)] if v is not None)
    return _frame(title, width, height, f"{len(labels)} 个时点；最新：{latest or '无数据'}", body)


def bar_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, unit: str = "",
              width: int = 720, height: int = 240, label_every: int = 1) -> str:
    """One bar per position; several series are stacked in their order (missing values count 0)."""
    totals = [sum((s.values[j] or 0.0) for s in series) for j in range(len(labels))]
    top = nice_ceiling(max(totals, default=0.0))
    if top < 5 and all(float(v).is_integer() for s in series for v in s.values if v is not None):
        top = 5.0  # counts: whole numbers on the axis
    body, x, y = _axes(labels, top, unit, width, height, label_every)
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    bar_w = max(1.0, 0.7 * plot_w / max(1, len(labels)))
    for j, label in enumerate(labels):
        base = 0.0
        for i, s in enumerate(series):
            v = s.values[j] or 0.0
            if v <= 0:
                continue
            colour = PALETTE[i % len(PALETTE)]
            body.append(f'<rect x="{x(j) - bar_w / 2:.1f}" y="{y(base + v):.1f}" width="{bar_w:.1f}" '
                        f'height="{y(base) - y(base + v):.1f}" fill="{colour}">'
                        f"<title>{escape(s.name)} {escape(label)}：{_number(v)}{escape(unit)}</title></rect>")
            base += v
    if not any(totals):
        body.append(_empty(width, height))
    body += _legend(series, width, height)
    return _frame(title, width, height, f"{len(labels)} 个时段，合计 {_number(sum(totals))}{unit}，"
                                        f"最高 {_number(max(totals, default=0.0))}{unit}", body)


def _shade(value: float, good_high: bool, span: tuple[float, float] = (0.0, 1.0)) -> str:
    """A colour from red (bad) through amber to green (good): a value at or beyond one end of `span`
    takes that end's colour (for `good_high`, the high end is green; otherwise red)."""
    low, high = span
    v = min(max((value - low) / (high - low), 0.0), 1.0)
    v = v if good_high else 1 - v
    red, green = (200, int(60 + 140 * v / 0.5)) if v < 0.5 else (int(200 - 150 * (v - 0.5) / 0.5), 170)
    return f"#{red:02x}{green:02x}5a"


def heatmap(rows: Sequence[str], columns: Sequence[str], cells: Mapping[tuple[int, int], tuple[float, str]], *,
            title: str, good_high: bool = True, span: tuple[float, float] = (0.0, 1.0), row_width: int = 120,
            cell_width: int = 64, cell_height: int = 26) -> str:
    """A grid of ``rows`` x ``columns``; the cell (i, j) coloured by its value from 0 to 1 and labelled
    with its text, ``cells[(i, j)] = (value, text)`` (absent: grey, "—"). ``good_high``: high values
    are green (a score), else red (a share of late records); the colours run over `span` (a share of
    late records from 0 to 0.3: 30 % late is already all red). The row labels get the width they need."""
    row_width = max(row_width, 16 + int(12.5 * max((len(r) for r in rows), default=0)))  # 12 px characters
    width = row_width + cell_width * max(1, len(columns)) + 8
    height = MARGIN_TOP + 22 + cell_height * max(2, len(rows)) + 8
    body = []
    top = MARGIN_TOP + 22
    for j, column in enumerate(columns):
        body.append(f'<text x="{row_width + cell_width * (j + 0.5):.1f}" y="{top - 6}" text-anchor="middle" '
                    f'fill="#555">{escape(column)}</text>')
    shown = 0
    for i, row in enumerate(rows):
        y = top + cell_height * i
        body.append(f'<text x="{row_width - 8}" y="{y + cell_height * 0.65:.1f}" text-anchor="end" '
                    f'fill="#222">{escape(row)}</text>')
        for j, column in enumerate(columns):
            cell = cells.get((i, j))
            fill = "#eeeeee" if cell is None else _shade(cell[0], good_high, span)
            label = "—" if cell is None else cell[1]
            shown += cell is not None
            body.append(f'<rect x="{row_width + cell_width * j + 1}" y="{y + 1}" width="{cell_width - 2}" '
                        f'height="{cell_height - 2}" fill="{fill}"><title>{escape(row)} {escape(column)}：'
                        f"{escape(label)}</title></rect>"
                        f'<text x="{row_width + cell_width * (j + 0.5):.1f}" y="{y + cell_height * 0.65:.1f}" '
                        f'text-anchor="middle" fill="#111">{escape(label)}</text>')
    if not rows:
        body.append(_empty(width, height))
    return _frame(title, width, height, f"{len(rows)} 行 × {len(columns)} 列，{shown} 格有值", body)
