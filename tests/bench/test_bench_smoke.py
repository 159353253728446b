"""The benchmark harness end to end in its quick mode: it runs and reports every figure.

Behaviour only: the figures are whatever this machine gives; speed is bench/'s business.
"""
from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_reports_every_figure(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())

    for block in ("nonstream_c1", "stream_c1_first_chunk"):
        for side in ("direct", "onekey"):
            stats = figures[block][side]
            assert stats["n"] > 0 and stats["errors"] == 0
            assert all(math.isfinite(stats[k]) and stats[k] > 0 for k in ("p50_ms", "p99_ms"))
        assert set(figures[block]["added"]) >= {"p50_ms", "p99_ms"}
    for side in ("direct", "onekey"):
        assert figures["throughput"][side]["rps"] > 0
        assert figures["throughput"][side]["errors"] == 0
    assert figures["throughput"]["concurrency"] == 32
    two = figures["throughput"]["onekey_two_cores"]  # two core replicas behind one edge
    assert two["rps"] > 0 and two["errors"] == 0
    assert figures["per_request"]["onekey_two_cores"]["core2"]["cpu_us"] > 0  # the second core took calls
    for process in ("upstream", "core", "edge", "load_generator"):
        assert figures["rss_mib"][process]["rss"] > 0
    # Every request through OneKey reached the upstream (plus the direct ones).
    assert figures["upstream_served"] >= figures["throughput"]["onekey"]["n"]
    assert "added" in done.stdout and "RSS" in done.stdout
