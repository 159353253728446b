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

import anthropic
import openai
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import inspect, text

from tests.e2e.test_errors import post
from tests.fakes.openai_provider import Behaviour
from tests.fakes.providers import FakeAnthropic
from tests.procs import Processes


def dump_database(url: str) -> str:
    engine = create_sync_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    rows = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            rows += [repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
    engine.dispose()
    return "\n".join(rows)


def through_messages_api(procs: Processes, key: str, fake: FakeAnthropic, canary: str) -> None:
    """Anthropic's Messages API: whole, streamed (thinking too), counted, cached, refused, cut."""
    client = anthropic.Anthropic(base_url=procs.base_url.removesuffix("/v1"), api_key=key, max_retries=0)
    system = [{"type": "text", "text": f"system {canary} " * 30, "cache_control": {"type": "ephemeral"}}]
    msgs = [{"role": "user", "content": f"say {canary}"}]
    for _ in range(2):  # a cache write, then a cache read
        reply = client.messages.create(model="anthropic/claude-haiku-4-5", max_tokens=64, system=system, messages=msgs)
        assert canary in reply.content[0].text
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=2048, messages=msgs,
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        assert canary in stream.get_final_text()
    assert client.messages.count_tokens(model="claude-haiku-4-5", messages=msgs).input_tokens > 0
    fake.queue(Behaviour(kind="status", status=400, body={"type": "error", "error": {
        "type": "invalid_request_error", "message": f"bad {canary}"}}), Behaviour(kind="stream_error"))
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=msgs)
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=msgs) as stream:
            list(stream)
    with pytest.raises(anthropic.BadRequestError):  # a field no translation carries, on a non-Anthropic model
        client.messages.create(model="openai/gpt-4.1", max_tokens=64, messages=msgs,
                               tools=[{"type": "web_search_20250305", "name": f"search_{canary}"}])
    status, _, _ = post(procs, "/messages", f'{{"model": "claude-haiku-4-5", "messages": [{canary}'.encode(), key)
    assert status == 400
    fake.queue(Behaviour(chunk_delay=0.05))
    stream = client.messages.create(model="claude-haiku-4-5", max_tokens=1024, stream=True, messages=[
        {"role": "user", "content": " ".join([canary] * 50)}])
    next(iter(stream))
    stream.close()


def through_translated_routes(procs: Processes, key: str, fake_openai, canary: str) -> None:
    """Each translated pair, whole and streamed: Messages on an OpenAI model, Responses on an
    Anthropic one; a local count, a refused field, a provider error and a cut stream."""
    client = anthropic.Anthropic(base_url=procs.base_url.removesuffix("/v1"), api_key=key, max_retries=0)
    msgs = [{"role": "user", "content": f"say {canary}"}]
    reply = client.messages.create(model="openai/gpt-4.1", max_tokens=64, system=f"system {canary}", messages=msgs)
    assert canary in reply.content[0].text
    with client.messages.stream(model="openai/gpt-4.1", max_tokens=64, messages=msgs) as stream:
        assert canary in stream.get_final_text()
    assert client.messages.count_tokens(model="openai/gpt-4.1", messages=msgs).input_tokens > 0
    fake_openai.queue(Behaviour(kind="status", status=400, body={"error": {"message": f"bad {canary}",
                                                                          "type": "x", "code": None}}))
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="openai/gpt-4.1", max_tokens=64, messages=msgs)
    fake_openai.queue(Behaviour(chunk_delay=0.05))
    stream = client.messages.create(model="openai/gpt-4.1", max_tokens=1024, stream=True, messages=[
        {"role": "user", "content": " ".join([canary] * 50)}])
    next(iter(stream))
    stream.close()
    responses = openai.OpenAI(base_url=procs.base_url, api_key=key, max_retries=0)
    assert canary in responses.responses.create(model="anthropic/claude-haiku-4-5", instructions=f"system {canary}",
                                                input=f"say {canary}").output_text
    with responses.responses.stream(model="claude-haiku-4-5", input=f"say {canary}") as events:
        assert canary in events.get_final_response().output_text
    with pytest.raises(openai.BadRequestError):  # nothing is kept between translated requests
        responses.responses.create(model="claude-haiku-4-5", input=f"say {canary}", previous_response_id=f"resp_{canary}")


@pytest.mark.slow
def test_canary_reaches_no_database_log_or_temp_file(tmp_path, loop_thread, fake_openai, database_url):
    canary = f"CANARY-{uuid.uuid4().hex}"
    fake_anthropic = FakeAnthropic()
    loop_thread.run(fake_anthropic.start())
    procs = Processes(tmp_path, database_url, f'[[channels]]\nname = "fake"\nprovider = "openai"\n'
                      f'base_url = "{fake_openai.url}"\napi_key = "{fake_openai.api_key}"\n\n'
                      f'[[channels]]\nname = "fake-anthropic"\nprovider = "anthropic"\n'
                      f'base_url = "{fake_anthropic.url}"\napi_key = "{fake_anthropic.api_key}"\n')
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
        with pytest.raises(openai.APIStatusError) as limited:  # held like credit: no estimate fits
            capped_client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
        assert limited.value.body["code"] == "key_spend_limit_reached"
        procs.onekey("key", "revoke", capped["key"]["id"])
        with pytest.raises(openai.AuthenticationError):
            for _ in range(50):  # the core's key cache may hold the key for a moment
                capped_client.chat.completions.create(model="sandbox/echo", messages=msgs)
                time.sleep(0.1)
        through_messages_api(procs, key, fake_anthropic, canary)
        through_translated_routes(procs, key, fake_openai, canary)
        # The usage journal, while the core runs (a clean stop deletes it): metadata only.
        journal = [p for p in (tmp_path / ".onekey" / "journal").rglob("*") if p.is_file()]
        assert any(p.name.endswith(".lock") for p in journal)
        assert not [p for p in journal if canary.encode() in p.read_bytes()]
    finally:
        procs.stop()
        loop_thread.run(fake_anthropic.stop())
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") for p in files)
    hits = [str(p) for p in files if canary.encode() in p.read_bytes()]
    assert hits == [], f"request content found in {hits}"
    assert canary not in dump_database(database_url)
    assert canary not in procs.logs()
    assert key not in procs.logs() and fake_openai.api_key not in procs.logs()
    assert fake_anthropic.api_key not in procs.logs()
    # Every Messages API call above that should reach the provider did, and the two Responses
    # calls translated to its chat route.
    assert len(fake_anthropic.received) == 9
