"""`python -m bench.run [--quick] [--json FILE] [--shape one-process|separate]`: OneKey against a peer.

Starts, each as its own process: the fast fake upstream, OneKey (exactly as production starts it,
from a generated TOML file: one `onekey router` process, or a core and an edge) and the peer
gateway Portkey (installed from npm on first use; skipped, and said so, when node or npm is
missing or with --no-peer), makes a project and key with the operator CLI, then drives the same
load generator at the upstream directly, at OneKey and at Portkey, and prints the differences
and the comparison against the goals of issue 14. Last, it starts `onekey up` as a user would and
sums its processes' idle memory. See bench/README.md for how to read the figures.
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
from dataclasses import dataclass, field

from bench import compare, load, peer, report, up, upstream
from bench.load import LONG_EVENTS, RunResult, Target, free_port, percentile
from bench.proc import context_switches, cpu_seconds, memory_mib, rss_mib, tree

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = "openai/gpt-4.1-mini"
HOST = "127.0.0.1"
SHAPES = ("one-process", "separate")


@dataclass(frozen=True)
class Plan:
    """How many requests each phase sends (and its time bound)."""

    warmup: int
    c1_requests: int
    stream_requests: int
    rounds: int
    c32_seconds: float
    settle_s: float          # idle time before memory is read
    concurrency: int = 32
    phase_cap_s: float = 60.0


FULL = Plan(warmup=300, c1_requests=3000, stream_requests=900, rounds=5, c32_seconds=8.0, settle_s=3.0)
QUICK = Plan(warmup=50, c1_requests=300, stream_requests=60, rounds=2, c32_seconds=1.5, settle_s=1.0)


# ---------------------------------------------------------------------------- processes

class Processes:
    """The processes under test, stopped (edges first) whatever happens."""

    STOP_ORDER = ("portkey", "edge", "edge2", "router", "core", "core2", "upstream")

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

    def stop(self, names: tuple[str, ...] | None = None) -> None:
        chosen = [n for n in self.STOP_ORDER if n in self.procs and (names is None or n in names)]
        for name in chosen:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in chosen:
            proc = self.procs[name]
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
                 name: str = "onekey", cores: tuple[int, ...] = (), durable: bool = False,
                 journal: bool = True) -> tuple[pathlib.Path, int, int]:
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
journal_dir = "{workdir / "journal" if journal else ""}"

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


def router_command_available() -> bool:
    """True when this OneKey has `onekey router` (edge and core in one process)."""
    done = subprocess.run([sys.executable, "-m", "onekey_cli", "router", "--help"], cwd=ROOT,
                          capture_output=True, timeout=60)
    return done.returncode == 0


@dataclass
class Stack:
    procs: Processes
    upstream_port: int
    edge_port: int
    provider_key: str
    client_key: str
    shape: str
    onekey: tuple[str, ...]           # the names of OneKey's processes (routing path)
    edge2_port: int = 0               # an edge in front of both cores (--two-cores)
    portkey_port: int = 0             # 0: no peer in this run
    peer_skipped: str = ""            # why, when there is no peer
    peer_stream_check: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def wait_healthy(port: int, procs: Processes, name: str) -> None:
    deadline = time.monotonic() + 30
    while not healthy(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: the {name} never became healthy:\n{procs.log_tail(name)}")
        procs.check_alive()
        time.sleep(0.1)


def start_upstream(procs: Processes) -> int:
    proc = procs.spawn("upstream", [sys.executable, "-m", "bench.upstream", "--port", "0"],
                       dict(os.environ), ROOT, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    if not line.startswith("READY port="):
        raise SystemExit(f"bench: the upstream did not start:\n{procs.log_tail('upstream')}")
    return int(line.split("=", 1)[1])


def start_stack(workdir: pathlib.Path, database_url: str, *, durable: bool = False, shape: str = "one-process",
                two_cores: bool = False, journal: bool = True) -> Stack:
    procs = Processes(workdir)
    try:
        upstream_port = start_upstream(procs)
        provider_key = f"sk-bench-{secrets.token_hex(16)}"
        config, core_port, edge_port = write_config(workdir, upstream_port, provider_key, database_url,
                                                    durable=durable, journal=journal)
        env = {**os.environ, "ONEKEY_SERVICE_TOKEN": secrets.token_urlsafe(32)}
        env.pop("ONEKEY_CONFIG", None)
        # The schema is upgraded once, before the gateway starts, as `onekey up` does for SQLite
        # and an operator does for PostgreSQL: the processes measured run on a store at head
        # (one that upgrades itself keeps Alembic in memory for as long as it runs).
        subprocess.run([sys.executable, "-m", "onekey_cli", "db", "upgrade", "--store", "core",
                        "--config", str(config)], env=env, cwd=workdir, check=True, capture_output=True,
                       timeout=120)
        if shape == "one-process":
            procs.spawn("router", [sys.executable, "-m", "onekey_cli", "router", "--config", str(config)],
                        env, workdir)
            names: tuple[str, ...] = ("router",)
        else:
            procs.spawn("core", [sys.executable, "-m", "onekey_cli", "core", "--config", str(config)], env, workdir)
            names = ("core", "edge")
        wait_port(core_port, procs)
        project = operator(config, env, "project", "create", "--name", "bench",
                           "--credit", "1000000", "--free-requests", "0")
        key = operator(config, env, "key", "create", "--project", project["id"], "--name", "bench")
        if shape == "separate":
            procs.spawn("edge", [sys.executable, "-m", "onekey_cli", "edge", "--config", str(config)], env, workdir)
        wait_port(edge_port, procs)
        wait_healthy(edge_port, procs, names[-1])
        stack = Stack(procs, upstream_port, edge_port, provider_key, key["secret"], shape, names)
        if two_cores:
            # The second replica: its own core on the same store, and an edge given both cores.
            config2, core2_port, edge2_port = write_config(workdir, upstream_port, provider_key, database_url,
                                                           name="onekey2", cores=(core_port,), durable=durable,
                                                           journal=journal)
            procs.spawn("core2", [sys.executable, "-m", "onekey_cli", "core", "--config", str(config2)], env,
                        workdir)
            wait_port(core2_port, procs)
            procs.spawn("edge2", [sys.executable, "-m", "onekey_cli", "edge", "--config", str(config2)], env,
                        workdir)
            wait_port(edge2_port, procs)
            wait_healthy(edge2_port, procs, "edge2")
            stack.edge2_port = edge2_port
        return stack
    except BaseException:
        procs.stop()
        raise


def start_peer(stack: Stack, log) -> None:
    """Install (first time) and start Portkey with one route to the upstream; or say why not."""
    try:
        script = peer.install(log)
    except peer.PeerUnavailable as exc:
        stack.peer_skipped = str(exc)
        return
    port = free_port()
    stack.procs.spawn("portkey", peer.command(script, port), peer.environment(dict(os.environ)),
                      stack.procs.workdir)
    wait_port(port, stack.procs)
    stack.portkey_port = port


def check_peer_stream(stack: Stack, log, attempts: int = 3) -> None:
    """Portkey's streams must arrive chunk by chunk (they arrive whole with a newer @hono/node-server).

    Up to `attempts` slow streams: on a busy machine one late first chunk can bunch a whole stream.
    """
    for _ in range(attempts):
        check = chunk_by_chunk(portkey_target(stack, "/slow/v1"))
        if check["ok"]:
            break
    stack.peer_stream_check = check
    log(f"the peer passes a slow stream on in {check['reads_with_events']} pieces over {check['spread_ms']:.0f} ms "
        f"(first after {check['first_ms']} ms): {'chunk by chunk' if check['ok'] else 'BUFFERED'}")


def portkey_target(stack: Stack, base: str = "/v1") -> Target:
    return load.target("portkey", HOST, stack.portkey_port, "/v1", stack.provider_key, MODEL.split("/", 1)[1],
                       headers=peer.route(f"http://{HOST}:{stack.upstream_port}{base}"))


def chunk_by_chunk(t: Target) -> dict:
    """Does a stream whose events leave the upstream SLOW_GAP_S apart arrive in pieces, spread out?"""
    reads = asyncio.run(load.arrivals(t))
    with_events = [(ms, n) for ms, n in reads if n]
    spread = with_events[-1][0] - with_events[0][0] if with_events else 0.0
    # The slow stream: 11 events (10 and [DONE]) leave over 10 gaps; half of them, over a third of the time.
    ok = len(with_events) >= 5 and spread >= 10 * upstream.SLOW_GAP_S * 1000 / 3
    return {"ok": ok, "reads_with_events": len(with_events), "first_ms": with_events[0][0] if with_events else None,
            "spread_ms": round(spread, 1)}


# ---------------------------------------------------------------------------- measuring

def summary(r: RunResult, first: bool = False) -> dict:
    values = r.first_ns if first else r.total_ns
    return {"n": r.count, "errors": r.errors, "p50_ms": round(percentile(values, 50), 3),
            "p90_ms": round(percentile(values, 90), 3), "p99_ms": round(percentile(values, 99), 3),
            "mean_ms": round(sum(values) / len(values) / 1e6, 3) if values else float("nan")}


def added(direct: dict, via: dict) -> dict:
    return {k: round(via[k] - direct[k], 3) for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms")}


def block(results: list[RunResult], targets: list[Target], first: bool = False) -> dict:
    """Summaries of one phase by target name, and what each gateway added over direct."""
    out = {t.name: summary(r, first) for t, r in zip(targets, results)}
    out["added"] = added(out["direct"], out["onekey"])
    if "portkey" in out:
        out["added_portkey"] = added(out["direct"], out["portkey"])
    if "onekey_translated" in out:
        out["added_translated"] = added(out["direct"], out["onekey_translated"])
    return out


async def interleaved(targets: list[Target], plan: Plan, total: int, stream: bool) -> list[RunResult]:
    """c=1 rounds taking the targets in turn, so drift (heat, noise) hits them all alike."""
    results = [RunResult() for _ in targets]
    per_round = max(1, total // plan.rounds)
    cap = plan.phase_cap_s / (len(targets) * plan.rounds)
    for _ in range(plan.rounds):
        for t, r in zip(targets, results):
            await load.run(t, concurrency=1, requests=per_round, seconds=cap, stream=stream, result=r)
    return results


async def throughput(targets: list[Target], plan: Plan, pids: dict[str, int], long_stream: bool = False
                     ) -> tuple[dict[str, dict], dict[str, dict]]:
    """Requests/s of each target at the plan's concurrency, and CPU per request of each process.

    Each target gets c32_seconds in all, in rounds taking the targets in turn (as at c=1), so a
    burst of other work on a shared machine hits them all alike.
    """
    for t in targets:
        await load.run(t, concurrency=plan.concurrency, requests=10**9, seconds=min(1.0, plan.c32_seconds / 3),
                       long_stream=long_stream)
    runs = {t.name: RunResult() for t in targets}
    spent = {t.name: {name: [0.0, 0] for name in pids} for t in targets}
    for _ in range(plan.rounds):
        for t in targets:
            before = {name: (cpu_seconds(pid), context_switches(pid)) for name, pid in pids.items()}
            await load.run(t, concurrency=plan.concurrency, requests=10**9, seconds=plan.c32_seconds / plan.rounds,
                           long_stream=long_stream, result=runs[t.name])
            for name, pid in pids.items():
                spent[t.name][name][0] += cpu_seconds(pid) - before[name][0]
                spent[t.name][name][1] += context_switches(pid) - before[name][1]
    out, cost = {}, {}
    for t in targets:
        r = runs[t.name]
        out[t.name] = {**summary(r), "rps": round(r.count / r.elapsed_s, 1), "seconds": round(r.elapsed_s, 2)}
        n = max(r.count, 1)
        cost[t.name] = {name: {"cpu_us": round(cpu / n * 1e6, 1), "switches": round(switches / n, 2)}
                        for name, (cpu, switches) in spent[t.name].items()}
    return out, cost


def gateway_processes(stack: Stack) -> dict[str, dict[str, int]]:
    """Each gateway's processes (all of them, children included) by name."""
    procs = stack.procs.procs
    groups = {"onekey": {}, "portkey": {}}
    for gateway, names in (("onekey", stack.onekey), ("portkey", ("portkey",) if stack.portkey_port else ())):
        for name in names:
            for i, pid in enumerate(tree(procs[name].pid)):
                groups[gateway][name if i == 0 else f"{name}.{pid}"] = pid
    return {g: p for g, p in groups.items() if p}


