"""The routing store goes away under a trickle of paid requests: never a 500, nothing lost.

A fault-injecting proxy sits between `onekey core` (real processes, as production runs them) and
PostgreSQL. Through each fault (connections refused; open ones cut; every byte held), with the
OpenAI SDK sending about eight paid requests a second:
- no request is answered 500 and none takes longer than the bound (store_timeout, 2 s, plus
  the margin a loaded machine needs); what cannot be decided from memory is a 503
  `store_unavailable` with retry-after;
- requests are served again within 15 s of the store's return, with no restart;
- once the cores have written their backlog, every served request has exactly one usage event
  and the balance is exactly the credit less the charges.
Then two cores on one PostgreSQL, one SIGKILLed under load with the default settings: once it
starts again, every request that was served is billed (its journal is replayed).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import urllib.error
import urllib.request
import time
from dataclasses import dataclass

import anthropic
import openai
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from tests.conftest import fresh_database
from tests.fakes.fault_proxy import FaultProxy
from tests.fakes.openai_provider import Behaviour, FakeOpenAI
from tests.procs import Cluster, Processes
from tests.stack import LoopThread

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MODEL = "openai/gpt-4.1"
MSGS = [{"role": "user", "content": "count the sheep please"}]
BOUND_S = 5.0        # store_timeout (2 s) and room for a loaded two-core machine
RECOVERY_S = 15.0
RATE = 8.0           # requests a second


@dataclass
class Outcome:
    started: float
    took: float
    status: int            # HTTP status; 0: no HTTP answer at all
    code: str = ""
    request_id: str = ""
    retry_after: str = ""


@pytest.fixture
def fake():
    loop = LoopThread()
    provider = FakeOpenAI()
    loop.run(provider.start())
    yield provider
    loop.run(provider.stop())
    loop.close()


@pytest.fixture
def pg(postgres_admin_url):
    yield from fresh_database(postgres_admin_url)


def _sync_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://")


def _channels(fake: FakeOpenAI) -> str:
    return (f'[[channels]]\nname = "fake"\nprovider = "openai"\nbase_url = "{fake.url}"\n'
            f'api_key = "{fake.api_key}"\n')


def _one(client: openai.OpenAI) -> Outcome:
    started = time.monotonic()
    try:
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MSGS, max_tokens=20)
        raw.parse()
        return Outcome(started, time.monotonic() - started, 200, request_id=raw.headers["x-onekey-request-id"])
    except openai.APIStatusError as err:
        body = err.body if isinstance(err.body, dict) else {}
        return Outcome(started, time.monotonic() - started, err.status_code, str(body.get("code") or ""),
                       retry_after=err.response.headers.get("retry-after", ""))
    except openai.APIConnectionError:
        return Outcome(started, time.monotonic() - started, 0)


class Trickle:
    """About RATE requests a second from a pool of threads, each outcome kept."""

    def __init__(self, base_url: str, key: str) -> None:
        self.client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=48)
        self.futures: list[concurrent.futures.Future] = []

    def run(self, seconds: float, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            self.futures.append(self.pool.submit(_one, self.client))
            time.sleep(1 / RATE)

    def outcomes(self) -> list[Outcome]:
        return [f.result() for f in self.futures]

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()


def _ledger(url: str, project: str) -> tuple[int, int, int, int, dict[str, tuple[int, int]]]:
    """(credited, charged, balance, leased, {request id: (status, charged)}) from the store itself."""
    engine = create_sync_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            credited = conn.execute(text("SELECT COALESCE(SUM(amount_micro_usd), 0) FROM credit_ledger "
                                         "WHERE project_id = :p"), {"p": project}).scalar()
            rows = conn.execute(text("SELECT request_id, status, charged_micro_usd FROM usage_events "
                                     "WHERE project_id = :p"), {"p": project}).all()
            balance, leased = conn.execute(text("SELECT balance_micro_usd, leased_micro_usd FROM projects "
                                                "WHERE id = :p"), {"p": project}).one()
    finally:
        engine.dispose()
    events = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    return int(credited), sum(c for _, c in events.values()), int(balance), int(leased), events


def _readyz(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_store_outage_is_never_a_500_and_loses_no_charge(tmp_path, pg, fake):
    host, port = "127.0.0.1", 5432
    with FaultProxy(host, port) as proxy:
        procs = Processes(tmp_path, proxy.url_for(pg), _channels(fake))
        trickle = None
        try:
            project, key = procs.new_key(usd="50")
            # Keys never used before the fault: not in the core's cache, so only the store can say.
            unseen = {mode: procs.onekey("key", "create", "--project", project) for mode in ("refuse", "cut", "hold")}
            unseen_anthropic = procs.onekey("key", "create", "--project", project)
            trickle = Trickle(procs.base_url, key)
            readyz = procs.base_url.removesuffix("/v1") + "/readyz"
            assert _readyz(readyz)[0] == 200
            report, firsts = {}, []
            for mode in ("refuse", "cut", "hold"):
                trickle.run(2.0)  # warm: the key cached, credit leased
                proxy.set(mode)
                faulted = len(trickle.futures)
                trickle.run(1.0)
                with openai.OpenAI(base_url=procs.base_url, api_key=unseen[mode], max_retries=0) as fresh:
                    first = _one(fresh)
                firsts.append(first)
                if mode == "cut":  # the Messages API's clients get its own shape of the same refusal
                    with anthropic.Anthropic(base_url=procs.base_url.removesuffix("/v1"), api_key=unseen_anthropic,
                                             max_retries=0) as claude:
                        with pytest.raises(anthropic.APIStatusError) as refused:
                            claude.messages.create(model=MODEL, max_tokens=20, messages=MSGS)
                    assert refused.value.status_code == 503 and refused.value.response.headers["retry-after"]
                    assert refused.value.body["type"] == "error" and refused.value.body["error"]["type"] == "api_error"
                trickle.run(5.0)
                status, state = _readyz(readyz)
                down = (status, state.get("store"))
                proxy.set("pass")
                recovered_at = time.monotonic()
                sent = len(trickle.futures)

                def served_again() -> bool:
                    return any(f.done() and f.result().status == 200 for f in trickle.futures[sent:])

                trickle.run(RECOVERY_S + 5, until=served_again)
                trickle.run(2.0)
                outcomes = trickle.outcomes()
                during = outcomes[faulted:sent]
                after = [o for o in outcomes[sent:] if o.status == 200]
                report[mode] = (len(during), sum(o.status == 200 for o in during),
                                max(o.took for o in during), down)
                assert all(o.status != 500 for o in outcomes), f"{mode}: a 500"
                assert all(o.status in (200, 503) for o in during), \
                    f"{mode}: {sorted({(o.status, o.code) for o in during})}"
                assert all(o.code == "store_unavailable" and o.retry_after for o in during if o.status == 503), mode
                assert max(o.took for o in outcomes) < BOUND_S, f"{mode}: slowest {max(o.took for o in outcomes):.1f}s"
                assert after and after[0].started + after[0].took - recovered_at < RECOVERY_S, f"{mode}: not back"
                if mode != "refuse":  # refused, new connections only: the pool's open ones still serve
                    assert down == (503, "down"), f"{mode}: /readyz said {down}"
                    assert (first.status, first.code) == (503, "store_unavailable") and first.took < BOUND_S, first
            status, state = _readyz(readyz)
            assert (status, state["store"]) == (200, "up")
            outcomes = trickle.outcomes()
        finally:
            if trickle is not None:
                trickle.close()
            procs.stop()  # drains: every usage batch written, every lease given back
        credited, charged, balance, leased, events = _ledger(pg, project)
        served = {o.request_id for o in outcomes + firsts if o.status == 200}
        billed = {rid for rid, (status, _) in events.items() if status == 200}
        assert served == billed, (f"exactly one usage event per served request: {len(served - billed)} served "
                                  f"unbilled, {len(billed - served)} billed unserved")
        assert all(events[rid][1] > 0 for rid in served), "every served request is charged"
        assert credited - charged == balance and leased == 0
        print("outage report (sent during, served during, slowest s, readyz):", report)


def test_a_core_killed_under_load_loses_no_charge_with_the_default_settings(tmp_path, pg, fake):
    """SIGKILL of one of two cores: its unwritten charges are in its journal, written when it
    starts again; every request a client received whole is billed, exactly once."""
    cluster = Cluster(tmp_path, pg, _channels(fake), core_extra="lease_renew_interval = 1\nlease_stale_after = 8\n")
    try:
        project = cluster.onekey("project", "create", "--credit", "20")
        key = cluster.onekey("key", "create", "--project", project)
        total, concurrency = 240, 24
        fake.queue(*[Behaviour(delay=0.05, chunk_delay=0.02) for _ in range(total + 50)])
        seen = len(fake.received)

        async def load() -> list[tuple[str, str]]:
            clients = [openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0) for url in cluster.base_urls]
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> tuple[str, str]:
                async with gate:
                    client = clients[i % 2]
                    try:
                        raw = await client.chat.completions.with_raw_response.create(
                            model=MODEL, messages=MSGS, stream=bool(i % 3 == 0))
                        parsed = raw.parse()
                        if i % 3 == 0:
                            [c async for c in parsed]
                        return "ok", raw.headers["x-onekey-request-id"]
                    except openai.APIError as err:  # cut mid-answer by the kill: never received whole
                        return f"failed: {type(err).__name__}", ""

            async def kill() -> None:
                while len(fake.received) < seen + total // 3:
                    await asyncio.sleep(0.01)
                cluster.kill_core(0)

            results = await asyncio.gather(*(one(i) for i in range(total)), kill())
            for client in clients:
                await client.close()
            return results[:total]

        results = asyncio.run(load())
        fake.behaviours.clear()
        served = {rid for outcome, rid in results if outcome == "ok"}
        assert len(served) >= total - concurrency, sorted({o for o, _ in results})
        dead = cluster.cores[0].pid
        cluster.start_core(0)  # replays the dead core's journal before it serves
        engine = create_sync_engine(_sync_url(pg))
        deadline = time.monotonic() + 30
        with engine.connect() as conn:  # the dead core's lease is reclaimed by a live one
            while conn.execute(text("SELECT COUNT(*) FROM credit_leases WHERE holder LIKE :h"),
                               {"h": f"%:{dead}:%"}).scalar() and time.monotonic() < deadline:
                conn.commit()
                time.sleep(0.2)
        engine.dispose()
    finally:
        cluster.stop()
    credited, charged, balance, leased, events = _ledger(pg, project)
    unbilled = [rid for rid in served if events.get(rid, (0, 0))[1] <= 0]
    assert not unbilled, f"{len(unbilled)} served requests never billed"
    assert credited - charged == balance and leased == 0
    assert "replayed usage events of a stopped core" in cluster.logs()
