"""Request rate limits end to end: the OpenAI SDK through the real edge and core."""
from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from dataclasses import replace

import openai
import pytest

from onekey.v1 import admin_pb2, metering_pb2
from router_core.settings import CoreSettings, Secret
from tests.conftest import openai_channel
from tests.stack import Stack, usage_events
from tests.stores import build

MSGS = [{"role": "user", "content": "how many sheep"}]
MODEL = "openai/gpt-4.1-mini"
GO_DURATION = re.compile(r"^(\d+m)?\d+(\.\d+)?s$|^\d+ms$")


@pytest.fixture
def make_stack(loop_thread, fake_openai, tmp_path):
    stacks = []

    def make(database_url: str | None = None, **settings) -> Stack:
        if database_url and not stacks:
            build(database_url, "core")  # PostgreSQL is upgraded by the operator, not by the core
        base = CoreSettings(database_url=database_url or f"sqlite:///{tmp_path}/router.db",
                            channels=(openai_channel(fake_openai),), usage_flush_interval=0.05)
        stack = Stack(replace(base, **settings), loop=loop_thread)
        stacks.append(stack)
        return stack

    yield make
    for s in stacks:
        s.stop()


def new_key(stack: Stack, project_id: str, rpm: int | None = None) -> str:
    request = admin_pb2.CreateKeyRequest(project_id=project_id, rate_limit_rpm=rpm)  # named "key N"
    return stack.admin.CreateKey(request, metadata=stack.metadata).secret


def new_project(stack: Stack, credit: int = 5_000_000, rpm: int | None = None) -> str:
    return stack.admin.CreateProject(admin_pb2.CreateProjectRequest(
        name="rl", credit_micro_usd=credit, rate_limit_rpm=rpm), metadata=stack.metadata).id


def ask(client: openai.OpenAI):
    return client.chat.completions.with_raw_response.create(model=MODEL, messages=MSGS, max_tokens=20)


def balance(stack: Stack, project_id: str) -> int:
    return stack.metering.GetBalance(metering_pb2.GetBalanceRequest(project_id=project_id),
                                     metadata=stack.metadata).balance_micro_usd


def test_over_the_limit_is_429_with_openai_headers_and_costs_nothing(make_stack, database_url, fake_openai):
    stack = make_stack(database_url)
    credit = 5_000_000
    project = new_project(stack, credit)
    client = openai.OpenAI(base_url=stack.base_url, api_key=new_key(stack, project, rpm=3), max_retries=0)

    served = [ask(client) for _ in range(3)]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in served] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in served)
    assert all(GO_DURATION.match(r.headers["x-ratelimit-reset-requests"]) for r in served)
    assert served[0].parse().choices[0].message.content

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=20)
    err = caught.value
    assert err.status_code == 429
    assert err.body["code"] == "rate_limit_exceeded" and err.body["type"] == "requests"
    assert err.body["param"] is None and "Limit 3" in err.body["message"]
    h = err.response.headers
    assert h["x-ratelimit-limit-requests"] == "3" and h["x-ratelimit-remaining-requests"] == "0"
    assert GO_DURATION.match(h["x-ratelimit-reset-requests"])
    assert 1 <= int(h["retry-after"]) <= 61 and int(h["retry-after-ms"]) <= 61_000
    # The SDK waits out a retry-after of up to 60 s: then its retry is admitted, so "true"; a
    # longer wait (a burst's slots free 60-61 s later) would only be refused again: "false".
    assert h["x-should-retry"] == ("true" if int(h["retry-after-ms"]) <= 60_000 else "false")
    assert h["x-onekey-request-id"].startswith("req_")

    # The refused request never reached the provider, reserved nothing and billed nothing; it
    # is recorded as a refused request (metadata only), like every other failed one.
    assert len(fake_openai.received) == 3
    events = usage_events(stack, project, 4)
    assert sorted(e.status for e in events) == [200, 200, 200, 429]
    refused = next(e for e in events if e.status == 429)
    assert (refused.error_code, refused.charged_micro_usd) == ("rate_limit_exceeded", 0)
    assert balance(stack, project) == credit - sum(e.charged_micro_usd for e in events)


