"""The printed report: per-phase figures of each target and process, then OneKey against the peer."""
from __future__ import annotations

from bench import compare

def table(r: dict) -> str:
    c1, fc, tp, st = r["nonstream_c1"], r["stream_c1_first_chunk"], r["throughput"], r["stream_throughput"]
    has_peer = "portkey" in c1
    w = 44
    rows = [
        ("non-stream c=1, p50 (ms)", c1, "p50_ms"),
        ("non-stream c=1, p99 (ms)", c1, "p99_ms"),
        ("stream c=1, first chunk p50 (ms)", fc, "p50_ms"),
        ("stream c=1, first chunk p99 (ms)", fc, "p99_ms"),
    ]
    head = f"{'':{w}}{'direct':>10}{'via OneKey':>12}{'added':>10}"
    if has_peer:
        head += f"{'via Portkey':>13}{'added':>10}"
    lines = [head]
    for label, b, key in rows:
        line = f"{label:{w}}{b['direct'][key]:>10.3f}{b['onekey'][key]:>12.3f}{b['added'][key]:>10.3f}"
        if has_peer:
            line += f"{b['portkey'][key]:>13.3f}{b['added_portkey'][key]:>10.3f}"
        lines.append(line)
    for label, b, key in (("translated (Messages on the model), c=1, p50 (ms)", c1, "p50_ms"),
                          ("translated, stream c=1, first chunk p50 (ms)", fc, "p50_ms")):
        if "added_translated" in b and b["added"][key] > 0:
            lines.append(f"{label:{w}}{b['direct'][key]:>10.3f}{b['onekey_translated'][key]:>12.3f}"
                         f"{b['added_translated'][key]:>10.3f}   {b['added_translated'][key] / b['added'][key]:.2f}x native")
    c = tp["concurrency"]
    for label, b in ((f"non-stream c={c}, requests/s", tp), (f"stream ({st['content_events']} chunks) c={c}, streams/s", st)):
        line = f"{label:{w}}{b['direct']['rps']:>10.0f}{b['onekey']['rps']:>12.0f}{'':>10}"
        if has_peer:
            line += f"{b['portkey']['rps']:>13.0f}"
        lines.append(line)
        line = (f"{label.rsplit(',', 1)[0] + ', p50 / p99 (ms)':{w}}"
                f"{b['direct']['p50_ms']:>5.1f}/{b['direct']['p99_ms']:<4.1f}"
                f"{b['onekey']['p50_ms']:>7.1f}/{b['onekey']['p99_ms']:<4.1f}{'':>10}")
        if has_peer:
            line += f"{b['portkey']['p50_ms']:>8.1f}/{b['portkey']['p99_ms']:<4.1f}"
        lines.append(line)
    if "onekey_two_cores" in tp:
        lines.append(f"{f'non-stream c={c}, requests/s, two cores':{w}}{'':>10}{tp['onekey_two_cores']['rps']:>12.0f}")
        lines.append(f"{f'non-stream c={c}, p50 / p99 (ms), two cores':{w}}{'':>10}"
                     f"{tp['onekey_two_cores']['p50_ms']:>7.1f}/{tp['onekey_two_cores']['p99_ms']:<4.1f}")
    lines.append("")
    names = list(r["rss_mib"])
    cw = max(10, max(len(n) for n in names) + 2)

    def short(n: str) -> str:
        return n.replace("load_generator", "load gen")

    lines.append(f"{'process':{w}}" + "".join(f"{short(n):>{cw}}" for n in names))
    mem = r.get("memory", {})
    for when, label in (("idle", "idle RSS / PSS after start-up (MiB)"), ("after", "RSS / PSS after the run (MiB)")):
        each = {name: p for g in mem.get(when, {}).values() for name, p in g["each"].items()}
        if each:
            cells = [f"{each[n]['rss_mib']:.0f}/{each[n]['pss_mib']:.0f}" if n in each else "" for n in names]
            lines.append(f"{label:{w}}" + "".join(f"{c:>{cw}}" for c in cells))
    lines.append(f"{'peak RSS (MiB)':{w}}" + "".join(f"{r['rss_mib'][n]['peak']:>{cw}.1f}" for n in names))
    for section, unit in (("per_request", "request"), ("per_stream", "stream")):
        per = r[section]
        for side in [s for s in ("onekey", "portkey", "direct") if s in per]:
            label = {"onekey": "via OneKey", "portkey": "via Portkey", "direct": "direct"}[side]
            lines.append(f"{f'CPU per {unit}, c={c} {label} (us)':{w}}"
                         + "".join(f"{per[side][n]['cpu_us']:>{cw}.0f}" if n in per[side] else f"{'':>{cw}}"
                                   for n in names))
    for side in [s for s in ("onekey", "portkey") if s in r["per_request"]]:
        lines.append(f"{f'context switches per request, via {side}':{w}}"
                     + "".join(f"{r['per_request'][side][n]['switches']:>{cw}.1f}" for n in names))
    if "onekey_two_cores" in r["per_request"]:
        two = r["per_request"]["onekey_two_cores"]
        lines.append(f"{f'CPU per request, c={c} two cores (us)':{w}}"
                     + "".join(f"{two[n]['cpu_us']:>{cw}.0f}" if n in two else f"{'':>{cw}}" for n in names)
                     + f"   (core2 {two['core2']['cpu_us']:.0f}, edge2 {two['edge2']['cpu_us']:.0f})")
    errors = sum(b[k]["errors"] for b in (c1, fc, tp, st) for k in ("direct", "onekey", "portkey") if k in b)
    errors += tp.get("onekey_two_cores", {}).get("errors", 0)
    lines.append("")
    lines.append(f"errors: {errors}; the upstream served {r['upstream_served']} completions "
                 f"on {r['upstream_connections']} connections")
    return "\n".join(lines)


def report(r: dict) -> str:
    """Everything printed at the end: the detail table, then OneKey against the peer."""
    meta = r["meta"]
    lines = [table(r), ""]
    shape = meta["shape"]
    onekey_procs = ", ".join(r["gateway_cpu"]["onekey"]["processes"])
    peer_note = meta["peer"]["version"] if not meta["peer"]["skipped"] else f"skipped: {meta['peer']['skipped']}"
    lines.append(f"OneKey against the peer (OneKey shape {shape}: {onekey_procs}; peer {peer_note})")
    lines.append(compare.render(compare.comparison(r)))
    check = r.get("peer_stream_check")
    if check and not check["ok"]:
        lines.append(f"warning: the peer buffered a slow stream ({check['reads_with_events']} pieces "
                     f"over {check['spread_ms']:.0f} ms): its stream figures do not mean what they say")
    if "up" in r:
        each = r["up"]["idle"]["each"].values()
        lines.append("`onekey up` idle, RSS/PSS (MiB) of each process: " + ", ".join(
            f"{p['command'].removeprefix('python -m onekey_cli ')} {p['rss_mib']:.0f}/{p['pss_mib']:.0f}"
            for p in each))
    for note in meta.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
