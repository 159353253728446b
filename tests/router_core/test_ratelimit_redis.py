"""The Redis limiter against a real Redis: the same rule as in memory, atomic across clients,
and counting in memory (logged, without secrets) while Redis cannot be reached."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest

from router_core.ratelimit.redis_store import KEY_PREFIX, RedisWindow, redis_location
from router_core.ratelimit.window import Limit
from tests.fakes.fault_proxy import FaultProxy
from tests.procs import free_port

pytestmark = pytest.mark.redis


def fresh(rpm: int, kind: str = "key") -> Limit:
    return Limit(kind, f"{{test-{uuid.uuid4().hex}}}:{kind}", rpm)


@pytest.fixture
async def window(redis_url):
    w = RedisWindow(redis_url, timeout=2.0)
    yield w
    await w.close()


async def test_admits_up_to_the_limit_then_refuses(window):
    limit = fresh(3)
    decisions = [await window.hit([limit]) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    refused = decisions[-1]
    # Redis's clock: the three admitted sit in this second, and leave the span 60-61 s from now.
    assert 59.0 < refused.retry_after_s <= 61.0 and 59.0 < refused.reset_s <= 61.0
    assert refused.limit is limit


async def test_key_and_project_counters_move_together(window):
    project = fresh(2, "project")
    a, b = fresh(5), fresh(5)
    assert (await window.hit([a, project])).allowed
    assert (await window.hit([b, project])).allowed
    refused = await window.hit([a, project])
    assert not refused.allowed and refused.limit is project
    # The refusal counted nowhere: `a` still has 4 of 5 left.
    assert (await window.hit([a])).remaining == 3


async def test_counters_expire_and_hold_ids_only(window, redis_url):
    import redis.asyncio as aioredis

    limit = fresh(10)
    await window.hit([limit])
    client = aioredis.Redis.from_url(redis_url)
    try:
        name = KEY_PREFIX + limit.name
        ttl = await client.ttl(name)
        fields = await client.hgetall(name)
    finally:
        await client.aclose()
    assert 0 < ttl <= 62
    assert len(fields) == 1 and list(fields.values()) == [b"1"]


async def test_many_clients_at_once_admit_exactly_the_limit(redis_url):
    """Replicas race on one counter: the script makes check-and-count one step."""
    clients = [RedisWindow(redis_url, timeout=5.0) for _ in range(4)]
    limit = fresh(25)
    try:
        results = await asyncio.gather(*(clients[i % 4].hit([limit]) for i in range(120)))
    finally:
        for c in clients:
            await c.close()
    assert sum(d.allowed for d in results) == 25


async def test_unreachable_redis_counts_in_memory_and_logs_without_secrets(caplog):
    url = f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0"  # nothing listens there
    window = RedisWindow(url, timeout=0.3, retry_interval=60)
    limit = fresh(2)
    try:
        with caplog.at_level(logging.WARNING, logger="router_core.ratelimit.redis_store"):
            decisions = [await window.hit([limit]) for _ in range(3)]
    finally:
        await window.close()
    # Fail-open to this replica's memory: the limit still holds here.
    assert [d.allowed for d in decisions] == [True, True, False]
    assert window.fallbacks == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings  # said once, not per request
    assert "unreachable" in warnings[0] and redis_location(url) in warnings[0]
    assert "s3cret" not in caplog.text


def windows_via(proxy: FaultProxy, redis_url: str, **kw) -> RedisWindow:
    return RedisWindow(proxy.url_for(redis_url), **kw)


async def until(predicate, within: float) -> bool:
    """Wait until predicate() holds (True), or `within` seconds pass (False)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.fixture
def proxy(redis_url):
    from urllib.parse import urlsplit

    with FaultProxy("127.0.0.1", urlsplit(redis_url).port or 6379) as p:
        yield p


