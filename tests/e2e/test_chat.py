"""The OpenAI SDK against the real edge and core, with a fake OpenAI behind them."""
from __future__ import annotations

import time

import openai
import pytest

from tests.fakes.openai_provider import Behaviour


@pytest.fixture
def client(stack, client_key):
    return openai.OpenAI(base_url=stack.base_url, api_key=client_key[1], max_retries=0)


def test_chat_non_stream_reaches_provider_with_only_model_changed(stack, fake_openai, client, client_key):
    body = {"messages": [{"role": "user", "content": "hello there"}], "temperature": 0.3,
            "max_tokens": 50, "metadata": {"a": "b"}}
    reply = client.chat.completions.create(model="openai/gpt-4.1-mini", **body)
    assert reply.choices[0].message.content == "hello there"
    assert reply.usage.total_tokens > 0
    sent = fake_openai.received[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body == {**body, "model": "gpt-4.1-mini"}
    assert sent.headers["Authorization"] == f"Bearer {fake_openai.api_key}"
    assert client_key[1] not in sent.raw.decode() + repr(sent.headers)


def test_chat_stream_and_usage_chunk_hidden_unless_asked(stack, fake_openai, client):
    chunks = list(client.chat.completions.create(
        model="gpt-4.1-mini", stream=True, messages=[{"role": "user", "content": "one two three"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert all(c.choices for c in chunks), "the usage-only chunk must not reach a client that did not ask"
    assert fake_openai.received[-1].body["stream_options"] == {"include_usage": True}

    chunks = list(client.chat.completions.create(
        model="gpt-4.1-mini", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "one two three"}]))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3


def test_a_stream_s_head_reaches_the_client_before_a_late_first_chunk(stack, fake_openai, client):
    # The edge writes a stream's head together with its first chunk, but never holds the head
    # for a model that takes its time over the first one: the SDK returns on the head.
    fake_openai.queue(Behaviour(head_pause=1.5))
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="gpt-4.1-mini", stream=True, messages=[{"role": "user", "content": "one two"}])
    head_after = time.monotonic() - started
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "one two"
    assert head_after < 0.75, f"the head waited {head_after:.2f}s for the first chunk"
    assert time.monotonic() - started >= 1.5
