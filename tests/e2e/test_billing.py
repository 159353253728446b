"""Billing end to end: the OpenAI SDK through edge and core, a fake provider, SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import time

import openai
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from onekey.v1 import metering_pb2
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.fakes.openai_provider import Behaviour
from tests.stack import Stack, usage_events
from tests.stores import build

MSGS = [{"role": "user", "content": "count the sheep please"}]


@pytest.fixture
def billing_stack(database_url, loop_thread, fake_openai):
    build(database_url, "core")  # PostgreSQL is upgraded by the operator, not by the core
    s = Stack(CoreSettings(database_url=database_url, channels=(openai_channel(fake_openai),),
                           usage_flush_interval=0.05), loop=loop_thread)
    yield s
    s.stop()


def ledger(database_url: str, project_id: str) -> tuple[int, int, int, int]:
    """(credited, charged, balance, leased) read straight from the store."""
    url = database_url.replace("sqlite:///", "sqlite:///").replace("postgresql://", "postgresql+psycopg://")
    engine = create_sync_engine(url)
    with engine.connect() as conn:
        credited = conn.execute(text("SELECT COALESCE(SUM(amount_micro_usd), 0) FROM credit_ledger "
                                     "WHERE project_id = :p"), {"p": project_id}).scalar()
        charged = conn.execute(text("SELECT COALESCE(SUM(charged_micro_usd), 0) FROM usage_events "
                                    "WHERE project_id = :p"), {"p": project_id}).scalar()
        balance, leased = conn.execute(text("SELECT balance_micro_usd, leased_micro_usd FROM projects "
                                            "WHERE id = :p"), {"p": project_id}).one()
    engine.dispose()
    return int(credited), int(charged), int(balance), int(leased)


@pytest.mark.slow
def test_200_concurrent_requests_against_credit_for_about_20(billing_stack, database_url, fake_openai):
    # Estimate per request: (≈130 body bytes / 3 + 8) input + 40 output tokens of gpt-4.1
    # ($2 / $8 per 1M) ≈ 410 micro-USD. Credit for about 20 of them.
    credit = 8_400
    project_id, key = billing_stack.new_key(credit_micro_usd=credit)

    async def burst() -> list[int]:
        client = openai.AsyncOpenAI(base_url=billing_stack.base_url, api_key=key, max_retries=0)

        async def one() -> int:
            try:
                await client.chat.completions.create(model="openai/gpt-4.1", messages=MSGS, max_tokens=40)
                return 200
            except openai.APIStatusError as err:
                assert err.body["code"] == "insufficient_quota"
                return err.status_code

        try:
            return await asyncio.gather(*(one() for _ in range(200)))
        finally:
            await client.close()

    statuses = asyncio.run(burst())
    served = statuses.count(200)
    assert set(statuses) <= {200, 402}
    assert 0 < served < 200
    assert len(fake_openai.received) == served, "a refused request must never reach the provider"
    recorded = usage_events(billing_stack, project_id, 200)
    refused = [e for e in recorded if e.status == 402]
    assert len(refused) == 200 - served and {e.error_code for e in refused} == {"insufficient_quota"}
    assert all(e.charged_micro_usd == 0 and e.model == "openai/gpt-4.1" for e in refused)
    events = [e for e in recorded if e.status == 200]
    charged = [e.charged_micro_usd for e in events]
    assert len(events) == served and all(c > 0 for c in charged)
    assert served <= credit // min(charged)
    billing_stack.loop.run(billing_stack.core.recorder.flush())
    credited, total_charged, balance, leased = ledger(database_url, project_id)
    assert credited == credit
    overshoot = max(0, max(e.cost_micro_usd for e in events) - 410)
    assert balance >= -overshoot
    assert credited - total_charged == balance  # the ledger adds up to the micro-dollar
    assert leased <= max(balance, 0) or leased == 0


def test_exactly_20_free_requests_then_insufficient_quota(billing_stack, fake_openai):
    project_id, key = billing_stack.new_key(credit_micro_usd=0, free_requests=20)
    client = openai.OpenAI(base_url=billing_stack.base_url, api_key=key, max_retries=0)
    for _ in range(20):
        client.chat.completions.create(model="openai/gpt-4.1-mini", messages=MSGS)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="openai/gpt-4.1-mini", messages=MSGS)
    assert info.value.status_code == 402 and info.value.body["code"] == "insufficient_quota"
    assert info.value.body["type"] == "insufficient_quota"
    assert len(fake_openai.received) == 20
    events = usage_events(billing_stack, project_id, 21)
    assert [e.status for e in events].count(200) == 20 and events[0].status == 402
    assert all(e.cost_micro_usd > 0 and e.charged_micro_usd == 0 for e in events if e.status == 200)
    # Free models stay free and need neither credit nor free requests.
    assert client.chat.completions.create(model="sandbox/echo", messages=MSGS).choices[0].message.content


def test_stream_cut_by_client_is_cancelled_upstream_and_billed(billing_stack, fake_openai):
    project_id, key = billing_stack.new_key()
    long_text = " ".join(f"word{i}" for i in range(200))
    fake_openai.queue(Behaviour(chunk_delay=0.05))
    client = openai.OpenAI(base_url=billing_stack.base_url, api_key=key, max_retries=0)
    stream = client.chat.completions.create(model="openai/gpt-4.1", stream=True,
                                            messages=[{"role": "user", "content": long_text}])
    got = [next(iter(stream)) for _ in range(5)]
    request_id = stream.response.headers["x-onekey-request-id"]
    stream.close()
    cut_at = time.monotonic()
    while fake_openai.cancelled == 0:
        assert time.monotonic() - cut_at < 1.0, "the upstream call outlived the client by more than 1 s"
        time.sleep(0.01)
    assert len(got) == 5
    usage = None
    for _ in range(100):
        try:
            usage = billing_stack.metering.GetRequestUsage(
                metering_pb2.GetRequestUsageRequest(request_id=request_id, project_id=project_id),
                metadata=billing_stack.metadata)
            break
        except Exception:
            time.sleep(0.05)
    assert usage is not None
    assert usage.status == 499 and usage.usage.estimated
    assert usage.usage.input_tokens >= 200 and 0 < usage.usage.output_tokens < 200
    assert usage.charged_micro_usd == usage.cost_micro_usd > 0


@pytest.mark.parametrize("behaviour", [
    Behaviour(kind="no_usage"),
    Behaviour(usage={"prompt_tokens": -5, "completion_tokens": 3}),
    Behaviour(usage={"prompt_tokens": 10**13, "completion_tokens": 3}),
    Behaviour(usage={"prompt_tokens": "many", "completion_tokens": None}),
])
@pytest.mark.parametrize("stream", [False, True])
def test_missing_or_absurd_usage_is_estimated_never_free(billing_stack, fake_openai, behaviour, stream):
    project_id, key = billing_stack.new_key()
    fake_openai.queue(behaviour)
    client = openai.OpenAI(base_url=billing_stack.base_url, api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="openai/gpt-4.1", messages=MSGS, stream=stream)
    reply = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
    else:
        text = reply.choices[0].message.content
    assert text == MSGS[0]["content"]
    usage = billing_stack.metering.GetRequestUsage(
        metering_pb2.GetRequestUsageRequest(request_id=raw.headers["x-onekey-request-id"]),
        metadata=billing_stack.metadata)
    assert usage.usage.estimated and usage.usage.output_tokens == 4 and usage.usage.input_tokens > 0
    assert usage.charged_micro_usd > 0


def test_metering_service_reports_usage_by_day_model_and_request(billing_stack, fake_openai):
    project_id, key = billing_stack.new_key(credit_micro_usd=1_000_000)
    client = openai.OpenAI(base_url=billing_stack.base_url, api_key=key, max_retries=0)
    ids = []
    for model in ("openai/gpt-4.1", "openai/gpt-4.1", "openai/gpt-5-mini"):
        raw = client.chat.completions.with_raw_response.create(model=model, messages=MSGS)
        ids.append(raw.headers["x-onekey-request-id"])
    events = usage_events(billing_stack, project_id, 3)
    assert {e.request_id for e in events} == set(ids)
    by_model = billing_stack.metering.GetUsageSummary(metering_pb2.GetUsageSummaryRequest(
        project_id=project_id, group_by=metering_pb2.GROUP_BY_MODEL), metadata=billing_stack.metadata)
    assert {r.group: r.requests for r in by_model.rows} == {"openai/gpt-4.1": 2, "openai/gpt-5-mini": 1}
    assert by_model.total.cost_micro_usd == sum(e.cost_micro_usd for e in events)
    by_day = billing_stack.metering.GetUsageSummary(metering_pb2.GetUsageSummaryRequest(
        project_id=project_id, group_by=metering_pb2.GROUP_BY_DAY), metadata=billing_stack.metadata)
    assert len(by_day.rows) == 1 and by_day.rows[0].requests == 3
    page = billing_stack.metering.ListUsageEvents(metering_pb2.ListUsageEventsRequest(
        project_id=project_id, page_size=2), metadata=billing_stack.metadata)
    rest = billing_stack.metering.ListUsageEvents(metering_pb2.ListUsageEventsRequest(
        project_id=project_id, page_size=2, page_token=page.next_page_token), metadata=billing_stack.metadata)
    assert len(page.events) == 2 and len(rest.events) == 1 and not rest.next_page_token
    assert {e.request_id for e in [*page.events, *rest.events]} == set(ids)
    balance = billing_stack.metering.GetBalance(metering_pb2.GetBalanceRequest(project_id=project_id),
                                                metadata=billing_stack.metadata)
    assert balance.balance_micro_usd == 1_000_000 - sum(e.charged_micro_usd for e in events)


def test_with_durable_charges_an_answer_ends_after_its_charge_is_written(database_url, loop_thread, fake_openai):
    # Batches would wait a minute here: only the durable path can have written the charge.
    build(database_url, "core")
    s = Stack(CoreSettings(database_url=database_url, channels=(openai_channel(fake_openai),),
                           usage_flush_interval=60, durable_charges=True), loop=loop_thread)
    try:
        project_id, key = s.new_key(credit_micro_usd=1_000_000)
        client = openai.OpenAI(base_url=s.base_url, api_key=key, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="openai/gpt-4.1", messages=MSGS)
        assert raw.parse().choices[0].message.content
        credited, charged, balance, _ = ledger(database_url, project_id)  # read at once, no waiting
        assert charged > 0 and credited - charged == balance
        request_id = raw.headers["x-onekey-request-id"]
        assert [e.request_id for e in usage_events(s, project_id, 1, timeout=0)] == [request_id]
    finally:
        s.stop()
