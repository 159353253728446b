"""Two cores and two edges as separate processes on one PostgreSQL: one OneKey, as seen by the
OpenAI SDK — credit, free requests, revocation and a core killed under load."""
from __future__ import annotations

import asyncio
import json
import re
import time

import openai
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from router_core.catalog import Catalog
from router_core.usage import Usage, cost_micro_usd, reservation_usage
from tests.conftest import fresh_database
from tests.fakes.openai_provider import Behaviour, FakeOpenAI
from tests.procs import Cluster
from tests.stack import LoopThread

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MODEL = "openai/gpt-4.1"
MSGS = [{"role": "user", "content": "count the sheep please"}]
MAX_TOKENS = 40
# What the fake provider reports for each request of the credit tests: a known cost.
USAGE = {"prompt_tokens": 10, "completion_tokens": MAX_TOKENS, "total_tokens": 10 + MAX_TOKENS}
COST = cost_micro_usd(Catalog.load().resolve(MODEL), Usage(10, MAX_TOKENS))


def estimate(slack_bytes: int) -> int:
    """The core's reservation for the request the SDK sends, with `slack_bytes` of doubt about
    how the SDK lays out its JSON (a few bytes move the estimate by a micro-dollar or so)."""
    body = {"messages": MSGS, "model": MODEL, "max_tokens": MAX_TOKENS}
    size = len(json.dumps(body)) + slack_bytes
    return cost_micro_usd(Catalog.load().resolve(MODEL), reservation_usage(body, max(size, 0)))


ESTIMATE_HIGH = estimate(64)
ESTIMATE_LOW = estimate(-64)


@pytest.fixture(scope="module")
def pg_database(postgres_admin_url):
    """A database of its own for the whole cluster (the module shares one cluster)."""
    yield from fresh_database(postgres_admin_url)


@pytest.fixture(scope="module")
def fake():
    loop = LoopThread()
    provider = FakeOpenAI()
    loop.run(provider.start())
    yield provider
    loop.run(provider.stop())
    loop.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_database, fake):
    root = tmp_path_factory.mktemp("cluster")
    channels = (f'[[channels]]\nname = "fake"\nprovider = "openai"\nbase_url = "{fake.url}"\n'
                f'api_key = "{fake.api_key}"\n')
    # A short reclaim time, so the test sees a killed core's leases come back; and each paid
    # answer ends only once its charge is committed.
    c = Cluster(root, pg_database, channels,
                core_extra="lease_renew_interval = 1\nlease_stale_after = 8\ndurable_charges = true\n")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def store(pg_database):
    engine = create_sync_engine(pg_database.replace("postgresql://", "postgresql+psycopg://"))
    yield engine
    engine.dispose()


def ledger(store, project_id: str) -> tuple[int, int, int, int]:
    """(credited, charged, balance, leased) read straight from the store."""
    with store.connect() as conn:
        credited = conn.execute(text("SELECT COALESCE(SUM(amount_micro_usd), 0) FROM credit_ledger "
                                     "WHERE project_id = :p"), {"p": project_id}).scalar()
        charged = conn.execute(text("SELECT COALESCE(SUM(charged_micro_usd), 0) FROM usage_events "
                                    "WHERE project_id = :p"), {"p": project_id}).scalar()
        balance, leased = conn.execute(text("SELECT balance_micro_usd, leased_micro_usd FROM projects "
                                            "WHERE id = :p"), {"p": project_id}).one()
    return int(credited), int(charged), int(balance), int(leased)


def events(store, project_id: str) -> dict[str, tuple[int, int]]:
    with store.connect() as conn:
        rows = conn.execute(text("SELECT request_id, status, charged_micro_usd FROM usage_events "
                                 "WHERE project_id = :p"), {"p": project_id}).all()
    return {r: (s, c) for r, s, c in rows}


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def new_key(cluster: Cluster, core: int = 0, usd: str = "0", free: int = 0) -> tuple[str, str, str]:
    """(project id, key secret, key id), made through the given core replica."""
    project = cluster.onekey("project", "create", "--credit", usd, "--free-requests", str(free), core=core)
    created = json.loads(cluster.onekey("key", "create", "--project", project, "--json", core=core))
    return project, created["secret"], created["key"]["id"]


async def burst(cluster: Cluster, key: str, count: int, concurrency: int) -> list[int]:
    """`count` requests over both edges in turn, `concurrency` at a time: the HTTP statuses."""
    clients = [openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0) for url in cluster.base_urls]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with gate:
            try:
                await clients[i % len(clients)].chat.completions.create(model=MODEL, messages=MSGS,
                                                                        max_tokens=MAX_TOKENS)
                return 200
            except openai.APIStatusError as err:
                assert err.body["code"] == "insufficient_quota", err.body
                return err.status_code

    try:
        return await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        for client in clients:
            await client.close()


