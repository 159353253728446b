"""A server-rendered SVG bar chart: no script, no CDN, readable without JavaScript.

Two drawings of the same bars are made: a wide one for desktops and a narrow one (fewer date
labels, larger type) that the stylesheet shows on phones instead, so labels stay readable at
any width without scripts.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Bar:
    label: str   # YYYY-MM-DD
    value: int


@dataclass(frozen=True)
class Metric:
    """What the bars count: its name in the switch, its unit on the axis, how values read."""

    name: str
    unit: str
    format: Callable[[int], str]


def daily_series(rows: dict[str, int], start: dt.date, end: dt.date) -> list[Bar]:
    """One bar per day in [start, end], zero where nothing happened."""
    days = (end - start).days + 1
    return [Bar(d.isoformat(), rows.get(d.isoformat(), 0))
            for d in (start + dt.timedelta(days=i) for i in range(max(days, 0)))]


def nice_max(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at or above value."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if top * step >= value:
                return top * step
        top *= 10


def ticks(peak: int) -> list[int]:
    """Axis values from 0 to peak, all whole and distinct (never "1, 0, 0")."""
    return [0, peak // 2, peak] if peak % 2 == 0 else [0, peak]


def compact(n: int) -> str:
    """12_300 -> '12.3k', 4_000_000 -> '4M'."""
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(n)


def _svg(bars: list[Bar], metric: Metric, title: str, *, width: int, height: int, font: int,
         labels: int, css: str) -> str:
    left, right, top, bottom = 8 + font * 5, 10, 14, font + 16
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = nice_max(max((b.value for b in bars), default=0) or 1)
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.7, 1.0)
    parts = [f'<svg class="chart {css}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" font-size="{font}">', f"<title>{escape(title)}</title>"]
    for value in ticks(peak):
        y = top + plot_h * (1 - value / peak)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + font / 3:.1f}" text-anchor="end">'
                     f'{escape(metric.format(value))}</text>')
    every = max(1, -(-len(bars) // labels))
    for i, bar in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        h = plot_h * bar.value / peak
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                     f'height="{h:.1f}"><title>{escape(bar.label)}: {escape(metric.format(bar.value))} '
                     f'{escape(metric.unit)}</title></rect>')
        if i % every == 0:
            parts.append(f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                         f'{escape(bar.label[5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: list[Bar], metric: Metric, *, title: str) -> Markup:
    """The chart twice: wide for desktops, narrow with larger type for phones (CSS picks one)."""
    wide = _svg(bars, metric, title, width=720, height=220, font=11, labels=8, css="wide")
    narrow = _svg(bars, metric, title, width=360, height=220, font=12, labels=4, css="narrow")
    return Markup(wide + narrow)