def test_streams_carry_the_headers_and_count_too(make_stack):
    stack = make_stack()
    client = openai.OpenAI(base_url=stack.base_url, api_key=new_key(stack, new_project(stack), rpm=2),
                           max_retries=0)
    with client.chat.completions.with_streaming_response.create(model=MODEL, messages=MSGS, stream=True) as resp:
        assert resp.headers["x-ratelimit-remaining-requests"] == "1"
        assert "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    ask(client)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=MSGS, stream=True)


def test_default_limit_key_overrides_and_project_limit(make_stack, fake_openai):
    stack = make_stack(rate_limit_rpm=2, metrics_listen="127.0.0.1:0")
    project = new_project(stack)

    default_client = openai.OpenAI(base_url=stack.base_url, api_key=new_key(stack, project), max_retries=0)
    assert ask(default_client).headers["x-ratelimit-limit-requests"] == "2"
    ask(default_client)
    with pytest.raises(openai.RateLimitError):
        ask(default_client)

    unlimited = openai.OpenAI(base_url=stack.base_url, api_key=new_key(stack, project, rpm=0), max_retries=0)
    replies = [ask(unlimited) for _ in range(5)]
    assert all("x-ratelimit-limit-requests" not in r.headers for r in replies)

    # A project limit counts all its keys together, whatever each key may do.
    shared = new_project(stack, rpm=3)
    a = openai.OpenAI(base_url=stack.base_url, api_key=new_key(stack, shared, rpm=10), max_retries=0)
    b = openai.OpenAI(base_url=stack.base_url, api_key=new_key(stack, shared, rpm=10), max_retries=0)
    ask(a), ask(b)
    assert ask(a).headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as caught:
        ask(b)
    assert "this project" in caught.value.body["message"]

    with urllib.request.urlopen(f"http://127.0.0.1:{stack.core.metrics_port}/metrics", timeout=5) as resp:
        scraped = resp.read().decode()
    assert 'onekey_rate_limited_requests_total{scope="key"} 1.0' in scraped
    assert 'onekey_rate_limited_requests_total{scope="project"} 1.0' in scraped
    assert "onekey_rate_limit_store_fallbacks_total 0.0" in scraped


def test_a_limit_set_through_admin_applies_and_clears(make_stack):
    stack = make_stack()
    project = new_project(stack)
    created = stack.admin.CreateKey(admin_pb2.CreateKeyRequest(project_id=project, name="k"),
                                    metadata=stack.metadata)
    assert not created.key.HasField("rate_limit_rpm")
    client = openai.OpenAI(base_url=stack.base_url, api_key=created.secret, max_retries=0)
    assert "x-ratelimit-limit-requests" not in ask(client).headers  # off by default

    updated = stack.admin.SetRateLimit(admin_pb2.SetRateLimitRequest(key_id=created.key.id, rate_limit_rpm=1),
                                       metadata=stack.metadata)
    assert updated.key.rate_limit_rpm == 1
    assert ask(client).headers["x-ratelimit-limit-requests"] == "1"  # at once on this replica
    with pytest.raises(openai.RateLimitError):
        ask(client)

    cleared = stack.admin.SetRateLimit(admin_pb2.SetRateLimitRequest(key_id=created.key.id),
                                       metadata=stack.metadata)
    assert not cleared.key.HasField("rate_limit_rpm")
    assert "x-ratelimit-limit-requests" not in ask(client).headers

    project_set = stack.admin.SetRateLimit(admin_pb2.SetRateLimitRequest(project_id=project, rate_limit_rpm=7),
                                           metadata=stack.metadata)
    assert project_set.project.rate_limit_rpm == 7
    listed = stack.admin.ListKeys(admin_pb2.ListKeysRequest(project_id=project), metadata=stack.metadata)
    assert [k.HasField("rate_limit_rpm") for k in listed.keys] == [False]


