"""The routing core's own CPU per request: `Forwarder.forward` driven directly, in one process.

No edge, no gRPC: a real Forwarder (key cache, rate limiter, credit leases, usage recorder on a
real SQLite store, the pooled provider client) sends each request to the fast fake upstream
(bench/upstream.py, a subprocess whose CPU is not counted) and the answer is consumed as the
servicer would. The figure is this process's CPU time (time.process_time) over N requests,
divided by N: everything the core spends on a request besides the RPC layer, background
usage writes included.

    python -m bench.core_path                      # non-stream and stream, µs of CPU per request
    python -m bench.core_path --profile cprofile   # and where the time goes (top functions)
    python -m bench.core_path --rpm 1000000        # with a key rate limit (the limiter's path)
    python -m bench.core_path --in-process         # answers from memory: no socket, no HTTP client

Rounds are repeated and the median reported, with the least: CPU time is steadier than wall
time on a shared machine, but other processes' load still moves single rounds (caches, CPU
frequency); the least is the round least disturbed, the better figure to compare two versions by.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pathlib
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = "openai/gpt-4.1-mini"
BODY = {"model": MODEL, "max_tokens": 32, "temperature": 0.2,
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Say hello in one short sentence."}]}
# What the edge lets through to the core (edge/handlers.py FORWARDED_HEADERS), as an SDK sends it.
HEADERS = {"user-agent": "OpenAI/Python 1.99.0"}


def start_upstream(gap_ms: float) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.upstream", "--port", "0", "--gap-ms", str(gap_ms)],
                            cwd=ROOT, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    if not line.startswith("READY port="):
        proc.kill()
        raise SystemExit("core_path: the upstream did not start")
    return proc, int(line.split("=", 1)[1])


class CannedResponse:
    """A provider's answer held in memory (the fake upstream's own bytes), for --in-process."""

    from bench import upstream as _upstream

    EVENTS = [framed.split(b"\r\n", 1)[1][:-2] for framed in _upstream.STREAM_EVENTS[True]]  # unframed
    BODY = _upstream._completion()

    def __init__(self, stream: bool) -> None:
        self.status = 200
        self.headers = {"content-type": "text/event-stream; charset=utf-8" if stream else "application/json"}
        self._events = self.EVENTS
        self._body = self.BODY

    async def chunks(self):
        for event in self._events:
            yield event

    async def read(self) -> bytes:
        return self._body

    def close(self) -> None:
        pass


class CannedHttp:
    """Stands in for the core's HttpClient: no socket, no HTTP client, the same answer every time.

    What is left to measure is the core's own Python. One pass through the event loop per
    request keeps the usage writer running as it would.
    """

    async def request(self, method: str, url: str, body: bytes | None, headers) -> CannedResponse:
        await asyncio.sleep(0)
        return CannedResponse(re.search(rb'"stream"\s*:\s*true', body or b"") is not None)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def build(workdir: pathlib.Path, upstream_port: int, rpm: int, in_process: bool = False):
    """A Forwarder wired as router_core/server.py wires it, minus gRPC; and its key."""
    from router_core.admin import AdminService
    from router_core.catalog import Catalog
    from router_core.channels import ChannelPool
    from router_core.credits import Credits
    from router_core.db import create_engine, session_factory
    from router_core.forward import Forwarder
    from router_core.keys import KeyValidator
    from router_core.metering import UsageRecorder
    from router_core.migrations import prepare_engine
    from router_core.providers import registry
    from router_core.providers.http import HttpClient
    from router_core.ratelimit import RateLimiter, create_store
    from router_core.response_owners import ResponseOwners
    from router_core.settings import ChannelSettings, Secret, Timeouts
    from router_core.tokens import TokenCounter

    engine = create_engine(f"sqlite:///{workdir / 'router.db'}")
    await prepare_engine(engine)
    sessions = session_factory(engine)
    keys = KeyValidator(sessions)
    admin = AdminService(sessions, keys)
    project = await admin.create_project("bench", 1_000_000_000, 0)
    _, secret = await admin.create_key(project.id, "bench", rate_limit_rpm=rpm or None)
    channel = ChannelSettings(name="bench-openai", provider="openai",
                              base_url=f"http://127.0.0.1:{upstream_port}/v1", api_key=Secret("sk-bench-0000000000"))
    catalog = Catalog.load(None)
    pool = ChannelPool([channel])
    owners = ResponseOwners(sessions)
    owners.start()
    http = CannedHttp() if in_process else HttpClient(Timeouts())
    await http.start()
    credits = Credits(sessions)
    tokens = TokenCounter()  # not loaded: used only for estimates, which no request here needs
    recorder = UsageRecorder(sessions, keys, credits)
    credits.flush_soon = recorder.flush_soon
    recorder.start()
    limiter = RateLimiter(create_store(), 0)
    forwarder = Forwarder(catalog, pool, keys, http, recorder, credits, tokens, registry(), owners=owners,
                          limiter=limiter)

    async def close() -> None:
        await owners.stop()
        await recorder.stop()
        await credits.close()
        await http.close()
        await engine.dispose()

    return forwarder, secret, close


async def one(forwarder, call) -> int:
    """Drive one request as the servicer does; the bytes of the answer."""
    from router_core.forward import Head, Trailer

    size = 0
    async with contextlib.aclosing(forwarder.forward(call)) as items:
        async for item in items:
            if isinstance(item, Head):
                if item.status != 200:
                    raise SystemExit(f"core_path: HTTP {item.status}: {item.body!r}")
                size += len(item.body or b"")
            elif isinstance(item, Trailer):
                if item.usage.estimated or not item.usage.input_tokens:
                    raise SystemExit("core_path: the answer's usage was not read")
            else:
                size += len(item)
    return size


async def rounds(forwarder, secret: str, stream: bool, n: int, repeat: int, concurrency: int,
                 profiler: cProfile.Profile | None) -> list[float]:
    """CPU µs per request of each round."""
    from router_core.forward import ForwardInput

    body = json.dumps({**BODY, "stream": True} if stream else BODY, separators=(",", ":")).encode()

    def call() -> ForwardInput:
        return ForwardInput(api_key=secret, endpoint="chat/completions", body=body, headers=list(HEADERS.items()),
                            request_id=f"req_{os.urandom(16).hex()}")

    async def worker(count: int) -> None:
        for _ in range(count):
            await one(forwarder, call())

    for _ in range(min(n, 200)):  # warm-up: connections, caches, the lease
        await one(forwarder, call())
    results = []
    for _ in range(repeat):
        if profiler is not None:
            profiler.enable()
        cpu = time.process_time()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        spent = time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
        results.append(spent / (n // concurrency * concurrency) * 1e6)
    return results


async def main_async(args: argparse.Namespace) -> dict:
    upstream, port = start_upstream(args.gap_ms)
    try:
        with tempfile.TemporaryDirectory(prefix="onekey-core-path-") as tmp:
            forwarder, secret, close = await build(pathlib.Path(tmp), port, args.rpm, args.in_process)
            try:
                report: dict = {}
                for name in args.only or ("non_stream", "stream"):
                    stream = name == "stream"
                    # CPU time of the event loop's thread, not wall time: a socket write that wakes the upstream
                    # is often pre-empted, which wall time would charge to the write.
                    profiler = cProfile.Profile(time.thread_time) if args.profile == "cprofile" else None
                    n = args.stream_requests if stream else args.requests
                    per = await rounds(forwarder, secret, stream, n, args.repeat, args.concurrency,
                                       profiler)
                    report[name] = {"cpu_us_per_request": round(statistics.median(per), 1),
                                    "min_cpu_us_per_request": round(min(per), 1),
                                    "rounds": [round(p, 1) for p in per]}
                    if profiler is not None:
                        out = io.StringIO()
                        stats = pstats.Stats(profiler, stream=out)
                        stats.sort_stats("tottime").print_stats(args.top)
                        stats.sort_stats("cumulative").print_stats(args.top)
                        report[name]["profile"] = out.getvalue()
            finally:
                await close()
    finally:
        upstream.terminate()
        upstream.wait(5)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.core_path", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--stream-requests", type=int, default=500, help="streamed requests per round")
    parser.add_argument("--gap-ms", type=float, default=1.0,
                        help="the upstream's pause between stream events (1 ms, as bench/run.py: one read per event)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the median is reported")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--in-process", action="store_true",
                        help="answer from memory instead of the upstream: the core's Python alone, no HTTP client")
    parser.add_argument("--rpm", type=int, default=0, help="give the key this rate limit (0: none)")
    parser.add_argument("--profile", choices=("cprofile",), help="profile the measured rounds")
    parser.add_argument("--top", type=int, default=30, help="functions listed per profile")
    parser.add_argument("--only", choices=("non_stream", "stream"), action="append",
                        help="measure only this kind (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # the core runs on uvloop where it is installed (onekey_cli/main.py)
        uvloop = None
    report = (uvloop.run if uvloop else asyncio.run)(main_async(args))
    report["loop"] = "uvloop" if uvloop else "asyncio"
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name in args.only or ("non_stream", "stream"):
        r = report[name]
        if "profile" in r:
            print(f"==== profile: {name}\n{r['profile']}")
        print(f"{name:>10}: {r['cpu_us_per_request']:7.1f} µs CPU/request, median (min {r['min_cpu_us_per_request']:.1f};"
              f" rounds: {r['rounds']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
