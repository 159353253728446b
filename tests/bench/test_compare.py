"""The comparison against the peer: ratios and goals on fixed figures."""
from __future__ import annotations

import pytest

from bench import compare


def figures(**over) -> dict:
    """A run's results, reduced to what the comparison reads."""
    r = {
        "nonstream_c1": {"added": {"p50_ms": 0.8, "p99_ms": 6.0}, "added_portkey": {"p50_ms": 2.0, "p99_ms": 10.0}},
        "stream_c1_first_chunk": {"added": {"p50_ms": 0.9}, "added_portkey": {"p50_ms": 30.0}},
        "throughput": {"onekey": {"rps": 1200.0}, "portkey": {"rps": 800.0}},
        "stream_throughput": {"onekey": {"rps": 700.0}, "portkey": {"rps": 500.0}},
        "gateway_cpu": {"onekey": {"per_request_us": 1500.0}, "portkey": {"per_request_us": 1250.0}},
        "memory": {"idle": {"onekey": {"rss_mib": 120.0, "pss_mib": 90.0},
                            "portkey": {"rss_mib": 74.0, "pss_mib": 60.0}}},
        "up": {"idle": {"rss_mib": 260.0, "pss_mib": 190.0}},
    }
    for path, value in over.items():
        *keys, last = path.split("__")
        node = r
        for k in keys:
            node = node[k]
        node[last] = value
    return r


def by_label(results: dict) -> dict[str, compare.Row]:
    return {row.label: row for row in compare.comparison(results)}


def test_ratios_and_goals_on_fixed_figures():
    rows = by_label(figures())

    p50 = rows["added latency p50, c=1"]
    assert (p50.portkey, p50.onekey, p50.ratio, p50.goal, p50.met) == (2.0, 0.8, 0.4, "<= 0.5x", True)
    p99 = rows["added latency p99, c=1"]
    assert (p99.ratio, p99.met) == (0.6, False)
    rps = rows["requests/s, c=32"]
    assert (rps.ratio, rps.goal, rps.met) == (1.5, ">= 1.5x", True)  # the bound itself meets the goal
    streams = rows["streams/s (50 chunks), c=32"]
    assert (streams.ratio, streams.met) == (1.4, False)
    cpu = rows["gateway CPU per request"]
    assert (cpu.portkey, cpu.onekey, cpu.ratio, cpu.goal, cpu.met) == (1.25, 1.5, 1.2, "", None)  # no goal: shown
    first = rows["added time to first chunk p50"]
    assert (first.ratio, first.goal, first.met) == (0.03, "<= 1 ms", True)  # absolute: Portkey's is not the bound
    rss, pss = rows["idle memory RSS (routing processes)"], rows["idle memory PSS (routing processes)"]
    assert (rss.ratio, rss.met) == (1.622, False)
    assert (pss.ratio, pss.met) == (1.5, True)
    up_rss, up_pss = rows["`onekey up` idle RSS (all processes)"], rows["`onekey up` idle PSS (all processes)"]
    assert (up_rss.portkey, up_rss.ratio, up_rss.goal, up_rss.met) == (None, None, "<= 200 MiB", False)
    assert up_pss.met is True


def test_without_the_peer_only_absolute_goals_are_judged():
    results = figures()
    for block in ("nonstream_c1", "stream_c1_first_chunk"):
        del results[block]["added_portkey"]
    for name in ("throughput", "stream_throughput", "gateway_cpu"):
        del results[name]["portkey"]
    del results["memory"]["idle"]["portkey"]

    rows = by_label(results)
    assert all(row.portkey is None and row.ratio is None for row in rows.values())
    judged = {label for label, row in rows.items() if row.met is not None}
    assert judged == {"added time to first chunk p50", "`onekey up` idle RSS (all processes)",
                      "`onekey up` idle PSS (all processes)"}


def test_a_ratio_against_a_figure_that_is_not_positive_is_not_judged():
    rows = by_label(figures(nonstream_c1__added_portkey={"p50_ms": -0.1, "p99_ms": 0.0}))
    assert rows["added latency p50, c=1"].ratio is None and rows["added latency p50, c=1"].met is None
    assert rows["added latency p99, c=1"].met is None


def test_rows_whose_onekey_figure_is_missing_are_left_out():
    results = figures()
    del results["up"]
    labels = by_label(results)
    assert not any("onekey up" in label for label in labels)
    assert len(labels) == len(compare.ROWS) - 2


@pytest.mark.parametrize("met, shown", [(True, "yes"), (False, "NO"), (None, "-")])
def test_the_table_shows_figures_ratio_goal_and_verdict(met, shown):
    row = compare.Row("requests/s, c=32", "/s", 0, 800.0, 1200.0, 1.5, ">= 1.5x", met)
    text = compare.render([row])
    header, line = text.splitlines()
    assert header.split() == ["Portkey", "OneKey", "OneKey/Portkey", "goal", "met?"]
    assert line.split() == ["requests/s,", "c=32", "800/s", "1,200/s", "1.50x", ">=", "1.5x", shown]


def test_as_json_keeps_every_field():
    rows = compare.comparison(figures())
    data = compare.as_json(rows)
    assert data[0] == {"label": "added latency p50, c=1", "unit": "ms", "digits": 2, "portkey": 2.0,
                       "onekey": 0.8, "ratio": 0.4, "goal": "<= 0.5x", "met": True}
