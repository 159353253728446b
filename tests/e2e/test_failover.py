"""Channel failover, retry-after, circuit breakers and weights, end to end with the OpenAI SDK.

Two fakes of one provider behind a primary and a backup channel: the fakes' logs show which
channel served each request.
"""
from __future__ import annotations

import time
import urllib.request

import openai
import pytest

from onekey.v1 import admin_pb2
from router_core.breaker import BreakerSettings
from router_core.settings import ChannelSettings, Secret, Timeouts
from tests.e2e.conftest import channel_to
from tests.fakes.providers import Behaviour, closed_port_url
from tests.stack import usage_events

MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def pair(start_fake, make_stack):
    primary, backup = start_fake("openai"), start_fake("openai")
    stack = make_stack([channel_to(primary, "openai", "primary", priority=0),
                        channel_to(backup, "openai", "backup", priority=1)],
                       timeouts=Timeouts(connect=1.0, first_byte=0.5, idle=1.0), metrics_listen="127.0.0.1:0")
    project_id, key = stack.new_key()
    return primary, backup, stack, project_id, openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)


def channels(stack) -> dict:
    listing = stack.admin.ListChannels(admin_pb2.ListChannelsRequest(), metadata=stack.metadata)
    return {c.name: c for c in listing.channels}


@pytest.mark.parametrize("behaviour", [
    Behaviour(kind="status", status=500),
    Behaviour(kind="status", status=503),
    Behaviour(kind="status", status=429, headers={"retry-after": "0"}),
    Behaviour(kind="hang"),                  # nothing before the first-byte timeout
    Behaviour(kind="html"),                  # a proxy's HTML page
    Behaviour(kind="reset"),                 # connection dropped before any answer
], ids=["500", "503", "429", "timeout", "html", "reset"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_provider_trouble_before_the_first_byte_moves_to_the_next_channel(pair, behaviour, stream):
    primary, backup, stack, project_id, client = pair
    primary.queue(behaviour)
    # The core's connection to the primary may be warm (its model list was read at start): a
    # reset on a kept-alive connection is retried once on a new one, which is reset too here.
    retried = behaviour.kind == "reset"
    if retried:
        primary.queue(behaviour)
    if stream:
        chunks = list(client.chat.completions.create(model="gpt-4.1-mini", messages=MSG, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello there"
    else:
        assert client.chat.completions.create(model="gpt-4.1-mini", messages=MSG).choices[0].message.content == "hello there"
    assert len(primary.received) in ((1, 2) if retried else (1,)) and len(backup.received) == 1
    event = usage_events(stack, project_id, 1)[0]
    assert (event.channel, event.status) == ("backup", 200)
    assert channels(stack)["primary"].error_rate > 0


def test_connect_refused_moves_to_the_next_channel(start_fake, make_stack):
    backup = start_fake("openai")
    dead = ChannelSettings(name="dead", provider="openai", base_url=closed_port_url(), api_key=Secret("sk-dead-key-000000"))
    stack = make_stack([dead, channel_to(backup, "openai", "backup", priority=1)])
    project_id, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    assert client.chat.completions.create(model="gpt-4.1-mini", messages=MSG).choices[0].message.content == "hello there"
    assert len(backup.received) == 1
    assert usage_events(stack, project_id, 1)[0].channel == "backup"
    assert channels(stack)["dead"].error_rate == 1.0


def test_a_request_error_is_never_retried(pair):
    primary, backup, stack, project_id, client = pair
    primary.queue(Behaviour(kind="status", status=400, body={"error": {
        "message": "Invalid value for temperature", "type": "invalid_request_error", "param": "temperature",
        "code": "invalid_value"}}))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MSG, temperature=9)
    assert info.value.param == "temperature"
    assert (len(primary.received), len(backup.received)) == (1, 0)
    assert channels(stack)["primary"].error_rate == 0, "the provider answered: the channel is healthy"


def test_no_failover_after_the_first_byte(pair):
    primary, backup, stack, project_id, client = pair
    primary.queue(Behaviour(kind="reset_mid_body", chunk_delay=0.05))  # chunks arrive, then the reset
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="gpt-4.1-mini", stream=True,
                                                    messages=[{"role": "user", "content": "a b c d e f"}]):
            got.append(chunk)
    assert got, "the first chunks reached the client before the break"
    assert "provider" in info.value.message.lower() or "interrupted" in info.value.message.lower()
    assert len(backup.received) == 0
    assert channels(stack)["primary"].error_rate > 0, "the breaker learns of a broken stream"


def test_when_every_channel_fails_the_sdk_is_told_not_to_retry(pair):
    primary, backup, stack, _, _ = pair
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=2)
    primary.queue(Behaviour(kind="status", status=503))
    backup.queue(Behaviour(kind="status", status=502))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MSG)
    assert info.value.status_code == 502 and info.value.response.headers["x-should-retry"] == "false"
    assert (len(primary.received), len(backup.received)) == (1, 1), "no SDK retries on top of ours"


