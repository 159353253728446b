"""The OpenAI SDK with its base URL given with and without /v1: both reach every route."""
from __future__ import annotations

import openai
import pytest


@pytest.mark.parametrize("suffix", ["/v1", "", "/"])
def test_sdk_works_with_and_without_v1_in_the_base_url(stack, fake_openai, client_key, suffix):
    host = stack.base_url.removesuffix("/v1")
    client = openai.OpenAI(base_url=host + suffix, api_key=client_key[1], max_retries=0)
    before = len(fake_openai.received)
    reply = client.chat.completions.create(model="openai/gpt-4.1-mini",
                                           messages=[{"role": "user", "content": "bare or not"}])
    assert reply.choices[0].message.content == "bare or not"
    stream = client.chat.completions.create(model="openai/gpt-4.1-mini", stream=True,
                                            messages=[{"role": "user", "content": "a stream"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "a stream"
    # What the client asked for as /chat/completions or /v1/chat/completions reached the provider.
    assert [r.path for r in fake_openai.received[before:]] == ["/v1/chat/completions"] * 2
    response = client.responses.create(model="openai/gpt-4.1-mini", input="the responses API")
    assert response.output_text
    assert any(m.id == "openai/gpt-4.1-mini" for m in client.models.list())
    assert client.models.retrieve("openai/gpt-4.1-mini").id == "openai/gpt-4.1-mini"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=host + suffix, api_key="ok-wrong", max_retries=0).models.list()


def test_anthropic_sdk_given_a_base_url_ending_in_v1_is_answered(make_stack):
    """Claude Code set up with the OpenAI-style base URL asks /v1/v1/messages: it is answered."""
    import anthropic

    stack = make_stack([])
    _, key = stack.new_key()
    client = anthropic.Anthropic(base_url=stack.base_url, api_key=key, max_retries=0)  # ends in /v1
    assert stack.base_url.endswith("/v1")
    hi = [{"role": "user", "content": "hello there"}]
    reply = client.messages.create(model="sandbox/echo", max_tokens=64, messages=hi)
    assert reply.content[0].text == "hello there"
    with client.messages.stream(model="sandbox/echo", max_tokens=64, messages=hi) as stream:
        assert "".join(stream.text_stream) == "hello there"
    assert client.messages.count_tokens(model="sandbox/echo", messages=hi).input_tokens > 0
    with pytest.raises(anthropic.AuthenticationError):  # Anthropic-shaped errors there too
        anthropic.Anthropic(base_url=stack.base_url, api_key="ok-wrong", max_retries=0).messages.create(
            model="sandbox/echo", max_tokens=64, messages=hi)
