"""Providers that stall, end to end with the official SDKs as clients (issue 22).

- A provider that accepts the connection and never sends a byte, or sends a head and never the
  body of a whole answer: the next channel serves the request once the first-byte timeout has
  passed; with no other channel the client gets a clean OpenAI-shaped 504 within the bound.
- A stream that goes silent mid-way: the client gets what came, then the stream's error event
  once the idle timeout has passed (the SDK raises); the usage event records it and the output
  produced is billed, by local token count, exactly what the balance went down by.
"""
from __future__ import annotations

import asyncio
import json
import time

import anthropic
import openai
import pytest

from onekey.v1 import metering_pb2
from router_core.settings import ChannelSettings, Secret, Timeouts
from tests.e2e.conftest import channel_to
from tests.e2e.test_failover import channels
from tests.fakes.openai_provider import Behaviour
from tests.stack import usage_events

FIRST_BYTE, IDLE = 1.0, 1.0
TIMEOUTS = Timeouts(connect=1.0, first_byte=FIRST_BYTE, idle=IDLE)
# Beyond a timeout, what a request may take on a busy 2-core machine running the whole stack.
MARGIN = 3.0
CREDIT = 10_000_000
MSGS = [{"role": "user", "content": "tell me a story about a small red fox in the snow"}]
CHAT_MODEL = "openai/gpt-4.1-mini"
RESPONSES_MODEL = "openai/gpt-4.1"
MESSAGES_MODEL = "anthropic/claude-haiku-4-5"


