"""`onekey up` as a user starts it, for the idle memory of all its processes.

A fresh temporary directory is its working directory (it writes .onekey/ there); its config puts
core, edge and account on free ports with the bench's upstream as the one channel. Once it prints
its banner and has idled, the RSS and PSS of its whole process tree are summed; then it gets
Ctrl-C (SIGINT), as at a terminal, and stops its components itself.
"""
from __future__ import annotations

import os
import pathlib
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from bench.load import free_port
from bench.proc import command_name, memory_mib, tree

HOST = "127.0.0.1"

BANNER = "OneKey is running."


def up_config(directory: pathlib.Path, upstream_port: int, provider_key: str) -> pathlib.Path:
    """A config for `onekey up` on free ports, with the upstream as its one channel."""
    path = directory / "onekey.toml"
    path.write_text(f"""\
[core]
listen = "{HOST}:{free_port()}"

[edge]
listen = "{HOST}:{free_port()}"

[account]
listen = "{HOST}:{free_port()}"

[[channels]]
name = "bench-openai"
provider = "openai"
base_url = "http://{HOST}:{upstream_port}/v1"
api_key = "{provider_key}"
""")
    return path


def measure(upstream_port: int, provider_key: str, settle_s: float, log, timeout: float = 120.0) -> dict:
    """Start `onekey up` as a user would (cwd a fresh directory); its process tree's idle memory."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="onekey-bench-up-"))
    config = up_config(directory, upstream_port, provider_key)
    env = {k: v for k, v in os.environ.items() if k not in ("ONEKEY_SERVICE_TOKEN", "ONEKEY_CONFIG")}
    started = time.monotonic()
    with open(directory / "up.log", "wb") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "onekey_cli", "up", "--config", str(config)],
                                cwd=directory, env=env, stdout=subprocess.PIPE, stderr=errors)
    try:
        if not _wait_for_line(proc, BANNER, timeout):
            tail = (directory / "up.log").read_text(errors="replace")[-1500:]
            raise SystemExit(f"bench: `onekey up` never said {BANNER!r}:\n{tail}")
        ready_s = time.monotonic() - started
        log(f"`onekey up` is running after {ready_s:.1f}s; reading its memory after {settle_s:.0f}s idle")
        time.sleep(settle_s)
        pids = tree(proc.pid)
        named = {f"{command_name(pid)} [{pid}]": pid for pid in pids}
        out = {"idle": memory_mib(named), "seconds_to_banner": round(ready_s, 1)}
    finally:
        _stop_tree(proc)
        shutil.rmtree(directory, ignore_errors=True)
    return out


def _wait_for_line(proc: subprocess.Popen, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.5):
                if proc.poll() is not None:
                    return False
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return False
            buf += chunk  # the banner holds the local key: it is read here and never printed
            if text.encode() in buf:
                return True
    return False


def _stop_tree(proc: subprocess.Popen) -> None:
    """Ctrl-C to the launcher (it stops its components); anything left after that is killed."""
    children = tree(proc.pid)[1:]
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
