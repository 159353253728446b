"""Responses API ownership on SQLite and PostgreSQL: a stored response is reachable only from
the project that created it, on every replica, and nothing else reaches provider-side state."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from router_core import tables
from router_core.db import create_engine, session_factory
from router_core.errors import InvalidRequest, NotFound
from router_core.response_owners import Owner, ResponseOwners
from tests.stores import build


@pytest.fixture
async def sessions(database_url):
    build(database_url, "core")
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def test_only_the_creating_project_may_continue_a_response(sessions):
    owners = ResponseOwners(sessions)
    owners.start()
    try:
        assert await owners.record("resp_a1", Owner("project-a", "openai", "openai-2"))
        assert await owners.check("project-a", "openai", {"previous_response_id": "resp_a1"}) == "openai-2"
        for project, provider, rid in (("project-b", "openai", "resp_a1"), ("project-a", "xai", "resp_a1"),
                                       ("project-a", "openai", "resp_never_made")):
            with pytest.raises(NotFound) as info:
                await owners.check(project, provider, {"previous_response_id": rid})
            assert info.value.param == "previous_response_id" and "project-a" not in info.value.message
        assert await owners.check("project-b", "openai", {"input": "no previous"}) is None
    finally:
        await owners.stop()


async def test_another_replica_finds_the_owner_in_the_store(sessions):
    a, b = ResponseOwners(sessions), ResponseOwners(sessions)
    a.start()
    b.start()
    try:
        # Concurrent records share commits; each returns only once its row is durable.
        done = await asyncio.gather(*(a.record(f"resp_{i}", Owner("p1", "xai", "xai-a")) for i in range(20)))
        assert all(done)
        assert await b.check("p1", "xai", {"previous_response_id": "resp_7"}) == "xai-a"
        with pytest.raises(NotFound):
            await b.check("p2", "xai", {"previous_response_id": "resp_7"})
        async with sessions() as session:
            rows = (await session.execute(select(tables.ResponseOwner))).scalars().all()
        assert len(rows) == 20 and {r.project_id for r in rows} == {"p1"}
    finally:
        await a.stop()
        await b.stop()


async def test_an_id_keeps_its_first_owner(sessions):
    owners = ResponseOwners(sessions)  # not started: commits inline
    await owners.record("resp_x", Owner("p1", "openai", "c"))
    other = ResponseOwners(sessions)
    await other.record("resp_x", Owner("p2", "openai", "c"))
    fresh = ResponseOwners(sessions)
    assert (await fresh.owner("resp_x")).project_id == "p1"


@pytest.mark.parametrize("conversation", ["conv_123", {"id": "conv_123"}])
async def test_a_conversation_is_never_the_projects(sessions, conversation):
    with pytest.raises(NotFound) as info:
        await ResponseOwners(sessions).check("p", "openai", {"conversation": conversation})
    assert info.value.param == "conversation" and "conv_123" in info.value.message


@pytest.mark.parametrize("body, param", [
    ({"background": True}, "background"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input"),
    ({"previous_response_id": 42}, "previous_response_id"),
])
async def test_other_handles_on_provider_state_are_refused(sessions, body, param):
    with pytest.raises(InvalidRequest) as info:
        await ResponseOwners(sessions).check("p", "openai", body)
    assert info.value.param == param


async def test_bind_records_the_id_before_the_answer_leaves(sessions):
    from router_core.forward import Head

    owners = ResponseOwners(sessions)
    seen: list[bool] = []

    async def stream():
        yield Head(status=200, headers=[], request_id="r", channel="openai-a")
        yield (b'event: response.created\ndata: {"type":"response.created","response":'
               b'{"id":"resp_s1","status":"in_progress"}}\n\n')
        seen.append("resp_s1" in owners._cache)
        yield b'event: response.completed\ndata: {"type":"response.completed"}\n\n'

    async def whole():
        yield Head(status=200, headers=[], request_id="r", channel="openai-b", body=b'{"id": "resp_n1"}')

    items = [i async for i in owners.bind(stream(), "p", "openai")]
    assert len(items) == 3 and seen == [True]
    items = [i async for i in owners.bind(whole(), "p", "openai")]
    fresh = ResponseOwners(sessions)
    assert await fresh.owner("resp_s1") == Owner("p", "openai", "openai-a")
    assert await fresh.owner("resp_n1") == Owner("p", "openai", "openai-b")