def test_400_concurrent_requests_against_credit_for_about_40(cluster, fake, store):
    assert ESTIMATE_LOW > COST  # the fake reports less than the core reserved: no overshoot
    credit = 40 * COST + COST // 2
    project, key, _ = new_key(cluster, usd=f"{credit / 1_000_000:.6f}")
    fake.queue(*[Behaviour(usage=USAGE) for _ in range(400)])
    try:
        statuses = asyncio.run(burst(cluster, key, 400, 400))
    finally:
        fake.behaviours.clear()
    served = statuses.count(200)
    print(f"served {served} of 400; bounds {credit // ESTIMATE_HIGH}..{credit // COST}")
    assert set(statuses) <= {200, 402}
    # The documented bound: never more than the balance pays for, never fewer than the
    # estimates it covers (a request is refused only when balance − reservations in flight
    # cannot cover its estimate).
    assert credit // ESTIMATE_HIGH <= served <= credit // COST
    wait_for(lambda: sum(1 for s, _ in events(store, project).values() if s == 200) == served, 20,
             "usage events")
    credited, charged, balance, leased = ledger(store, project)
    assert credited == credit and charged == served * COST
    assert credited - charged == balance  # to the micro-dollar
    assert balance >= 0  # costs below estimates: the documented overshoot is zero
    assert 0 <= leased <= balance


def test_exactly_n_free_requests_across_both_replicas(cluster, store):
    project, key, _ = new_key(cluster, free=10)
    statuses = asyncio.run(burst(cluster, key, 50, 50))
    assert statuses.count(200) == 10 and statuses.count(402) == 40
    credited, charged, balance, _ = ledger(store, project)
    assert (credited, charged, balance) == (0, 0, 0)


def test_credit_for_three_requests_serves_all_three_whichever_replicas_they_hit(cluster, fake, store):
    credit = 3 * ESTIMATE_HIGH
    project, key, _ = new_key(cluster, usd=f"{credit / 1_000_000:.6f}")
    clients = [openai.OpenAI(base_url=url, api_key=key, max_retries=0) for url in cluster.base_urls]
    fake.queue(*[Behaviour(usage=USAGE) for _ in range(3)])
    for i in range(3):
        reply = clients[i % 2].chat.completions.create(model=MODEL, messages=MSGS, max_tokens=MAX_TOKENS)
        assert reply.choices[0].message.content
    # What is left (3 × (estimate − cost)) covers no fourth estimate.
    with pytest.raises(openai.APIStatusError) as err:
        clients[1].chat.completions.create(model=MODEL, messages=MSGS, max_tokens=MAX_TOKENS)
    assert err.value.status_code == 402
    wait_for(lambda: len(events(store, project)) >= 3, 10, "usage events")
    credited, charged, balance, _ = ledger(store, project)
    assert charged == 3 * COST and credited - charged == balance == credit - 3 * COST


def test_a_keys_spend_limit_holds_across_both_replicas_under_a_burst(cluster, fake, store):
    """Issue 23, finding 1: requests in flight on either replica hold their estimate against the
    key's limit, so a burst over both serves within the bound documented for credit."""
    limit = 40 * COST + COST // 2
    project = cluster.onekey("project", "create", "--credit", "10", core=0)
    created = json.loads(cluster.onekey("key", "create", "--project", project, "--spend-limit",
                                        f"{limit / 1_000_000:.6f}", "--json", core=1))
    key, key_id = created["secret"], created["key"]["id"]
    fake.queue(*[Behaviour(usage=USAGE, delay=0.2) for _ in range(400)])
    clients = [openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0) for url in cluster.base_urls]

    async def one(i: int) -> int:
        try:
            await clients[i % 2].chat.completions.create(model=MODEL, messages=MSGS, max_tokens=MAX_TOKENS)
            return 200
        except openai.APIStatusError as err:
            assert err.body["code"] == "key_spend_limit_reached", err.body
            return err.status_code

    async def run() -> list[int]:
        try:
            return await asyncio.gather(*(one(i) for i in range(400)))
        finally:
            for client in clients:
                await client.close()

    try:
        statuses = asyncio.run(run())
    finally:
        fake.behaviours.clear()
    served = statuses.count(200)
    print(f"served {served} of 400; bounds {limit // ESTIMATE_HIGH}..{limit // COST}")
    assert set(statuses) <= {200, 402}
    assert limit // ESTIMATE_HIGH <= served <= limit // COST
    wait_for(lambda: sum(1 for s, _ in events(store, project).values() if s == 200) == served, 20, "usage events")

    def counters():
        with store.connect() as conn:
            return conn.execute(text("SELECT month_spend_micro_usd, spend_held_micro_usd FROM api_keys "
                                     "WHERE id = :k"), {"k": key_id}).one()
    spent, _ = wait_for(lambda: (row := counters())[1] == 0 and row, 10, "every hold given back")
    assert spent == served * COST == sum(c for _, c in events(store, project).values())


