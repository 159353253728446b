"""SIGTERM under load: in-flight streams drain, and every usage event reaches the store."""
from __future__ import annotations

import asyncio
import signal

import openai
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from tests.fakes.openai_provider import Behaviour
from tests.procs import Processes

N = 40


@pytest.mark.slow
def test_sigterm_under_load_loses_no_usage_event(tmp_path, loop_thread, fake_openai, database_url):
    procs = Processes(tmp_path, database_url, f'[[channels]]\nname = "fake"\nprovider = "openai"\n'
                      f'base_url = "{fake_openai.url}"\napi_key = "{fake_openai.api_key}"\n')
    try:
        project, key = procs.new_key()
        fake_openai.queue(*[Behaviour(chunk_delay=0.05) for _ in range(N)])
        words = " ".join(f"w{i}" for i in range(20))  # about a second per stream

        async def load() -> list[str]:
            client = openai.AsyncOpenAI(base_url=procs.base_url, api_key=key, max_retries=0)

            async def one() -> str:
                stream = await client.chat.completions.create(
                    model="openai/gpt-4.1", stream=True, messages=[{"role": "user", "content": words}])
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            async def terminate():
                while len(fake_openai.received) < N:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.2)  # all streams are mid-flight now
                procs.core.send_signal(signal.SIGTERM)

            results = await asyncio.gather(*(one() for _ in range(N)), terminate())
            await client.close()
            return results[:N]

        texts = asyncio.run(load())
        assert texts == [words] * N, "in-flight streams must finish during the drain"
        procs.core.wait(60)
        assert procs.core.returncode == 0
    finally:
        procs.stop()
    engine = create_sync_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, charged_micro_usd FROM usage_events WHERE project_id = :p"),
                            {"p": project}).all()
        leased = conn.execute(text("SELECT leased_micro_usd FROM projects WHERE id = :p"), {"p": project}).scalar()
    engine.dispose()
    assert len(rows) == N
    assert all(status == 200 and charged > 0 for status, charged in rows)
    assert leased == 0, "a clean stop gives every lease back"
    assert "core stopped" in procs.logs()
