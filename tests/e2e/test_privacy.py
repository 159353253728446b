"""The central promise, proved: a canary in prompts and completions is found nowhere afterwards.

Core and edge run as real processes with their logs, databases and TMPDIR in one folder; a
fake provider echoes the prompt (so the canary is in the completion too). Every path a
request can take is exercised, then every file of the run and every row of the store is
scanned.
"""
from __future__ import annotations

import json
import time
import uuid

import openai
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import inspect, text

from tests.e2e.test_errors import post
from tests.fakes.openai_provider import Behaviour
from tests.procs import Processes


def dump_database(url: str) -> str:
    engine = create_sync_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    rows = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            rows += [repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
    engine.dispose()
    return "\n".join(rows)


@pytest.mark.slow
def test_canary_reaches_no_database_log_or_temp_file(tmp_path, loop_thread, fake_openai, database_url):
    canary = f"CANARY-{uuid.uuid4().hex}"
    procs = Processes(tmp_path, database_url, f'[[channels]]\nname = "fake"\nprovider = "openai"\n'
                      f'base_url = "{fake_openai.url}"\napi_key = "{fake_openai.api_key}"\n')
    try:
        _, key = procs.new_key()
        client = openai.OpenAI(base_url=procs.base_url, api_key=key, max_retries=0)
        msgs = [{"role": "system", "content": f"system {canary}"}, {"role": "user", "content": f"say {canary}"}]
        reply = client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
        assert canary in reply.choices[0].message.content  # it really went through
        assert canary in "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="gpt-4.1", messages=msgs, stream=True) if c.choices)
        assert canary in client.responses.create(model="openai/gpt-4.1", input=f"say {canary}").output_text
        client.chat.completions.create(model="sandbox/echo", messages=msgs)
        fake_openai.queue(Behaviour(kind="no_usage"), Behaviour(kind="html"),
                          Behaviour(kind="status", status=400, body={"error": {"message": f"bad {canary}",
                                                                                "type": "x", "code": None}}))
        client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
        for _ in range(2):
            with pytest.raises(openai.APIStatusError):
                client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model=f"nope-{canary}", messages=msgs)
        status, _, _ = post(procs, "/chat/completions", f'{{"model": "gpt-4.1", "messages": [{canary}'.encode(), key)
        assert status == 400
        fake_openai.queue(Behaviour(chunk_delay=0.05))
        stream = client.chat.completions.create(model="openai/gpt-4.1", stream=True, messages=[
            {"role": "user", "content": " ".join([canary] * 50)}])
        next(iter(stream))
        stream.close()
        # Refusals that leave a usage event: a key's spend limit, and a revoked key.
        project, _ = procs.new_key()
        capped = json.loads(procs.onekey("key", "create", "--project", project, "--spend-limit", "0.000001", "--json"))
        capped_client = openai.OpenAI(base_url=procs.base_url, api_key=capped["secret"], max_retries=0)
        capped_client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
        with pytest.raises(openai.APIStatusError) as limited:
            capped_client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
        assert limited.value.body["code"] == "key_spend_limit_reached"
        procs.onekey("key", "revoke", capped["key"]["id"])
        with pytest.raises(openai.AuthenticationError):
            for _ in range(50):  # the core's key cache may hold the key for a moment
                capped_client.chat.completions.create(model="sandbox/echo", messages=msgs)
                time.sleep(0.1)
    finally:
        procs.stop()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") for p in files)
    hits = [str(p) for p in files if canary.encode() in p.read_bytes()]
    assert hits == [], f"request content found in {hits}"
    assert canary not in dump_database(database_url)
    assert canary not in procs.logs()
    assert key not in procs.logs() and fake_openai.api_key not in procs.logs()