async def test_back_to_shared_counting_when_redis_answers_again(redis_url, proxy, caplog):
    window = windows_via(proxy, redis_url, timeout=0.5, retry_interval=0.1)
    shared = RedisWindow(redis_url, timeout=2.0)
    limit = fresh(100)
    try:
        with caplog.at_level(logging.WARNING, logger="router_core.ratelimit.redis_store"):
            assert (await window.hit([limit])).remaining == 99
            assert window.shared_up is True
            await asyncio.to_thread(proxy.set, "cut")
            assert (await window.hit([limit])).remaining == 99  # counted in memory: its first
            assert window.shared_up is False
            await asyncio.to_thread(proxy.set, "pass")
            # No request is needed to notice: the probe does.
            assert await until(lambda: window.shared_up, within=10)
            assert (await window.hit([limit])).remaining == 98  # back on the shared counter
        assert (await shared.hit([limit])).remaining == 97
        messages = [r.getMessage() for r in caplog.records]
        assert any("unreachable" in m for m in messages) and any("answers again" in m for m in messages)
    finally:
        await window.close()
        await shared.close()


async def test_a_silent_redis_costs_one_timeout_then_nothing(redis_url, proxy):
    """A partition (no bytes move): the requests in flight wait out `timeout`, the next ones
    count in memory at once, and none is refused for it."""
    window = windows_via(proxy, redis_url, timeout=0.3, retry_interval=0.1)
    limit = fresh(3)
    try:
        assert (await window.hit([fresh(5)])).allowed  # a pooled connection, as in steady use
        await asyncio.to_thread(proxy.set, "hold")
        started = time.monotonic()
        first = await asyncio.gather(*(window.hit([limit]) for _ in range(3)))  # in flight together
        waited = time.monotonic() - started
        assert window.shared_up is False and 0.3 <= waited < 3.0
        assert [d.allowed for d in first] == [True, True, True]
        started = time.monotonic()
        later = [await window.hit([limit]) for _ in range(5)]
        assert time.monotonic() - started < 0.3, "no request waits for Redis once it is known down"
        assert not any(d.allowed for d in later), "the limit still holds, in memory"
        await asyncio.to_thread(proxy.set, "pass")
        assert await until(lambda: window.shared_up, within=10)
    finally:
        await window.close()


async def test_refused_connections_are_an_outage_too(redis_url):
    """Nothing listening (a Redis restarting): memory at once, and the probe keeps trying."""
    window = RedisWindow(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3, retry_interval=0.05)
    try:
        assert (await window.hit([fresh(1)])).allowed
        assert window.shared_up is False
        await asyncio.sleep(0.3)  # several probes fail meanwhile, without a word
        assert window.shared_up is False and window.fallbacks == 1
    finally:
        await window.close()
    assert window._probe is None or window._probe.done(), "close() stops the probe"


async def test_the_limiter_says_whether_its_store_is_shared_now(redis_url):
    from router_core.keys import KeyIdentity
    from router_core.ratelimit import RateLimiter, create_store
    from router_core.ratelimit.memory import MemoryWindow

    assert RateLimiter(MemoryWindow()).shared_store_up is None  # nothing shared: neither up nor down
    shared = RateLimiter(create_store(redis_url, 2.0))
    gone = RateLimiter(create_store(f"redis://127.0.0.1:{free_port()}/0", 0.3))
    try:
        assert shared.shared_store_up is True and gone.shared_store_up is True  # until a hit says otherwise
        identity = KeyIdentity(project_id=f"test-{uuid.uuid4().hex}", key_id="k", key_rpm=5)
        assert await shared.admit(identity) and await gone.admit(identity)  # both admit, with headers
        assert shared.shared_store_up is True and gone.shared_store_up is False
    finally:
        await shared.close()
        await gone.close()


async def test_closing_while_redis_is_silent_does_not_hang(redis_url, proxy):
    """A core stopping during a partition: the limiter lets go within its timeout."""
    window = windows_via(proxy, redis_url, timeout=0.3, retry_interval=0.05)
    assert (await window.hit([fresh(5)])).allowed
    await asyncio.to_thread(proxy.set, "hold")
    await window.hit([fresh(5)])
    assert window.shared_up is False
    await asyncio.sleep(0.2)  # a probe is waiting on the silent connection meanwhile
    started = time.monotonic()
    await asyncio.wait_for(window.close(), 5)
    assert time.monotonic() - started < 2.0
