"""The benchmark harness end to end in its quick mode: it runs and reports every figure.

Behaviour only: the figures are whatever this machine gives; speed is bench/'s business. The
peer gateway (Portkey, from npm) joins the run only when bench/.peers/ already holds it: the
test suite never installs it.
"""
from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import pytest

from bench import peer

ROOT = pathlib.Path(__file__).resolve().parents[2]


def quick_run(tmp_path: pathlib.Path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--json", str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def check_figures(figures: dict, sides: tuple[str, ...]) -> None:
    for block in ("nonstream_c1", "stream_c1_first_chunk"):
        for side in sides:
            stats = figures[block][side]
            assert stats["n"] > 0 and stats["errors"] == 0
            assert all(math.isfinite(stats[k]) and stats[k] > 0 for k in ("p50_ms", "p99_ms"))
        assert set(figures[block]["added"]) >= {"p50_ms", "p99_ms"}
    for scenario in ("throughput", "stream_throughput"):
        assert figures[scenario]["concurrency"] == 32
        for side in sides:
            assert figures[scenario][side]["rps"] > 0
            assert figures[scenario][side]["errors"] == 0
    assert figures["stream_throughput"]["content_events"] == 50
    for gateway in sides[1:]:
        cpu = figures["gateway_cpu"][gateway]
        assert cpu["per_request_us"] > 0 and cpu["per_stream_us"] > 0
        for when in ("idle", "after"):
            memory = figures["memory"][when][gateway]
            assert memory["processes"] >= 1 and memory["rss_mib"] > 0 and 0 < memory["pss_mib"] <= memory["rss_mib"]
    # Every request through the gateways reached the upstream (plus the direct ones).
    assert figures["upstream_served"] >= sum(figures["throughput"][s]["n"] for s in sides[1:])
    rows = {row["label"]: row for row in figures["comparison"]}
    assert rows["requests/s, c=32"]["onekey"] == figures["throughput"]["onekey"]["rps"]


@pytest.mark.slow
def test_quick_run_reports_every_figure(tmp_path):
    """The default shape, `onekey up` included, and the peer when it is installed already."""
    with_peer = peer.is_installed()
    figures, stdout = quick_run(tmp_path, *(() if with_peer else ("--no-peer",)))

    check_figures(figures, ("direct", "onekey", "portkey") if with_peer else ("direct", "onekey"))
    up = figures["up"]["idle"]
    assert up["processes"] >= 3 and up["pss_mib"] > 0  # launcher, OneKey's process(es), account app
    for process in ("upstream", "load_generator", *figures["gateway_cpu"]["onekey"]["processes"]):
        assert figures["rss_mib"][process]["rss"] > 0
    assert "added" in stdout and "OneKey/Portkey" in stdout and "`onekey up` idle PSS" in stdout
    if with_peer:
        assert figures["peer_stream_check"]["ok"]  # Portkey's streams arrive chunk by chunk
        rows = {row["label"]: row for row in figures["comparison"]}
        assert rows["added latency p50, c=1"]["ratio"] is not None
        assert figures["meta"]["peer"]["skipped"] is None
    else:
        assert "the peer (Portkey) was skipped: --no-peer" in stdout


@pytest.mark.slow
def test_quick_run_separate_processes_and_two_cores(tmp_path):
    """OneKey as a core and an edge, and a second core replica behind one edge."""
    figures, stdout = quick_run(tmp_path, "--shape", "separate", "--two-cores", "--no-peer", "--no-up")

    check_figures(figures, ("direct", "onekey"))
    assert figures["meta"]["shape"] == "separate"
    assert figures["gateway_cpu"]["onekey"]["processes"] == ["core", "edge"]
    two = figures["throughput"]["onekey_two_cores"]
    assert two["rps"] > 0 and two["errors"] == 0
    two_cost = figures["per_request"]["onekey_two_cores"]
    assert two_cost["core2"]["cpu_us"] > 0 and two_cost["edge2"]["cpu_us"] > 0  # the second core took calls
    for process in ("upstream", "core", "edge", "load_generator"):
        assert figures["rss_mib"][process]["rss"] > 0
    assert "up" not in figures and "two cores" in stdout