def idle_memory(stack: Stack) -> dict:
    return {gateway: memory_mib(pids) for gateway, pids in gateway_processes(stack).items()}


async def measure(stack: Stack, plan: Plan, log) -> dict:
    direct = load.target("direct", HOST, stack.upstream_port, "/v1", stack.provider_key, MODEL.split("/", 1)[1])
    onekey = load.target("onekey", HOST, stack.edge_port, "/v1", stack.client_key, MODEL)
    targets = [direct, onekey] + ([portkey_target(stack)] if stack.portkey_port else [])
    # The same model asked in Anthropic's Messages format: OneKey's translated route, at c=1 only.
    translated = load.messages_target("onekey_translated", HOST, stack.edge_port, stack.client_key, MODEL)
    names = ", ".join(t.name for t in targets)
    groups = gateway_processes(stack)
    pids = {"upstream": stack.procs.procs["upstream"].pid,
            **{name: pid for g in groups.values() for name, pid in g.items()},
            "load_generator": os.getpid()}

    log(f"warm-up: {plan.warmup} requests to each of {names}: plain, streamed, concurrent")
    for t in targets:
        await load.run(t, concurrency=1, requests=plan.warmup, seconds=30)
        await load.run(t, concurrency=1, requests=plan.warmup // 5, seconds=30, stream=True)
        await load.run(t, concurrency=plan.concurrency, requests=plan.warmup * 2, seconds=30)
        await load.run(t, concurrency=plan.concurrency, requests=plan.warmup, seconds=30, long_stream=True)
    await load.run(translated, concurrency=1, requests=plan.warmup, seconds=30)
    await load.run(translated, concurrency=1, requests=plan.warmup // 5, seconds=30, stream=True)
    at_c1 = [*targets, translated]

    log(f"non-stream, c=1: {plan.c1_requests} requests to each, {plan.rounds} rounds taking turns")
    c1 = block(await interleaved(at_c1, plan, plan.c1_requests, stream=False), at_c1)

    log(f"stream, c=1: {plan.stream_requests} streams to each, {plan.rounds} rounds taking turns")
    runs = await interleaved(at_c1, plan, plan.stream_requests, stream=True)
    first, whole = block(runs, at_c1, first=True), block(runs, at_c1)

    log(f"non-stream, c={plan.concurrency}: {plan.c32_seconds:g}s to each, {plan.rounds} rounds taking turns")
    tp, per_request = await throughput(targets, plan, pids)
    tp["concurrency"] = plan.concurrency

    if stack.edge2_port:
        log(f"non-stream, c={plan.concurrency}, two cores behind one edge: {plan.c32_seconds:g}s")
        two = load.target("onekey-2", HOST, stack.edge2_port, "/v1", stack.client_key, MODEL)
        await load.run(two, concurrency=plan.concurrency, requests=plan.warmup, seconds=30)
        procs = stack.procs.procs
        # The first core is OneKey's router or core process (its edge, if any, stays idle).
        first_core = {name: procs[name].pid for name in stack.onekey if name != "edge"}
        pids2 = {"upstream": procs["upstream"].pid, **first_core, "core2": procs["core2"].pid,
                 "edge2": procs["edge2"].pid, "load_generator": os.getpid()}
        tp_two, cost_two = await throughput([two], plan, pids2)
        tp["onekey_two_cores"], per_request["onekey_two_cores"] = tp_two["onekey-2"], cost_two["onekey-2"]

    log(f"stream of {LONG_EVENTS} chunks, c={plan.concurrency}: {plan.c32_seconds:g}s to each, "
        f"{plan.rounds} rounds taking turns")
    st, per_stream = await throughput(targets, plan, pids, long_stream=True)
    st.update(concurrency=plan.concurrency, content_events=LONG_EVENTS)

    stats = json.loads((await load.get(HOST, stack.upstream_port, "/stats")).body)
    gateway_cpu = {g: {"processes": list(p),
                       "per_request_us": round(sum(per_request[g][n]["cpu_us"] for n in p), 1),
                       "per_stream_us": round(sum(per_stream[g][n]["cpu_us"] for n in p), 1)}
                   for g, p in groups.items()}
    return {
        "nonstream_c1": c1,
        "stream_c1_first_chunk": first,
        "stream_c1_complete": whole,
        "throughput": tp,
        "stream_throughput": st,
        "per_request": per_request,
        "per_stream": per_stream,
        "gateway_cpu": gateway_cpu,
        "upstream_served": stats["served"],
        "upstream_connections": stats["connections"],
        "rss_mib": {name: rss_mib(pid) for name, pid in pids.items()},
    }


# ---------------------------------------------------------------------------- profiling

def profile(stack: Stack, plan: Plan, outdir: pathlib.Path, seconds: float, native: bool, log) -> dict:
    """Sample OneKey's processes under load at the plan's concurrency; top frames of each."""
    from bench import profile as prof

    spy = shutil.which("py-spy") or str(pathlib.Path(sys.executable).with_name("py-spy"))
    if not pathlib.Path(spy).exists():
        log("profile skipped: py-spy is not installed (pip install py-spy)")
        return {}
    outdir.mkdir(parents=True, exist_ok=True)
    gateway = load.target("onekey", HOST, stack.edge_port, "/v1", stack.client_key, MODEL)
    samplers = {}
    for name in stack.onekey:
        pid = stack.procs.procs[name].pid
        # Native unwinding needs the process paused at each sample; Python frames alone do not.
        mode = ["--native", "--gil"] if native else ["--nonblocking"]
        samplers[name] = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--rate", "200", "--duration", str(int(seconds)),
             "--format", "raw", "--output", str(outdir / f"{name}.txt"), *mode],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log(f"profiling {' and '.join(stack.onekey)} for {seconds:.0f}s under c={plan.concurrency} "
        f"(figures in {outdir})")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few hundred requests")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--shape", choices=SHAPES, default="one-process",
                        help="OneKey as one `onekey router` process (default) or a core and an edge")
    parser.add_argument("--no-peer", action="store_true", help="measure OneKey alone, without Portkey")
    parser.add_argument("--no-up", action="store_true", help="skip the idle memory of `onekey up`")
    parser.add_argument("--two-cores", action="store_true",
                        help="also measure a second core replica and an edge given both cores")
    parser.add_argument("--profile", metavar="DIR", help="afterwards, sample OneKey's processes with py-spy into DIR")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--native", action="store_true", help="profile C frames too (grpc, uvloop, aiohttp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (config, logs, database)")
    parser.add_argument("--database-url", help="the routing store the cores share (default: a SQLite file)")
    parser.add_argument("--durable-charges", action="store_true",
                        help="run the cores with durable_charges = true "
                             "(each paid answer ends after its charge is committed)")
    parser.add_argument("--no-journal", action="store_true",
                        help="run the cores without the usage journal (journal_dir = \"\"), to measure its cost")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    def log(msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        uvloop = None
    notes = []
    shape = args.shape
    if shape == "one-process" and not router_command_available():
        shape = "separate"
        notes.append("this OneKey has no `onekey router` command: measured the separate shape (core + edge)")
        log(notes[-1])
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="onekey-bench-"))
    started = time.monotonic()
    log(f"starting upstream and OneKey ({shape}) (work directory {workdir})")
    stack = start_stack(workdir, args.database_url or f"sqlite:///{workdir / 'router.db'}",
                        durable=args.durable_charges, shape=shape, two_cores=args.two_cores,
                            journal=not args.no_journal)
    try:
        if args.no_peer:
            stack.peer_skipped = "--no-peer"
        else:
            start_peer(stack, log)
        if stack.peer_skipped:
            notes.append(f"the peer (Portkey) was skipped: {stack.peer_skipped}")
            log(notes[-1])
        time.sleep(plan.settle_s)
        idle = idle_memory(stack)  # after start-up, before any request through either gateway
        if stack.portkey_port:
            check_peer_stream(stack, log)
        runner = uvloop.run if uvloop else asyncio.run
        results = runner(measure(stack, plan, log))
        stack.procs.check_alive()
        results["memory"] = {"idle": idle, "after": idle_memory(stack)}
        if stack.peer_stream_check:
            results["peer_stream_check"] = stack.peer_stream_check
        if args.profile:
            results["profile"] = profile(stack, plan, pathlib.Path(args.profile), args.profile_seconds,
                                         args.native, log)
        stack.procs.stop(("portkey", "edge", "edge2", "router", "core", "core2"))
        if not args.no_up:
            log("starting `onekey up` in a fresh directory for its idle memory")
            results["up"] = up.measure(stack.upstream_port, stack.provider_key, plan.settle_s, log)
    finally:
        stack.procs.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"] = {
        "mode": "quick" if args.quick else "full", "model": MODEL, "cpus": os.cpu_count(), "shape": shape,
        "peer": {"name": "portkey", "version": peer.version_note(), "skipped": stack.peer_skipped or None},
        "durable_charges": args.durable_charges, "journal": not args.no_journal, "store": "postgresql" if args.database_url else "sqlite",
        "python": platform.python_version(), "platform": platform.platform(),
        "loop": "uvloop" if uvloop else "asyncio", "seconds": round(time.monotonic() - started, 1),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "notes": notes,
    }
    results["comparison"] = compare.as_json(compare.comparison(results))
    print(report.report(results))
    if results.get("profile"):
        from bench.profile import render
        print()
        print(render(results["profile"]))
    log(f"done in {results['meta']['seconds']:.0f}s")
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        log(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
