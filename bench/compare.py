"""OneKey against the peer gateway (Portkey), row by row, with the ratios the goals of issue 14 ask.

Each row takes one figure for each gateway from the run's results, their ratio (OneKey / Portkey)
and a goal: a ratio bound against Portkey's figure in the same run, or an absolute bound on
OneKey's. `met` is None when the goal cannot be judged (no peer in the run, a figure missing, or a
ratio against a figure that is not positive).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Goal:
    """`kind`: "ratio_max" (OneKey ≤ bound × Portkey), "ratio_min" (≥), "abs_max" (OneKey ≤ bound)."""

    kind: str
    bound: float

    def text(self, unit: str) -> str:
        if self.kind == "ratio_max":
            return f"<= {self.bound:g}x"
        if self.kind == "ratio_min":
            return f">= {self.bound:g}x"
        return f"<= {self.bound:g} {unit}"

    def met(self, onekey: float | None, portkey: float | None) -> bool | None:
        if onekey is None or not math.isfinite(onekey):
            return None
        if self.kind == "abs_max":
            return onekey <= self.bound
        if portkey is None or not math.isfinite(portkey) or portkey <= 0:
            return None
        if self.kind == "ratio_max":
            return onekey <= self.bound * portkey
        return onekey >= self.bound * portkey


def _get(results: dict, *path: str) -> float | None:
    value = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) else None


# (label, unit, digits, OneKey's figure, Portkey's figure, goal)
Pick = Callable[[dict], float | None]
ROWS: list[tuple[str, str, int, Pick, Pick, Goal | None]] = [
    ("added latency p50, c=1", "ms", 2,
     lambda r: _get(r, "nonstream_c1", "added", "p50_ms"),
     lambda r: _get(r, "nonstream_c1", "added_portkey", "p50_ms"), Goal("ratio_max", 0.5)),
    ("added latency p99, c=1", "ms", 2,
     lambda r: _get(r, "nonstream_c1", "added", "p99_ms"),
     lambda r: _get(r, "nonstream_c1", "added_portkey", "p99_ms"), Goal("ratio_max", 0.5)),
    ("requests/s, c=32", "/s", 0,
     lambda r: _get(r, "throughput", "onekey", "rps"),
     lambda r: _get(r, "throughput", "portkey", "rps"), Goal("ratio_min", 1.5)),
    ("gateway CPU per request", "ms", 3,
     lambda r: _ms(_get(r, "gateway_cpu", "onekey", "per_request_us")),
     lambda r: _ms(_get(r, "gateway_cpu", "portkey", "per_request_us")), None),
    ("streams/s (50 chunks), c=32", "/s", 0,
     lambda r: _get(r, "stream_throughput", "onekey", "rps"),
     lambda r: _get(r, "stream_throughput", "portkey", "rps"), Goal("ratio_min", 1.5)),
    ("added time to first chunk p50", "ms", 2,
     lambda r: _get(r, "stream_c1_first_chunk", "added", "p50_ms"),
     lambda r: _get(r, "stream_c1_first_chunk", "added_portkey", "p50_ms"), Goal("abs_max", 1.0)),
    ("idle memory RSS (routing processes)", "MiB", 1,
     lambda r: _get(r, "memory", "idle", "onekey", "rss_mib"),
     lambda r: _get(r, "memory", "idle", "portkey", "rss_mib"), Goal("ratio_max", 1.5)),
    ("idle memory PSS (routing processes)", "MiB", 1,
     lambda r: _get(r, "memory", "idle", "onekey", "pss_mib"),
     lambda r: _get(r, "memory", "idle", "portkey", "pss_mib"), Goal("ratio_max", 1.5)),
    ("`onekey up` idle RSS (all processes)", "MiB", 1,
     lambda r: _get(r, "up", "idle", "rss_mib"), lambda r: None, Goal("abs_max", 200)),
    ("`onekey up` idle PSS (all processes)", "MiB", 1,
     lambda r: _get(r, "up", "idle", "pss_mib"), lambda r: None, Goal("abs_max", 200)),
]


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    digits: int
    portkey: float | None
    onekey: float | None
    ratio: float | None
    goal: str
    met: bool | None


def comparison(results: dict) -> list[Row]:
    """The comparison rows of a run's results (rows whose OneKey figure is absent are left out)."""
    rows = []
    for label, unit, digits, mine, theirs, goal in ROWS:
        onekey, portkey = mine(results), theirs(results)
        if onekey is None:
            continue
        ratio = onekey / portkey if portkey is not None and portkey > 0 and math.isfinite(onekey) else None
        rows.append(Row(label, unit, digits, portkey, onekey, None if ratio is None else round(ratio, 3),
                        goal.text(unit) if goal else "", goal.met(onekey, portkey) if goal else None))
    return rows


def as_json(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]


def render(rows: list[Row], peer: str = "Portkey") -> str:
    """The comparison as a text table: one line a row."""
    w = 40

    def fig(value: float | None, row: Row) -> str:
        if value is None:
            return "-"
        return f"{value:,.{row.digits}f} {row.unit}".replace(" /s", "/s")

    lines = [f"{'':{w}}{peer:>14}{'OneKey':>14}{'OneKey/' + peer:>16}{'goal':>12}{'met?':>7}"]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        met = {True: "yes", False: "NO", None: "-"}[row.met]
        lines.append(f"{row.label:{w}}{fig(row.portkey, row):>14}{fig(row.onekey, row):>14}{ratio:>16}"
                     f"{row.goal or '-':>12}{met:>7}")
    return "\n".join(lines)