@pytest.mark.parametrize("revoking_core", [0, 1])
def test_a_key_revoked_through_either_core_is_refused_by_every_edge_within_5s(cluster, revoking_core):
    _, key, key_id = new_key(cluster, usd="1")
    clients = [openai.OpenAI(base_url=url, api_key=key, max_retries=0) for url in cluster.base_urls]
    for client in clients:
        client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=5)
    cluster.onekey("key", "revoke", key_id, core=revoking_core)
    revoked_at = time.monotonic()
    served_after: list[float] = []
    i = 0
    while time.monotonic() - revoked_at < 5.0:  # keys are cached for seconds on each core
        try:
            clients[i % 2].chat.completions.create(model=MODEL, messages=MSGS, max_tokens=5)
            served_after.append(time.monotonic() - revoked_at)
        except openai.AuthenticationError:
            pass
        i += 1
        time.sleep(0.05)
    # From 5 s on, every edge refuses it, through every core (each edge alternates cores).
    for i in range(8):
        with pytest.raises(openai.AuthenticationError):
            clients[i % 2].chat.completions.create(model=MODEL, messages=MSGS, max_tokens=5)
    assert all(t < 5.0 for t in served_after)


def _counter(metrics: str, name: str) -> float:
    found = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", metrics, re.M)
    return float(found.group(1)) if found else 0.0


def test_sigkill_of_one_core_under_load(cluster, fake, store):
    project, key, _ = new_key(cluster, usd="10")
    total, concurrency = 240, 24
    words = " ".join(f"w{i}" for i in range(10))
    fake.queue(*[Behaviour(delay=0.1, chunk_delay=0.05) for _ in range(total + 100)])
    before: dict[str, tuple[int, int]] = {}
    killed_at: list[float] = []

    async def load() -> list[tuple[str, float, str]]:
        clients = [openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0) for url in cluster.base_urls]
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> tuple[str, float, str]:
            async with gate:
                client = clients[i % 2]
                messages = [{"role": "user", "content": words}]
                request_id = ""
                try:
                    if i % 3:
                        raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
                        request_id = raw.headers["x-onekey-request-id"]
                        got = raw.parse().choices[0].message.content
                    else:
                        stream = await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
                        got = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
                except openai.APIError as err:
                    # Only a stream cut mid-way on the killed core may fail, and it says so.
                    assert i % 3 == 0 and "interrupted" in str(err), err
                    return "cut", time.monotonic(), request_id
                assert got == words
                return "ok", time.monotonic(), request_id

        async def kill() -> None:
            while len(fake.received) < fake_seen + total // 3:
                await asyncio.sleep(0.01)
            before.update(events(store, project))  # charges already written
            cluster.kill_core(0)
            killed_at.append(time.monotonic())

        fake_seen = len(fake.received)
        results = await asyncio.gather(*(one(i) for i in range(total)), kill())
        for client in clients:
            await client.close()
        return results[:total]

    try:
        results = asyncio.run(load())
    finally:
        fake.behaviours.clear()
    outcomes = [r for r, _, _ in results]
    cut = outcomes.count("cut")
    assert cut <= concurrency and outcomes.count("ok") == total - cut
    # Requests kept being served through the other core after the kill.
    assert sum(1 for r, t, _ in results if r == "ok" and t > killed_at[0]) >= total // 2
    # The dead core's leases come back once they stop being renewed; the live core counts them.
    dead_pid = cluster.cores[0].pid

    def dead_leases() -> int:
        with store.connect() as conn:
            return conn.execute(text("SELECT COUNT(*) FROM credit_leases WHERE holder LIKE :h"),
                                {"h": f"%:{dead_pid}:%"}).scalar()

    wait_for(lambda: dead_leases() == 0, 30, "the killed core's leases to be reclaimed")
    assert "reclaimed leases of stopped replicas" in cluster.logs()
    reclaimed = _counter(cluster.metrics(1), "onekey_core_leases_reclaimed_micro_usd_total")
    assert reclaimed > 0
    # Nothing already charged was lost, and the ledger adds up.
    after = events(store, project)
    assert all(after.get(rid) == row for rid, row in before.items())
    # durable_charges: every whole answer a client received was charged before it ended.
    whole = [rid for r, _, rid in results if r == "ok" and rid]
    assert whole and all(after.get(rid, (0, 0))[1] > 0 for rid in whole)
    served = outcomes.count("ok") + cut
    wait_for(lambda: len(events(store, project)) >= served - 2 * concurrency, 10, "usage events")
    # Lost with the killed core: at most its last usage-flush interval of requests.
    assert served - len(events(store, project)) <= 2 * concurrency
    print(f"cut mid-stream {cut}; served without an event {served - len(events(store, project))}; "
          f"reclaimed unsettled {reclaimed:.0f} micro-USD")
    credited, charged, balance, _ = ledger(store, project)
    assert credited - charged == balance

    # The dead core comes back and gets calls again (the edges redial it within seconds).
    cluster.start_core(0)

    def core0_serves() -> bool:
        statuses = asyncio.run(burst(cluster, key, 8, 8))
        assert set(statuses) == {200}
        return _counter(cluster.metrics(0), r'onekey_channel_attempts_total') > 0

    wait_for(core0_serves, 30, "the restarted core to be called again")
    cluster.stop()
    credited, charged, balance, leased = ledger(store, project)
    assert credited - charged == balance and leased == 0