def test_retry_after_is_honoured_within_a_bound(start_fake, make_stack):
    only = start_fake("openai")
    stack = make_stack([channel_to(only, "openai", "only")], max_retry_wait=1.0)
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    only.queue(Behaviour(kind="status", status=429, headers={"retry-after-ms": "150"}))
    started = time.monotonic()
    assert client.chat.completions.create(model="gpt-4.1-mini", messages=MSG).choices[0].message.content
    assert len(only.received) == 2 and time.monotonic() - started >= 0.15

    only.queue(Behaviour(kind="status", status=429, headers={"retry-after": "30"}))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MSG)
    headers = info.value.response.headers
    assert headers["retry-after"] == "30" and headers["x-should-retry"] == "false"
    assert len(only.received) == 3, "a wait beyond the bound is not spent inside the request"


def test_breaker_opens_on_failures_skips_the_channel_and_recovers(start_fake, make_stack):
    primary, backup = start_fake("openai"), start_fake("openai")
    stack = make_stack([channel_to(primary, "openai", "primary"), channel_to(backup, "openai", "backup", priority=1)],
                       breaker=BreakerSettings(window=30, min_requests=3, failure_rate=0.5, cooldown=0.4),
                       metrics_listen="127.0.0.1:0")
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    primary.queue(*[Behaviour(kind="status", status=500)] * 3)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4.1-mini", messages=MSG)
    state = channels(stack)["primary"]
    assert state.state == "open" and state.error_rate == 1.0 and state.requests == 3
    metrics = scrape(stack)
    assert 'onekey_channel_state{channel="primary",provider="openai"} 2.0' in metrics
    assert 'onekey_channel_state{channel="backup",provider="openai"} 0.0' in metrics

    for _ in range(3):  # while open, the primary is not even tried
        client.chat.completions.create(model="gpt-4.1-mini", messages=MSG)
    assert len(primary.received) == 3 and len(backup.received) == 6

    time.sleep(0.45)
    assert channels(stack)["primary"].state == "half_open"
    client.chat.completions.create(model="gpt-4.1-mini", messages=MSG)  # the probe succeeds
    assert len(primary.received) == 4
    assert channels(stack)["primary"].state == "closed"
    assert 'onekey_channel_state{channel="primary",provider="openai"} 0.0' in scrape(stack)


def test_with_every_circuit_open_the_answer_is_quick_and_clear(start_fake, make_stack):
    only = start_fake("xai")
    stack = make_stack([channel_to(only, "xai", "only")],
                       breaker=BreakerSettings(window=30, min_requests=2, failure_rate=0.5, cooldown=60))
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    only.queue(*[Behaviour(kind="status", status=503)] * 2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="xai/grok-3-mini", messages=MSG)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="xai/grok-3-mini", messages=MSG)
    err = info.value
    assert err.status_code == 503 and err.code == "provider_unavailable" and "preview" in err.message
    assert int(err.response.headers["retry-after"]) >= 1 and err.response.headers["x-should-retry"] == "false"
    assert len(only.received) == 2


def test_weights_share_the_load_among_equal_priorities(start_fake, make_stack):
    light, heavy = start_fake("openai"), start_fake("openai")
    stack = make_stack([channel_to(light, "openai", "light", weight=1), channel_to(heavy, "openai", "heavy", weight=3)])
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    for _ in range(300):
        client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
    assert len(light.received) + len(heavy.received) == 300
    assert abs(len(heavy.received) / 300 - 0.75) < 0.1


def test_sse_lines_split_across_reads_arrive_whole(pair):
    primary, backup, stack, project_id, client = pair
    primary.queue(Behaviour(kind="split"))
    chunks = list(client.chat.completions.create(model="gpt-4.1-mini", stream=True, stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "split into many tiny reads"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "split into many tiny reads"
    assert chunks[-1].usage.completion_tokens == 5


def scrape(stack) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.core.metrics_port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_a_provider_without_a_channel_is_a_clear_404_not_retried(pair):
    primary, backup, stack, _, _ = pair
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=2)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="google/gemini-2.5-pro", messages=MSG)
    assert info.value.status_code == 404 and info.value.code == "model_not_available"
    assert "no channel for `google`" in info.value.message


def test_a_stream_that_stalls_between_chunks_ends_with_an_error_event(start_fake, make_stack):
    slow = start_fake("openai")
    stack = make_stack([channel_to(slow, "openai", "slow")], timeouts=Timeouts(connect=1.0, first_byte=1.0, idle=0.2))
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    slow.queue(Behaviour(kind="ok", chunk_delay=0.6))
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="gpt-4.1-mini", stream=True, messages=MSG):
            got.append(chunk)
    assert got and "stopped sending" in info.value.message
    assert channels(stack)["slow"].error_rate > 0


def test_a_reasoning_pause_before_output_is_not_an_idle_stall(start_fake, make_stack):
    thinker = start_fake("openai")
    stack = make_stack([channel_to(thinker, "openai", "o3")], timeouts=Timeouts(connect=1.0, first_byte=3.0, idle=0.2))
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    thinker.queue(Behaviour(kind="ok", think=0.6))  # `response.created` at once, then silence
    events = list(client.responses.create(model="openai/o3-pro", input="think hard", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
