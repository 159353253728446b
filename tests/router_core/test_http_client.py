"""The provider client's stream timeouts: one timer per stream, the same limits as one per read.

A read fails once it has waited its limit (first byte until output flows, then idle); time the
consumer spends between reads is not the provider's silence and is never counted.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from router_core.providers.base import UpstreamError
from router_core.providers.http import HttpClient
from router_core.settings import Timeouts

DELTA = b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'
CREATED = b'data: {"type":"response.created"}\n\n'


@pytest.fixture
async def upstream():
    """A streaming server on 127.0.0.1: each step is bytes to send or seconds of silence."""
    plans: list[list[bytes | float]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for step in plans.pop(0):
            if isinstance(step, float):
                await asyncio.sleep(step)
            else:
                await resp.write(step)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/stream", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield plans, f"http://127.0.0.1:{port}/stream"
    await runner.cleanup()


async def read_all(url: str, timeouts: Timeouts, pause: float = 0.0) -> list[bytes]:
    client = HttpClient(timeouts)
    await client.start()
    try:
        resp = await client.request("POST", url, b"{}", {})
        got = []
        try:
            async for data in resp.chunks():
                got.append(data)
                await asyncio.sleep(pause)  # the consumer busy (the client slow to take it)
        finally:
            resp.close()
        return got
    finally:
        await client.close()


async def test_many_reads_over_longer_than_the_limit_are_not_a_stall(upstream):
    plans, url = upstream
    plans.append([DELTA, *[s for _ in range(10) for s in (0.06, DELTA)]])
    got = await read_all(url, Timeouts(first_byte=5.0, idle=0.4))  # 0.6 s of reads, none longer than 0.4 s
    assert b"".join(got) == DELTA * 11


async def test_a_slow_consumer_is_not_the_provider_s_silence(upstream):
    plans, url = upstream
    plans.append([DELTA, DELTA, DELTA])
    got = await read_all(url, Timeouts(first_byte=5.0, idle=0.2), pause=0.5)
    assert b"".join(got) == DELTA * 3


async def test_a_stall_after_output_ends_in_an_upstream_timeout(upstream):
    plans, url = upstream
    plans.append([DELTA, 0.05, DELTA, 2.0, DELTA])
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await read_all(url, Timeouts(first_byte=5.0, idle=0.3))
    assert info.value.status == 504 and info.value.code == "upstream_timeout"
    assert 0.3 <= time.monotonic() - started < 1.5  # the idle limit, not the first-byte one


async def test_before_output_the_first_byte_limit_applies(upstream):
    plans, url = upstream
    # A reasoning model: `response.created` at once, a pause longer than idle, then output.
    plans.append([CREATED, 0.5, DELTA, DELTA])
    got = await read_all(url, Timeouts(first_byte=3.0, idle=0.2))
    assert b"".join(got) == CREATED + DELTA * 2
    # And silence beyond the first-byte limit still ends it.
    plans.append([CREATED, 2.0, DELTA])
    with pytest.raises(UpstreamError) as info:
        await read_all(url, Timeouts(first_byte=0.4, idle=5.0))
    assert info.value.code == "upstream_timeout"


async def test_a_whole_answer_must_arrive_within_the_first_byte_limit(upstream):
    plans, url = upstream
    client = HttpClient(Timeouts(first_byte=0.4, idle=5.0))
    await client.start()
    try:
        plans.append([b'{"id":', 0.1, b'"x"}'])
        resp = await client.request("POST", url, b"{}", {})
        try:
            assert await resp.read() == b'{"id":"x"}'
        finally:
            resp.close()
        plans.append([b'{"id":', 2.0, b'"x"}'])
        resp = await client.request("POST", url, b"{}", {})
        started = time.monotonic()
        try:
            with pytest.raises(UpstreamError) as info:
                await resp.read()
        finally:
            resp.close()
        assert info.value.code == "upstream_timeout" and "in time" in info.value.message
        assert time.monotonic() - started < 1.5
    finally:
        await client.close()