class Silent:
    """A provider host that accepts TCP connections, reads what comes, and never sends a byte."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass

    async def stop(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


@pytest.fixture
def silent(loop_thread):
    server = Silent()
    loop_thread.run(server.start())
    yield server
    loop_thread.run(server.stop())


def silent_channel(server: Silent, name: str = "silent", provider: str = "openai", **kw) -> ChannelSettings:
    return ChannelSettings(name=name, provider=provider, base_url=server.url,
                           api_key=Secret("sk-silent-provider-key-000000"), **kw)


def balance(stack, project_id: str) -> int:
    return stack.metering.GetBalance(metering_pb2.GetBalanceRequest(project_id=project_id),
                                     metadata=stack.metadata).balance_micro_usd


def one_event(stack, project_id: str):
    events = usage_events(stack, project_id, 1)
    assert len(events) == 1, events
    return events[0]


def ask_chat(client: openai.OpenAI, stream: bool) -> str:
    if stream:
        chunks = client.chat.completions.create(model=CHAT_MODEL, messages=MSGS, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return client.chat.completions.create(model=CHAT_MODEL, messages=MSGS).choices[0].message.content


# -- before the first byte: failover --------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_provider_that_never_sends_a_byte_fails_over_after_the_first_byte_timeout(
        stream, silent, start_fake, make_stack):
    backup = start_fake("openai")
    stack = make_stack([silent_channel(silent, priority=0), channel_to(backup, "openai", "backup", priority=1)],
                       timeouts=TIMEOUTS)
    project_id, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    accepted = silent.accepted
    started = time.monotonic()
    assert ask_chat(client, stream) == MSGS[0]["content"]
    took = time.monotonic() - started
    assert silent.accepted > accepted and len(backup.received) == 1
    assert channels(stack)["silent"].error_rate > 0, "the silent channel was tried, and its breaker knows"
    assert FIRST_BYTE <= took < FIRST_BYTE + MARGIN, took
    event = one_event(stack, project_id)
    assert (event.channel, event.status) == ("backup", 200) and event.charged_micro_usd > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_single_silent_provider_is_a_clean_504_within_the_bound(stream, silent, make_stack):
    stack = make_stack([silent_channel(silent)], timeouts=TIMEOUTS)
    project_id, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=2)  # the SDK's default
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        ask_chat(client, stream)
    took = time.monotonic() - started
    err = caught.value
    assert err.status_code == 504 and err.code == "upstream_timeout" and err.type == "api_error"
    assert "internal error" not in err.message.lower() and "in time" in err.message
    assert err.response.headers["x-should-retry"] == "false", "the SDK does not multiply the wait"
    assert FIRST_BYTE <= took < FIRST_BYTE + MARGIN, took
    event = one_event(stack, project_id)
    assert (event.status, event.error_code, event.charged_micro_usd) == (504, "upstream_timeout", 0)
    assert balance(stack, project_id) == CREDIT


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_silent_anthropic_host_is_a_clean_messages_504_within_the_bound(stream, silent, make_stack):
    stack = make_stack([silent_channel(silent, provider="anthropic")], timeouts=TIMEOUTS)
    project_id, key = stack.new_key()
    client = anthropic.Anthropic(base_url=stack.base_url.removesuffix("/v1"), api_key=key, max_retries=2)
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as caught:
        if stream:
            with client.messages.stream(model=MESSAGES_MODEL, max_tokens=64, messages=MSGS) as events:
                list(events)
        else:
            client.messages.create(model=MESSAGES_MODEL, max_tokens=64, messages=MSGS)
    took = time.monotonic() - started
    err = caught.value
    assert err.status_code == 504 and err.body["type"] == "error", err.body
    assert err.body["error"]["type"] == "timeout_error" and "in time" in err.body["error"]["message"]
    assert err.response.headers["x-should-retry"] == "false"
    assert FIRST_BYTE <= took < FIRST_BYTE + MARGIN, took
    event = one_event(stack, project_id)
    assert (event.endpoint, event.status, event.error_code, event.charged_micro_usd) == (
        "messages", 504, "upstream_timeout", 0)


def test_a_head_without_its_body_fails_over_after_the_first_byte_timeout(start_fake, make_stack):
    primary, backup = start_fake("openai"), start_fake("openai")
    stack = make_stack([channel_to(primary, "openai", "primary", priority=0),
                        channel_to(backup, "openai", "backup", priority=1)], timeouts=TIMEOUTS)
    project_id, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    primary.queue(Behaviour(kind="head_stall"))
    started = time.monotonic()
    assert ask_chat(client, stream=False) == MSGS[0]["content"]
    took = time.monotonic() - started
    assert (len(primary.received), len(backup.received)) == (1, 1)
    assert FIRST_BYTE <= took < FIRST_BYTE + MARGIN, took
    event = one_event(stack, project_id)
    assert (event.channel, event.status) == ("backup", 200)


def test_a_single_head_without_its_body_is_a_clean_504_within_the_bound(start_fake, make_stack):
    only = start_fake("openai")
    stack = make_stack([channel_to(only, "openai", "only")], timeouts=TIMEOUTS)
    project_id, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=2)
    only.queue(Behaviour(kind="head_stall"))
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        ask_chat(client, stream=False)
    took = time.monotonic() - started
    err = caught.value
    assert err.status_code == 504 and err.code == "upstream_timeout" and err.type == "api_error"
    assert "internal error" not in err.message.lower()
    assert err.response.headers["x-should-retry"] == "false" and len(only.received) == 1
    assert FIRST_BYTE <= took < FIRST_BYTE + MARGIN, took
    event = one_event(stack, project_id)
    assert (event.status, event.error_code, event.charged_micro_usd) == (504, "upstream_timeout", 0)


def test_a_messages_head_without_its_body_fails_over(start_fake, make_stack):
    primary, backup = start_fake("anthropic"), start_fake("anthropic")
    stack = make_stack([channel_to(primary, "anthropic", "primary", priority=0),
                        channel_to(backup, "anthropic", "backup", priority=1)], timeouts=TIMEOUTS)
    project_id, key = stack.new_key()
    client = anthropic.Anthropic(base_url=stack.base_url.removesuffix("/v1"), api_key=key, max_retries=0)
    primary.queue(Behaviour(kind="head_stall"))
    started = time.monotonic()
    reply = client.messages.create(model=MESSAGES_MODEL, max_tokens=64, messages=MSGS)
    took = time.monotonic() - started
    assert reply.content[0].text == MSGS[0]["content"]
    assert (len(primary.received), len(backup.received)) == (1, 1)
    assert FIRST_BYTE <= took < FIRST_BYTE + MARGIN, took
    assert one_event(stack, project_id).channel == "backup"


# -- after the first byte: the stream ends with its error event, and what came is billed ----------

def stalled_stack(start_fake, make_stack, provider: str):
    """One stalling channel and a healthy backup (which must not be used once bytes flowed)."""
    stalling, backup = start_fake(provider), start_fake(provider)
    stack = make_stack([channel_to(stalling, provider, "stalling", priority=0),
                        channel_to(backup, provider, "backup", priority=1)], timeouts=TIMEOUTS)
    project_id, key = stack.new_key(credit_micro_usd=CREDIT)
    return stalling, backup, stack, project_id, key


def assert_ended_after_the_idle_timeout(started: float, ended: float) -> None:
    """The core's idle clock starts when its last read of the provider begins: after the request
    was sent, and before the client sees the last chunk. So the bounds are measured from the start."""
    assert IDLE <= ended - started < FIRST_BYTE + IDLE + MARGIN, ended - started


def assert_billed_as_produced(stack, project_id: str, endpoint: str) -> None:
    event = one_event(stack, project_id)
    assert (event.endpoint, event.channel, event.stream) == (endpoint, "stalling", True)
    assert (event.status, event.error_code) == (504, "upstream_timeout")
    assert event.usage.estimated and event.usage.output_tokens > 0, "the output that came is counted"
    assert event.charged_micro_usd > 0 and event.charged_micro_usd == event.cost_micro_usd
    assert balance(stack, project_id) == CREDIT - event.charged_micro_usd


def test_a_chat_stream_that_goes_silent_ends_with_its_error_event_and_is_billed(start_fake, make_stack):
    stalling, backup, stack, project_id, key = stalled_stack(start_fake, make_stack, "openai")
    stalling.queue(Behaviour(kind="stall", stall_after=4))
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    got = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model=CHAT_MODEL, messages=MSGS, stream=True):
            got.append((time.monotonic(), "".join(c.delta.content or "" for c in chunk.choices)))
    ended = time.monotonic()
    assert "".join(text for _, text in got) == "tell me a story ", "the words sent before the stall"
    assert_ended_after_the_idle_timeout(started, ended)
    assert "stopped sending" in caught.value.message and caught.value.code == "upstream_timeout"
    assert len(backup.received) == 0, "no failover once bytes reached the client"
    assert_billed_as_produced(stack, project_id, "chat/completions")


def test_a_responses_stream_that_goes_silent_ends_with_its_error_event_and_is_billed(start_fake, make_stack):
    stalling, backup, stack, project_id, key = stalled_stack(start_fake, make_stack, "openai")
    stalling.queue(Behaviour(kind="stall", stall_after=4))  # created, then three words
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    got = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        for event in client.responses.create(model=RESPONSES_MODEL, input=MSGS[0]["content"], stream=True):
            got.append((time.monotonic(), event))
    ended = time.monotonic()
    assert [e.type for _, e in got] == ["response.created"] + ["response.output_text.delta"] * 3
    assert "".join(e.delta for _, e in got[1:]) == "tell me a "
    assert_ended_after_the_idle_timeout(started, ended)
    assert "stopped sending" in caught.value.message
    assert len(backup.received) == 0
    assert_billed_as_produced(stack, project_id, "responses")


def test_a_messages_stream_that_goes_silent_ends_with_its_error_event_and_is_billed(start_fake, make_stack):
    stalling, backup, stack, project_id, key = stalled_stack(start_fake, make_stack, "anthropic")
    # message_start, content_block_start, ping, then three words.
    stalling.queue(Behaviour(kind="stall", stall_after=6))
    client = anthropic.Anthropic(base_url=stack.base_url.removesuffix("/v1"), api_key=key, max_retries=0)
    got = []
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(model=MESSAGES_MODEL, max_tokens=64, messages=MSGS) as stream:
            for text in stream.text_stream:
                got.append((time.monotonic(), text))
    ended = time.monotonic()
    assert "".join(text for _, text in got) == "tell me a "
    assert_ended_after_the_idle_timeout(started, ended)
    body = caught.value.body
    assert body["error"]["type"] == "timeout_error" and "stopped sending" in body["error"]["message"], body
    assert len(backup.received) == 0
    event = one_event(stack, project_id)
    assert event.usage.input_tokens > 0, "the input Anthropic reported before the stall is kept"
    assert_billed_as_produced(stack, project_id, "messages")


def test_the_error_event_is_the_last_thing_on_the_wire(start_fake, make_stack):
    """Raw bytes, no SDK: the chunks, then one `data: {"error": …}` event, then the end (no [DONE])."""
    import urllib.request

    stalling, _, stack, _, key = stalled_stack(start_fake, make_stack, "openai")
    stalling.queue(Behaviour(kind="stall", stall_after=2))
    req = urllib.request.Request(f"{stack.base_url}/chat/completions", method="POST", data=json.dumps(
        {"model": CHAT_MODEL, "messages": MSGS, "stream": True}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=FIRST_BYTE + IDLE + MARGIN + 5) as resp:
        assert resp.status == 200
        events = [e for e in resp.read().decode().split("\n\n") if e.strip()]
    payloads = [json.loads(e.removeprefix("data: ")) for e in events]
    assert all("choices" in p for p in payloads[:-1]) and len(payloads) == 3
    assert payloads[-1]["error"]["code"] == "upstream_timeout"
