"""The core and the edge as processes (as production runs them), for tests that need real
logs, real signals or real files: one `onekey router` process, or `onekey core` and `onekey edge`
when ONEKEY_TEST_SHAPE=grpc (see tests/stack.py)."""
from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.stack import note_edge_used, shape

SERVICE_TOKEN = "proc-test-service-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """`onekey core` and `onekey edge` in a folder of their own; logs go to files there."""

    def __init__(self, root: pathlib.Path, database_url: str, channels_toml: str, core_extra: str = "",
                 edge_extra: str = "") -> None:
        self.root = root
        self.core_port, self._edge_port = free_port(), free_port()
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        (root / "onekey.toml").write_text(
            f'[core]\nlisten = "127.0.0.1:{self.core_port}"\ndatabase_url = "{database_url}"\n'
            f'usage_flush_interval = 0.2\n{core_extra}\n'
            f'[edge]\nlisten = "127.0.0.1:{self._edge_port}"\n{edge_extra}\n\n{channels_toml}\n')
        self.env = {**os.environ, "ONEKEY_SERVICE_TOKEN": SERVICE_TOKEN, "TMPDIR": str(self.tmp),
                    "ONEKEY_CONFIG": str(root / "onekey.toml")}
        if database_url.startswith("postgresql"):  # as an operator does, once per deployment
            self.onekey("db", "upgrade", "--store", "core")
        if shape() == "one-process":  # `onekey router`: both in one process, as `onekey up` runs them
            self.core = self.edge = self._start("router")
        else:
            self.core = self._start("core")
            self._wait(lambda: _port_open(self.core_port), self.core, "core")
            self.edge = self._start("edge")
        self._wait(lambda: _http_ok(f"http://127.0.0.1:{self._edge_port}/healthz"), self.edge, "edge")

    @property
    def edge_port(self) -> int:
        note_edge_used()
        return self._edge_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}/v1"

    def onekey(self, *args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "onekey_cli", *args], env=self.env, cwd=self.root,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def new_key(self, usd: str = "100") -> tuple[str, str]:
        project = self.onekey("project", "create", "--credit", usd)
        return project, self.onekey("key", "create", "--project", project)

    def stop(self, which: str = "both", timeout: float = 60) -> None:
        procs = [self.edge, self.core] if which == "both" else [getattr(self, which)]
        for proc in dict.fromkeys(procs):  # one process in the one-process shape
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.root.glob("*.log"))

    def _start(self, component: str) -> subprocess.Popen:
        log = open(self.root / f"{component}.log", "w")
        return subprocess.Popen([sys.executable, "-m", "onekey_cli", component], env=self.env, cwd=self.root,
                                stdout=log, stderr=subprocess.STDOUT)

    def _wait(self, ready, proc: subprocess.Popen, what: str) -> None:
        deadline = time.monotonic() + 30
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{self.logs()}")
            time.sleep(0.1)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


class Cluster:
    """Several `onekey core` and `onekey edge` processes on one database, as a scaled-out
    deployment runs: every edge is given every core, each process has a config file of its own."""

    def __init__(self, root: pathlib.Path, database_url: str, channels_toml: str, cores: int = 2,
                 edges: int = 2, core_extra: str = "") -> None:
        self.root = root
        self.core_ports = [free_port() for _ in range(cores)]
        self.metrics_ports = [free_port() for _ in range(cores)]
        self.edge_ports = [free_port() for _ in range(edges)]
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in self.core_ports)
        for i, port in enumerate(self.core_ports):
            (root / f"core{i}.toml").write_text(
                f'[core]\nlisten = "127.0.0.1:{port}"\ndatabase_url = "{database_url}"\n'
                f'usage_flush_interval = 0.2\nmetrics_listen = "127.0.0.1:{self.metrics_ports[i]}"\n'
                f'{core_extra}\n\n{channels_toml}\n')
        for j, port in enumerate(self.edge_ports):
            (root / f"edge{j}.toml").write_text(
                f'[core]\nlisten = "127.0.0.1:{self.core_ports[j % cores]}"\n\n'
                f'[edge]\nlisten = "127.0.0.1:{port}"\ncore = "{target}"\n')
        self.cores: list[subprocess.Popen | None] = [None] * cores
        self.edges: list[subprocess.Popen] = []
        if database_url.startswith("postgresql"):  # once per deployment, not once per core
            self.onekey("db", "upgrade", "--store", "core")
        try:
            for i in range(cores):
                self.start_core(i)
            for j in range(edges):
                self.edges.append(self._start("edge", j))
                self._wait(lambda: _http_ok(f"{self.edge_url(j)}/healthz"), self.edges[j], f"edge {j}")
        except BaseException:
            self.stop()
            raise

    def edge_url(self, j: int) -> str:
        return f"http://127.0.0.1:{self.edge_ports[j]}"

    @property
    def base_urls(self) -> list[str]:
        return [f"{self.edge_url(j)}/v1" for j in range(len(self.edge_ports))]

    def env(self, component: str, index: int) -> dict[str, str]:
        return {**os.environ, "ONEKEY_SERVICE_TOKEN": SERVICE_TOKEN, "TMPDIR": str(self.root / "tmp"),
                "ONEKEY_CONFIG": str(self.root / f"{component}{index}.toml")}

    def onekey(self, *args: str, core: int = 0) -> str:
        """An operator command against one core replica."""
        proc = subprocess.run([sys.executable, "-m", "onekey_cli", *args], env=self.env("core", core),
                              cwd=self.root, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def start_core(self, i: int) -> None:
        self.cores[i] = self._start("core", i)
        # The gRPC port opens before the core's /metrics: a test that reads them waits for both.
        self._wait(lambda: _port_open(self.core_ports[i]) and _port_open(self.metrics_ports[i]), self.cores[i],
                   f"core {i}")

    def kill_core(self, i: int) -> None:
        """SIGKILL: no drain, no flush, no lease given back."""
        self.cores[i].kill()
        self.cores[i].wait(30)

    def metrics(self, i: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[i]}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self, timeout: float = 60) -> None:
        for proc in [*self.edges, *self.cores]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.edges, *self.cores]:
            if proc is not None:
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def logs(self) -> str:
        return "".join(f"--- {p.name}\n" + p.read_text(errors="replace") for p in sorted(self.root.glob("*.log")))

    def _start(self, component: str, index: int) -> subprocess.Popen:
        log = open(self.root / f"{component}{index}.log", "a")
        return subprocess.Popen([sys.executable, "-m", "onekey_cli", component], env=self.env(component, index),
                                cwd=self.root, stdout=log, stderr=subprocess.STDOUT)

    def _wait(self, ready, proc: subprocess.Popen, what: str) -> None:
        deadline = time.monotonic() + 30
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{self.logs()}")
            time.sleep(0.1)