def test_bad_limits_are_refused_clearly(make_stack):
    import grpc

    stack = make_stack()
    project = new_project(stack)
    for request in (admin_pb2.SetRateLimitRequest(project_id=project, rate_limit_rpm=-1),
                    admin_pb2.SetRateLimitRequest(rate_limit_rpm=5),
                    admin_pb2.SetRateLimitRequest(key_id="no-such-key", rate_limit_rpm=5)):
        with pytest.raises(grpc.RpcError) as caught:
            stack.admin.SetRateLimit(request, metadata=stack.metadata)
        assert caught.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


@pytest.mark.redis
@pytest.mark.parametrize("shared", [True, False], ids=["redis", "memory"])
def test_two_cores_sharing_redis_hold_one_limit(make_stack, redis_url, fake_openai, shared):
    """Two core replicas (each with its edge) on one database: with Redis the limit is global."""
    limit = 12
    # A generous timeout: all four servers share this test's one event loop on a busy machine, and
    # a Redis answer late past the default 0.5 s would be counted in memory instead (tested apart).
    settings = {"redis_url": Secret(redis_url), "redis_timeout": 5.0} if shared else {}
    first = make_stack(**settings)
    second = make_stack(first.core.settings.database_url, **settings)
    project = new_project(first)
    key = new_key(first, project, rpm=limit)

    async def burst() -> list[int]:
        clients = [openai.AsyncOpenAI(base_url=s.base_url, api_key=key, max_retries=0) for s in (first, second)]

        async def one(i: int) -> int:
            try:
                await clients[i % 2].chat.completions.create(model=MODEL, messages=MSGS, max_tokens=5)
                return 200
            except openai.RateLimitError:
                return 429

        try:
            return list(await asyncio.gather(*(one(i) for i in range(4 * limit))))
        finally:
            for c in clients:
                await c.close()

    statuses = asyncio.run(burst())
    served = statuses.count(200)
    assert set(statuses) <= {200, 429}
    if shared:
        fallbacks = first.core.limiter.fallbacks + second.core.limiter.fallbacks
        assert served == limit, f"fallbacks={fallbacks}"  # one counter for both replicas: exact
    else:
        assert served == 2 * limit  # each replica alone: why the shared store exists
    assert len(fake_openai.received) == served


def test_stored_response_calls_count_too(make_stack, fake_openai):
    stack = make_stack()
    client = openai.OpenAI(base_url=stack.base_url, api_key=new_key(stack, new_project(stack), rpm=2),
                           max_retries=0)
    created = client.responses.create(model="openai/gpt-4.1", input="remember this")
    fetched = client.responses.with_raw_response.retrieve(created.id)
    assert fetched.headers["x-ratelimit-remaining-requests"] == "0"
    calls = len(fake_openai.received)
    with pytest.raises(openai.RateLimitError):
        client.responses.retrieve(created.id)
    assert len(fake_openai.received) == calls  # refused before the provider was asked


def test_the_sdk_does_not_retry_a_refusal_it_could_not_wait_out(make_stack):
    """A burst's slot frees 60-61 s later, beyond the 60 s the SDK honours: x-should-retry false
    makes it raise at once (its own retries, after a short backoff, would only be refused)."""
    stack = make_stack()
    key = new_key(stack, new_project(stack), rpm=1)
    client = openai.OpenAI(base_url=stack.base_url, api_key=key)  # the SDK's default: 2 retries
    while time.time() % 1 > 0.1:  # start early in a second, so the refusal's wait is over 60 s
        time.sleep(0.02)
    client.chat.completions.create(model=MODEL, messages=MSGS)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MSGS)
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert int(caught.value.response.headers["retry-after-ms"]) > 60_000
    assert stack.core.limiter.refused["key"] == 1  # asked once: no retry reached the core
