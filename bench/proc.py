"""What /proc says about the processes under test: CPU time, context switches, memory, children."""
from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

PROC = pathlib.Path("/proc")


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak, from /proc/<pid>/status."""
    out = {}
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out["rss" if name == "VmRSS" else "peak"] = round(int(value.split()[0]) / 1024, 1)
    return out


def memory_kib(pid: int) -> dict[str, int]:
    """Resident (RSS) and proportional (PSS: shared pages divided among their users) memory, KiB.

    From /proc/<pid>/smaps_rollup; PSS sums honestly across processes, RSS counts shared pages
    once per process.
    """
    out = {"rss": 0, "pss": 0}
    for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss"):
            out[name.lower()] = int(value.split()[0])
    return out


def memory_mib(pids: Mapping[str, int]) -> dict:
    """RSS and PSS of each named process and their sums, MiB; a process that ended counts nothing."""
    each = {}
    for name, pid in pids.items():
        try:
            kib = memory_kib(pid)
        except OSError:
            continue
        each[name] = {"pid": pid, "rss_mib": round(kib["rss"] / 1024, 1), "pss_mib": round(kib["pss"] / 1024, 1),
                      "command": command_name(pid)}
    return {"rss_mib": round(sum(p["rss_mib"] for p in each.values()), 1),
            "pss_mib": round(sum(p["pss_mib"] for p in each.values()), 1),
            "processes": len(each), "each": each}


def command_name(pid: int) -> str:
    """A short name for a process: its program and the first words after it."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    return " ".join(pathlib.Path(w).name if "/" in w else w for w in words[:4])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    """Voluntary and forced context switches of every thread of a process so far."""
    total = 0
    for task in (PROC / str(pid) / "task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def tree(root: int) -> list[int]:
    """`root` and every process descended from it (found by parent id), alive now."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, ()))
    return out
