"""Reading a sampling profile in collapsed-stack form ("frame;frame;frame count" per line).

Self time is where the samples landed; inclusive time counts a frame once per sample it is on.
Frames are reduced to `function (file:line)` with the file's path shortened to its package.
"""
from __future__ import annotations

import pathlib
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        parts = pathlib.PurePath(path).parts
        path = "/".join(parts[-2:])
    return f"{m['func']} ({path})"


def summarize(path: pathlib.Path, top: int = 15) -> dict:
    """Top frames by self and by inclusive share of samples, and the sample count."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        # Skip the process/thread label py-spy puts first.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))] or frames
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
        modules[_module(frames[-1])] += n
    if not total:
        return {"samples": 0}

    def pct(c: Counter) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in c.most_common(top)]

    return {"samples": total, "self": pct(own), "inclusive": pct(inclusive), "self_by_module": pct(modules)}


def _module(frame: str) -> str:
    """The package a frame's file belongs to (aiohttp, grpc, router_core, asyncio…)."""
    m = re.search(r"\(([^()]*)\)$", frame)
    if not m:
        return frame
    path = m.group(1).split(":")[0]
    head = path.split("/")[0]
    return head.removesuffix(".py") or path


def render(tops: dict) -> str:
    lines = []
    for name, s in tops.items():
        if not s.get("samples"):
            continue
        lines.append(f"== {name}: {s['samples']} samples; self time by package")
        lines += [f"  {p:5.1f}%  {f}" for f, p in s["self_by_module"][:8]]
        lines.append(f"== {name}: top functions by self time")
        lines += [f"  {p:5.1f}%  {f}" for f, p in s["self"]]
        lines.append(f"== {name}: top functions by inclusive time")
        lines += [f"  {p:5.1f}%  {f}" for f, p in s["inclusive"]]
    return "\n".join(lines)
