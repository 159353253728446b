"""A server-rendered SVG bar chart: no script, no CDN, readable without JavaScript."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Bar:
    label: str   # YYYY-MM-DD
    value: int


def daily_series(rows: dict[str, int], start: dt.date, end: dt.date) -> list[Bar]:
    """One bar per day in [start, end], zero where nothing happened."""
    days = (end - start).days + 1
    return [Bar(d.isoformat(), rows.get(d.isoformat(), 0))
            for d in (start + dt.timedelta(days=i) for i in range(max(days, 0)))]


def _nice_max(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at or above value."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if top * step >= value:
                return top * step
        top *= 10


def bar_chart(bars: list[Bar], *, title: str, width: int = 720, height: int = 220) -> Markup:
    """An accessible SVG bar chart of the bars (y from zero), with a few axis labels."""
    left, right, top, bottom = 44, 8, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((b.value for b in bars), default=0) or 1)
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.7, 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg">', f"<title>{escape(title)}</title>"]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{int(peak * frac)}</text>')
    every = max(1, len(bars) // 6)
    for i, bar in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        h = plot_h * bar.value / peak
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                     f'height="{h:.1f}"><title>{escape(bar.label)}: {bar.value}</title></rect>')
        if i % every == 0 or i == len(bars) - 1:
            parts.append(f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 8}" text-anchor="middle">'
                         f'{escape(bar.label[5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
