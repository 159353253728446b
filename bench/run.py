"""`python -m bench.run [--quick] [--json FILE] [--profile DIR]`: what OneKey adds over the upstream.

Starts, each as its own process: the fast fake upstream, the core and the edge (exactly as
production starts them, from a generated TOML file), makes a project and key with the operator
CLI, then drives the same load generator at the upstream directly and at the edge, and prints
the difference. A second core and a second edge given both cores measure the throughput of two
core replicas behind one edge. See bench/README.md for how to read the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from bench import load
from bench.load import RunResult, Target, percentile

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = "openai/gpt-4.1-mini"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Plan:
    """How many requests each phase sends (and its time bound)."""

    warmup: int
    c1_requests: int
    stream_requests: int
    rounds: int
    c32_seconds: float
    concurrency: int = 32
    phase_cap_s: float = 60.0


FULL = Plan(warmup=300, c1_requests=3000, stream_requests=1000, rounds=5, c32_seconds=10.0)
QUICK = Plan(warmup=50, c1_requests=300, stream_requests=100, rounds=2, c32_seconds=2.0)


# ---------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Processes:
    """The processes under test, stopped (edge first) whatever happens."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen] = {}

    def spawn(self, name: str, args: list[str], env: dict[str, str], cwd: pathlib.Path,
              stdout=None) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=stdout or log, stderr=log)
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"bench: the {name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def stop(self) -> None:
        for name in ("edge", "edge2", "core", "core2", "upstream"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak, from /proc/<pid>/status."""
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out["rss" if name == "VmRSS" else "peak"] = round(int(value.split()[0]) / 1024, 1)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    """Voluntary and forced context switches of every thread of a process so far."""
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def wait_port(port: int, procs: Processes, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on port {port} after {timeout:.0f}s")


def write_config(workdir: pathlib.Path, upstream_port: int, provider_key: str, database_url: str,
                 name: str = "onekey", cores: tuple[int, ...] = (), durable: bool = False
                 ) -> tuple[pathlib.Path, int, int]:
    """A config file for one core and one edge; the edge is given `cores` too when named."""
    core_port, edge_port = free_port(), free_port()
    path = workdir / f"{name}.toml"
    target = f'core = "ipv4:{",".join(f"{HOST}:{p}" for p in (*cores, core_port))}"' if cores else ""
    path.write_text(f"""\
[core]
listen = "{HOST}:{core_port}"
database_url = "{database_url}"
new_project_free_requests = 0
durable_charges = {"true" if durable else "false"}

[edge]
listen = "{HOST}:{edge_port}"
{target}

[[channels]]
name = "bench-openai"
provider = "openai"
base_url = "http://{HOST}:{upstream_port}/v1"
api_key = "{provider_key}"
""")
    return path, core_port, edge_port


def operator(config: pathlib.Path, env: dict[str, str], *args: str) -> dict:
    """One `onekey` operator command with --json; its parsed output."""
    done = subprocess.run([sys.executable, "-m", "onekey_cli", *args, "--config", str(config), "--json"],
                          env=env, cwd=config.parent, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"bench: `onekey {' '.join(args)}` failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def healthy(port: int) -> bool:
    try:
        return asyncio.run(load.get(HOST, port, "/healthz")).status == 200
    except (OSError, load.HttpError, TimeoutError):
        return False


@dataclass
class Stack:
    procs: Processes
    upstream_port: int
    edge_port: int
    provider_key: str
    client_key: str
    edge2_port: int = 0  # an edge in front of both cores


def wait_healthy(port: int, procs: Processes, name: str) -> None:
    deadline = time.monotonic() + 30
    while not healthy(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: the {name} never became healthy:\n{procs.log_tail(name)}")
        procs.check_alive()
        time.sleep(0.1)


def start_stack(workdir: pathlib.Path, database_url: str, durable: bool = False) -> Stack:
    procs = Processes(workdir)
    try:
        up = procs.spawn("upstream", [sys.executable, "-m", "bench.upstream", "--port", "0"],
                         dict(os.environ), ROOT, stdout=subprocess.PIPE)
        line = up.stdout.readline().decode()
        if not line.startswith("READY port="):
            raise SystemExit(f"bench: the upstream did not start:\n{procs.log_tail('upstream')}")
        upstream_port = int(line.split("=", 1)[1])

        provider_key = f"sk-bench-{secrets.token_hex(16)}"
        config, core_port, edge_port = write_config(workdir, upstream_port, provider_key, database_url,
                                                    durable=durable)
        env = {**os.environ, "ONEKEY_SERVICE_TOKEN": secrets.token_urlsafe(32)}
        env.pop("ONEKEY_CONFIG", None)
        if not database_url.startswith("sqlite"):  # PostgreSQL: the schema is upgraded once, by the operator
            subprocess.run([sys.executable, "-m", "onekey_cli", "db", "upgrade", "--store", "core",
                            "--config", str(config)], env=env, cwd=workdir, check=True, capture_output=True,
                           timeout=120)
        procs.spawn("core", [sys.executable, "-m", "onekey_cli", "core", "--config", str(config)], env, workdir)
        wait_port(core_port, procs)
        project = operator(config, env, "project", "create", "--name", "bench",
                           "--credit", "1000000", "--free-requests", "0")
        key = operator(config, env, "key", "create", "--project", project["id"], "--name", "bench")
        procs.spawn("edge", [sys.executable, "-m", "onekey_cli", "edge", "--config", str(config)], env, workdir)
        wait_port(edge_port, procs)
        wait_healthy(edge_port, procs, "edge")
        # The second replica: its own core on the same store, and an edge given both cores.
        config2, core2_port, edge2_port = write_config(workdir, upstream_port, provider_key, database_url,
                                                       name="onekey2", cores=(core_port,), durable=durable)
        procs.spawn("core2", [sys.executable, "-m", "onekey_cli", "core", "--config", str(config2)], env, workdir)
        wait_port(core2_port, procs)
        procs.spawn("edge2", [sys.executable, "-m", "onekey_cli", "edge", "--config", str(config2)], env, workdir)
        wait_port(edge2_port, procs)
        wait_healthy(edge2_port, procs, "edge2")
        return Stack(procs, upstream_port, edge_port, provider_key, key["secret"], edge2_port)
    except BaseException:
        procs.stop()
        raise


# ---------------------------------------------------------------------------- measuring

def summary(r: RunResult, first: bool = False) -> dict:
    values = r.first_ns if first else r.total_ns
    return {"n": r.count, "errors": r.errors, "p50_ms": round(percentile(values, 50), 3),
            "p90_ms": round(percentile(values, 90), 3), "p99_ms": round(percentile(values, 99), 3),
            "mean_ms": round(sum(values) / len(values) / 1e6, 3) if values else float("nan")}


def added(direct: dict, via: dict) -> dict:
    return {k: round(via[k] - direct[k], 3) for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms")}


async def interleaved(direct: Target, gateway: Target, plan: Plan, total: int, stream: bool
                      ) -> tuple[RunResult, RunResult]:
    """c=1 rounds alternating direct and gateway, so drift (heat, noise) hits both alike."""
    d, g = RunResult(), RunResult()
    per_round = max(1, total // plan.rounds)
    cap = plan.phase_cap_s / (2 * plan.rounds)
    for _ in range(plan.rounds):
        await load.run(direct, concurrency=1, requests=per_round, seconds=cap, stream=stream, result=d)
        await load.run(gateway, concurrency=1, requests=per_round, seconds=cap, stream=stream, result=g)
    return d, g


async def throughput(t: Target, plan: Plan, pids: dict[str, int]) -> tuple[dict, dict]:
    """Requests/s at the plan's concurrency for c32_seconds, and CPU per request of each process."""
    await load.run(t, concurrency=plan.concurrency, requests=10**9, seconds=min(1.0, plan.c32_seconds / 2))
    before = {name: (cpu_seconds(pid), context_switches(pid)) for name, pid in pids.items()}
    r = await load.run(t, concurrency=plan.concurrency, requests=10**9, seconds=plan.c32_seconds)
    after = {name: (cpu_seconds(pid), context_switches(pid)) for name, pid in pids.items()}
    out = {**summary(r), "rps": round(r.count / r.elapsed_s, 1), "seconds": round(r.elapsed_s, 2)}
    n = max(r.count, 1)
    cost = {name: {"cpu_us": round((after[name][0] - before[name][0]) / n * 1e6, 1),
                   "switches": round((after[name][1] - before[name][1]) / n, 2)} for name in pids}
    return out, cost


async def measure(stack: Stack, plan: Plan, log) -> dict:
    direct = load.target("direct", HOST, stack.upstream_port, "/v1", stack.provider_key, MODEL.split("/", 1)[1])
    gateway = load.target("onekey", HOST, stack.edge_port, "/v1", stack.client_key, MODEL)
    procs = stack.procs.procs
    pids = {"upstream": procs["upstream"].pid, "core": procs["core"].pid, "edge": procs["edge"].pid,
            "load_generator": os.getpid()}

    log(f"warm-up: {plan.warmup} requests each way, plain and streamed")
    for t in (direct, gateway):
        await load.run(t, concurrency=1, requests=plan.warmup, seconds=30)
        await load.run(t, concurrency=1, requests=plan.warmup // 5, seconds=30, stream=True)
        await load.run(t, concurrency=plan.concurrency, requests=plan.warmup * 2, seconds=30)

    log(f"non-stream, c=1: {plan.c1_requests} requests each way, {plan.rounds} alternating rounds")
    d, g = await interleaved(direct, gateway, plan, plan.c1_requests, stream=False)
    c1 = {"direct": summary(d), "onekey": summary(g)}
    c1["added"] = added(c1["direct"], c1["onekey"])

    log(f"stream, c=1: {plan.stream_requests} streams each way")
    d, g = await interleaved(direct, gateway, plan, plan.stream_requests, stream=True)
    first = {"direct": summary(d, first=True), "onekey": summary(g, first=True)}
    first["added"] = added(first["direct"], first["onekey"])
    whole = {"direct": summary(d), "onekey": summary(g)}
    whole["added"] = added(whole["direct"], whole["onekey"])

    log(f"non-stream, c={plan.concurrency}: {plan.c32_seconds:.0f}s each way")
    tp_direct, cpu_direct = await throughput(direct, plan, pids)
    tp_gateway, cpu_gateway = await throughput(gateway, plan, pids)

    log(f"non-stream, c={plan.concurrency}, two cores behind one edge: {plan.c32_seconds:.0f}s")
    two = load.target("onekey-2", HOST, stack.edge2_port, "/v1", stack.client_key, MODEL)
    await load.run(two, concurrency=plan.concurrency, requests=plan.warmup, seconds=30)
    pids2 = {"upstream": procs["upstream"].pid, "core": procs["core"].pid, "core2": procs["core2"].pid,
             "edge": procs["edge2"].pid, "load_generator": os.getpid()}
    tp_two, cpu_two = await throughput(two, plan, pids2)

    stats = json.loads((await load.get(HOST, stack.upstream_port, "/stats")).body)
    return {
        "nonstream_c1": c1,
        "stream_c1_first_chunk": first,
        "stream_c1_complete": whole,
        "throughput": {"concurrency": plan.concurrency, "direct": tp_direct, "onekey": tp_gateway,
                       "onekey_two_cores": tp_two},
        "per_request": {"direct": cpu_direct, "onekey": cpu_gateway, "onekey_two_cores": cpu_two},
        "upstream_served": stats["served"],
        "upstream_connections": stats["connections"],
        "rss_mib": {name: rss_mib(pid) for name, pid in pids.items()},
    }


# ---------------------------------------------------------------------------- profiling

def profile(stack: Stack, plan: Plan, outdir: pathlib.Path, seconds: float, native: bool, log) -> dict:
    """Sample the core and the edge under load at the plan's concurrency; top frames of each."""
    from bench import profile as prof

    spy = shutil.which("py-spy") or str(pathlib.Path(sys.executable).with_name("py-spy"))
    if not pathlib.Path(spy).exists():
        log("profile skipped: py-spy is not installed (pip install py-spy)")
        return {}
    outdir.mkdir(parents=True, exist_ok=True)
    gateway = load.target("onekey", HOST, stack.edge_port, "/v1", stack.client_key, MODEL)
    samplers = {}
    for name in ("core", "edge"):
        pid = stack.procs.procs[name].pid
        # Native unwinding needs the process paused at each sample; Python frames alone do not.
        mode = ["--native", "--gil"] if native else ["--nonblocking"]
        samplers[name] = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--rate", "200", "--duration", str(int(seconds)),
             "--format", "raw", "--output", str(outdir / f"{name}.txt"), *mode],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log(f"profiling core and edge for {seconds:.0f}s under c={plan.concurrency} (figures in {outdir})")
    time.sleep(0.5)
    asyncio.run(load.run(gateway, concurrency=plan.concurrency, requests=10**9, seconds=seconds + 1))
    tops = {}
    for name, p in samplers.items():
        _, err = p.communicate(timeout=60)
        if p.returncode != 0:
            log(f"py-spy on the {name} failed: {err.decode(errors='replace').strip()[-300:]}")
        else:
            tops[name] = prof.summarize(outdir / f"{name}.txt")
    return tops


# ---------------------------------------------------------------------------- report

def table(r: dict) -> str:
    c1, fc, tp = r["nonstream_c1"], r["stream_c1_first_chunk"], r["throughput"]
    rows = [
        ("non-stream c=1, p50 (ms)", c1, "p50_ms"),
        ("non-stream c=1, p99 (ms)", c1, "p99_ms"),
        ("stream c=1, first chunk p50 (ms)", fc, "p50_ms"),
        ("stream c=1, first chunk p99 (ms)", fc, "p99_ms"),
    ]
    w = 40
    lines = [f"{'':{w}}{'direct':>10}{'via OneKey':>12}{'added':>10}"]
    for label, block, key in rows:
        lines.append(f"{label:{w}}{block['direct'][key]:>10.3f}{block['onekey'][key]:>12.3f}{block['added'][key]:>10.3f}")
    c = tp["concurrency"]
    lines.append(f"{f'non-stream c={c}, requests/s':{w}}{tp['direct']['rps']:>10.0f}{tp['onekey']['rps']:>12.0f}")
    lines.append(f"{f'non-stream c={c}, p50 / p99 (ms)':{w}}"
                 f"{tp['direct']['p50_ms']:>5.1f}/{tp['direct']['p99_ms']:<4.1f}"
                 f"{tp['onekey']['p50_ms']:>7.1f}/{tp['onekey']['p99_ms']:<4.1f}")
    lines.append(f"{f'non-stream c={c}, requests/s, two cores':{w}}{'':>10}{tp['onekey_two_cores']['rps']:>12.0f}")
    lines.append(f"{f'non-stream c={c}, p50 / p99 (ms), two cores':{w}}{'':>10}"
                 f"{tp['onekey_two_cores']['p50_ms']:>7.1f}/{tp['onekey_two_cores']['p99_ms']:<4.1f}")
    lines.append("")
    names = ("upstream", "core", "edge", "load_generator")
    lines.append(f"{'process':{w}}" + "".join(f"{n.replace('_generator', ' gen'):>10}" for n in names))
    lines.append(f"{'RSS after the run (MiB)':{w}}" + "".join(f"{r['rss_mib'][n]['rss']:>10.1f}" for n in names))
    lines.append(f"{'peak RSS (MiB)':{w}}" + "".join(f"{r['rss_mib'][n]['peak']:>10.1f}" for n in names))
    per = r["per_request"]
    for side, label in (("onekey", "via OneKey"), ("direct", "direct")):
        lines.append(f"{f'CPU per request, c={c} {label} (us)':{w}}"
                     + "".join(f"{per[side][n]['cpu_us']:>10.0f}" for n in names))
    lines.append(f"{'context switches per request, via OneKey':{w}}"
                 + "".join(f"{per['onekey'][n]['switches']:>10.1f}" for n in names))
    two = per["onekey_two_cores"]
    lines.append(f"{f'CPU per request, c={c} two cores (us)':{w}}"
                 + "".join(f"{two[n]['cpu_us']:>10.0f}" for n in names)
                 + f"   (core2 {two['core2']['cpu_us']:.0f})")
    errors = sum(b[k]["errors"] for b in (c1, fc, tp) for k in ("direct", "onekey"))
    errors += tp["onekey_two_cores"]["errors"]
    lines.append("")
    lines.append(f"errors: {errors}; the upstream served {r['upstream_served']} completions "
                 f"on {r['upstream_connections']} connections")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few hundred requests")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--profile", metavar="DIR", help="afterwards, sample core and edge with py-spy into DIR")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--native", action="store_true", help="profile C frames too (grpc, uvloop, aiohttp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (config, logs, database)")
    parser.add_argument("--database-url", help="the routing store both cores share (default: a SQLite file)")
    parser.add_argument("--durable-charges", action="store_true",
                        help="run the cores with durable_charges = true "
                             "(each paid answer ends after its charge is committed)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    def log(msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        uvloop = None
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="onekey-bench-"))
    started = time.monotonic()
    log(f"starting upstream, core and edge (work directory {workdir})")
    stack = start_stack(workdir, args.database_url or f"sqlite:///{workdir / 'router.db'}", args.durable_charges)
    try:
        runner = uvloop.run if uvloop else asyncio.run
        results = runner(measure(stack, plan, log))
        stack.procs.check_alive()
        if args.profile:
            results["profile"] = profile(stack, plan, pathlib.Path(args.profile), args.profile_seconds,
                                         args.native, log)
    finally:
        stack.procs.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"] = {
        "mode": "quick" if args.quick else "full", "model": MODEL, "cpus": os.cpu_count(),
        "durable_charges": args.durable_charges, "store": "postgresql" if args.database_url else "sqlite",
        "python": platform.python_version(), "platform": platform.platform(),
        "loop": "uvloop" if uvloop else "asyncio", "seconds": round(time.monotonic() - started, 1),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(table(results))
    if results.get("profile"):
        from bench.profile import render
        print()
        print(render(results["profile"]))
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        log(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
