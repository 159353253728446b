"""Idle memory of each OneKey process: RSS and PSS from /proc/<pid>/smaps_rollup (Linux).

    .venv/bin/python scripts/memory.py              # `onekey up` in a scratch folder
    .venv/bin/python scripts/memory.py core         # one component alone: router, core, edge or account
    .venv/bin/python scripts/memory.py --settle 5   # seconds to wait once the command is ready

Starts the command in a scratch folder (SQLite stores, free loopback ports, the sandbox model
only), waits until it answers, lets it settle, prints one line per process of its tree, then
stops it with SIGTERM. The stores are made by a first start that is not measured: an install
starts on stores at head (--first-start measures the start that creates them). PSS shares each page among the processes that map it, so the PSS
column adds up; RSS counts shared library pages once per process. See docs/memory.md.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CONFIG = """\
[core]
listen = "127.0.0.1:{core}"
sandbox = true

[edge]
listen = "127.0.0.1:{edge}"

[account]
listen = "127.0.0.1:{account}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rollup(pid: int) -> dict[str, float]:
    """Rss, Pss, Pss_Anon and the like of one process, in MiB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return out


def tree(root: int) -> list[int]:
    """root and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        todo.extend(sorted(children.get(pid, [])))
    return found


def label(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = [a.decode() for a in f.read().split(b"\0") if a]
    words = [a for a in args[1:] if not a.startswith("-") and "/" not in a and a != "onekey_cli"]
    return " ".join(words[:2]) or pathlib.Path(args[0]).name


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answers (an edge without a core says 503)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="up", choices=("up", "router", "core", "edge", "account"))
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait once ready (default 3)")
    parser.add_argument("--first-start", action="store_true", help="measure the start that creates the stores")
    args = parser.parse_args(argv)
    ports = {"core": free_port(), "edge": free_port(), "account": free_port()}
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "onekey.toml"
        config.write_text(CONFIG.format(**ports))
        if not args.first_start:
            stop(start("up", tmp, config, ports))
        proc = start(args.command, tmp, config, ports)
        if proc is None:
            return 1
        try:
            time.sleep(args.settle)
            total_rss = total_pss = 0.0
            print(f"{'process':<16} {'pid':>7} {'RSS MiB':>8} {'PSS MiB':>8} {'anon MiB':>9}")
            for pid in tree(proc.pid):
                try:
                    mem, name = rollup(pid), label(pid)
                except OSError:
                    continue
                total_rss += mem["Rss"]
                total_pss += mem["Pss"]
                print(f"{name:<16} {pid:>7} {mem['Rss']:>8.1f} {mem['Pss']:>8.1f} {mem.get('Pss_Anon', 0):>9.1f}")
            print(f"{'total':<16} {'':>7} {total_rss:>8.1f} {total_pss:>8.1f}")
        finally:
            stop(proc)
    return 0


def start(command: str, folder: str, config: pathlib.Path, ports: dict[str, int]) -> subprocess.Popen | None:
    """`onekey COMMAND` in folder, once it answers (None if it did not start)."""
    env = {**os.environ, "ONEKEY_SERVICE_TOKEN": "memory-probe"}
    proc = subprocess.Popen([sys.executable, "-m", "onekey_cli", command, "--config", str(config)],
                            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = {"up": f"http://127.0.0.1:{ports['account']}/healthz",
             "edge": f"http://127.0.0.1:{ports['edge']}/healthz",
             "router": f"http://127.0.0.1:{ports['edge']}/healthz",
             "account": f"http://127.0.0.1:{ports['account']}/healthz"}.get(command)
    deadline = time.monotonic() + 60
    while not (answers(ready) if ready else _grpc_ready(ports["core"])):
        if proc.poll() is not None or time.monotonic() > deadline:
            print(f"memory: `onekey {command}` did not start", file=sys.stderr)
            stop(proc)
            return None
        time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _grpc_ready(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
