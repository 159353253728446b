"""Shared fixtures: PostgreSQL (real, when reachable), fake providers, the running stack."""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from router_core.settings import ChannelSettings, CoreSettings, Secret
from tests.fakes.openai_provider import FakeOpenAI
from tests.stack import LoopThread, Stack

DEFAULT_PG = "postgresql://127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _pg_reachable(url: str) -> str | None:
    """None if PostgreSQL answers at url, else the reason."""
    import asyncpg

    async def probe():
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure means "not here"
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The server for PostgreSQL tests. ONEKEY_TEST_POSTGRES_URL set (CI): it must answer."""
    url = os.environ.get("ONEKEY_TEST_POSTGRES_URL")
    problem = _pg_reachable(url or DEFAULT_PG)
    if problem:
        if url:
            pytest.fail(f"ONEKEY_TEST_POSTGRES_URL={url} is unreachable: {problem}")
        pytest.skip(f"PostgreSQL tests skipped: no server at {DEFAULT_PG} ({problem}); "
                    "set ONEKEY_TEST_POSTGRES_URL to run them")
    return url or DEFAULT_PG


def _redis_reachable(url: str) -> str | None:
    """None if Redis answers PING at url, else the reason."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure means "not here"
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis for shared rate-limit tests. ONEKEY_TEST_REDIS_URL, ONEKEY_TEST_POSTGRES_URL or
    CI set: it must answer; otherwise the tests are skipped with the reason."""
    url = os.environ.get("ONEKEY_TEST_REDIS_URL")
    problem = _redis_reachable(url or DEFAULT_REDIS)
    if problem:
        if url or os.environ.get("ONEKEY_TEST_POSTGRES_URL") or os.environ.get("CI"):
            pytest.fail(f"Redis at {url or DEFAULT_REDIS} is unreachable: {problem}")
        pytest.skip(f"Redis tests skipped: no server at {DEFAULT_REDIS} ({problem}); "
                    "set ONEKEY_TEST_REDIS_URL to run them")
    return url or DEFAULT_REDIS


@pytest.fixture
def postgres_url(postgres_admin_url: str):
    """A fresh, empty database for one test (dropped afterwards), so runs never collide."""
    yield from fresh_database(postgres_admin_url)


def fresh_database(postgres_admin_url: str):
    """Create an empty database on the server, yield its URL, drop it afterwards."""
    import asyncpg

    name = f"onekey_test_{uuid.uuid4().hex[:12]}"
    base = postgres_admin_url.replace("postgresql+asyncpg://", "postgresql://")

    async def admin(sql: str):
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/router.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def loop_thread():
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def fake_openai(loop_thread):
    fake = FakeOpenAI()
    loop_thread.run(fake.start())
    yield fake
    loop_thread.run(fake.stop())


def openai_channel(fake: FakeOpenAI, name: str = "openai-a", **kw) -> ChannelSettings:
    return ChannelSettings(name=name, provider="openai", base_url=fake.url, api_key=Secret(fake.api_key), **kw)


@pytest.fixture
def stack(loop_thread, fake_openai, tmp_path):
    """Core + edge on SQLite with one OpenAI channel to the fake provider."""
    s = Stack(CoreSettings(database_url=f"sqlite:///{tmp_path}/router.db", channels=(openai_channel(fake_openai),),
                           usage_flush_interval=0.05), loop=loop_thread)
    yield s
    s.stop()


@pytest.fixture
def client_key(stack):
    return stack.new_key()
