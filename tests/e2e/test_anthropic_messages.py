"""Anthropic's Messages API through the real edge and core, the official `anthropic` SDK as the
client, and a fake Anthropic that speaks the native API (tests/fakes/anthropic_messages.py)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import anthropic
import pytest

from onekey.v1 import metering_pb2
from router_core.catalog import Catalog
from tests.e2e.conftest import channel_to
from tests.e2e.test_failover import channels
from tests.fakes.openai_provider import Behaviour
from tests.stack import usage_events

MODEL = "anthropic/claude-haiku-4-5"
UPSTREAM = "claude-haiku-4-5"
MSGS = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def world(start_fake, make_stack):
    """A fake Anthropic (and a fake OpenAI), one channel each, a funded project, an SDK client."""
    fake, openai_fake = start_fake("anthropic"), start_fake("openai")
    stack = make_stack([channel_to(fake, "anthropic", "anthropic-a"), channel_to(openai_fake, "openai", "openai-a")])
    project_id, key = stack.new_key()
    return fake, stack, project_id, key, sdk(stack, key)


def host(stack) -> str:
    """The edge as Anthropic's SDKs want it: the host, to which they append /v1/messages."""
    return stack.base_url.removesuffix("/v1")


def sdk(stack, key: str, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=host(stack), api_key=key, max_retries=0, **kw)


def post(stack, path: str, body: dict, headers: dict) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(host(stack) + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def price(usage, model=MODEL) -> int:
    """The cost of a usage by the catalog's rates, computed here independently."""
    m = Catalog.load().resolve(model)
    fresh = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
    scaled = (fresh * m.input_price + usage.cached_input_tokens * m.cached_input_price
              + usage.cache_write_tokens * m.cache_write_input_price + usage.output_tokens * m.output_price)
    return -(-scaled // 1_000_000)


def test_create_reaches_the_native_endpoint_with_only_model_changed(world):
    fake, stack, project_id, key, client = world
    body = {"max_tokens": 64, "messages": MSGS, "metadata": {"user_id": "u-1"}, "stop_sequences": ["END"]}
    extra = {"temperature": 1.5, "n": 3, "top_k": 5}  # no chat-route quirk (capping, refusing n) applies here
    reply = client.messages.create(model=MODEL, **body, extra_body=extra)
    body.update(extra)
    assert reply.content[0].text == "hello there" and reply.usage.output_tokens == 2
    sent = fake.received[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == fake.api_key
    assert sent.headers["anthropic-version"] == client.default_headers["anthropic-version"], "the SDK's own version"
    assert sent.body == {**body, "model": UPSTREAM}, "the body goes upstream as sent, model aside"
    assert key not in sent.raw.decode() + repr(sent.headers)
    assert "Authorization" not in sent.headers
    event = usage_events(stack, project_id, 1)[0]
    assert (event.endpoint, event.provider, event.channel, event.status, event.stream) == (
        "messages", "anthropic", "anthropic-a", 200, False)
    assert event.usage.output_tokens == 2 and not event.usage.estimated
    assert event.usage.input_tokens == reply.usage.input_tokens > 0
    assert event.cost_micro_usd == event.charged_micro_usd == price(event.usage) > 0


def test_key_by_x_api_key_or_bearer_and_headers_allowlisted(world):
    fake, stack, project_id, key, _ = world
    by_token = anthropic.Anthropic(base_url=host(stack), auth_token=key, max_retries=0)  # Authorization: Bearer
    assert by_token.messages.create(model=MODEL, max_tokens=16, messages=MSGS).content[0].text == "hello there"
    status, _, raw = post(stack, "/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": MSGS},
                          {"x-api-key": key, "anthropic-beta": "prompt-caching-2024-07-31",
                           "cookie": "session=secret", "x-forwarded-for": "10.0.0.1"})
    assert status == 200 and json.loads(raw)["content"][0]["text"] == "hello there"
    sent = fake.received[-1].headers
    assert sent["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert sent["anthropic-version"] == "2023-06-01", "a version is sent when the client names none"
    assert "cookie" not in {k.lower() for k in sent} and "x-forwarded-for" not in {k.lower() for k in sent}
    assert sent["x-api-key"] == fake.api_key
    # The bare path serves too, for clients given the host as the base URL.
    status, _, raw = post(stack, "/messages", {"model": MODEL, "max_tokens": 16, "messages": MSGS},
                          {"Authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"})
    assert status == 200 and json.loads(raw)["type"] == "message"
    assert len(usage_events(stack, project_id, 3)) == 3


def test_stream_passes_text_and_thinking_deltas_and_the_final_message(world):
    fake, stack, project_id, key, client = world
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with client.messages.stream(model=MODEL, max_tokens=2048, thinking=thinking,
                                messages=[{"role": "user", "content": "one two three"}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert "".join(d.thinking for d in deltas if d.type == "thinking_delta") == "Let me think about that."
    assert "".join(d.text for d in deltas if d.type == "text_delta") == "one two three"
    assert [b.type for b in final.content] == ["thinking", "text"] and final.content[1].text == "one two three"
    assert final.content[0].signature == "sig-fake" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 8
    assert fake.received[-1].body["stream"] is True and fake.received[-1].body["thinking"] == thinking
    assert "stream_options" not in fake.received[-1].body
    event = usage_events(stack, project_id, 1)[0]
    assert (event.endpoint, event.stream, event.usage.output_tokens, event.usage.estimated) == ("messages", True, 8, False)
    assert event.usage.input_tokens == final.usage.input_tokens and event.cost_micro_usd == price(event.usage)


def test_the_stream_comes_back_byte_for_byte_ping_included(world):
    fake, stack, project_id, key, client = world
    body = {"model": UPSTREAM, "max_tokens": 64, "stream": True, "messages": MSGS}
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    status, got_headers, through_edge = post(stack, "/v1/messages", body, headers)
    direct = urllib.request.Request(fake.url + "/messages", data=json.dumps(body).encode(), method="POST",
                                    headers={"x-api-key": fake.api_key, "anthropic-version": "2023-06-01",
                                             "Content-Type": "application/json"})
    with urllib.request.urlopen(direct, timeout=30) as resp:
        from_provider = resp.read()
    assert status == 200 and got_headers["Content-Type"].startswith("text/event-stream")
    assert through_edge == from_provider
    names = [line[7:] for line in through_edge.decode().splitlines() if line.startswith("event: ")]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]


def test_count_tokens_is_answered_by_the_provider_and_free(world):
    fake, stack, _, _, _ = world
    project_id, key = stack.new_key(credit_micro_usd=0, free_requests=0)
    counted = sdk(stack, key).messages.count_tokens(model=MODEL, messages=MSGS, system="be brief")
    assert counted.input_tokens > 0
    sent = fake.received[-1]
    assert sent.path == "/v1/messages/count_tokens" and sent.body == {"model": UPSTREAM, "messages": MSGS,
                                                                      "system": "be brief"}
    event = usage_events(stack, project_id, 1)[0]
    assert (event.endpoint, event.status, event.cost_micro_usd, event.charged_micro_usd) == (
        "messages/count_tokens", 200, 0, 0)


def test_cache_control_reaches_the_provider_unmodified_and_cache_tokens_are_billed(world):
    fake, stack, project_id, key, client = world
    system = [{"type": "text", "text": "You answer questions about this long manual. " * 60},
              {"type": "text", "text": "Section two of the manual. " * 40, "cache_control": {"type": "ephemeral"}}]
    messages = [{"role": "user", "content": [{"type": "text", "text": "what does it say"}]}]
    first = client.messages.create(model=MODEL, max_tokens=32, system=system, messages=messages)
    second = client.messages.create(model=MODEL, max_tokens=32, system=system, messages=messages)
    assert fake.received[-1].body == {"model": UPSTREAM, "max_tokens": 32, "system": system, "messages": messages}
    written = first.usage.cache_creation_input_tokens
    assert written > 100 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written and second.usage.cache_creation_input_tokens == 0
    events = usage_events(stack, project_id, 2)
    by_kind = {("write" if e.usage.cache_write_tokens else "read"): e for e in events}
    wrote, read = by_kind["write"], by_kind["read"]
    assert wrote.usage.cache_write_tokens == written and wrote.usage.cached_input_tokens == 0
    assert wrote.usage.input_tokens == first.usage.input_tokens + written
    assert read.usage.cached_input_tokens == written and read.usage.cache_write_tokens == 0
    assert read.usage.input_tokens == second.usage.input_tokens + written
    m = Catalog.load().resolve(MODEL)
    assert m.cache_write_input_price == 1_250_000 and m.cached_input_price == 100_000
    for e in (wrote, read):
        assert e.cost_micro_usd == e.charged_micro_usd == price(e.usage)
    assert wrote.cost_micro_usd > read.cost_micro_usd, "a cache write costs more than a cache read"


@pytest.mark.parametrize("case, status, error_class, error_type", [
    ("wrong key", 401, anthropic.AuthenticationError, "authentication_error"),
    ("no credit", 402, anthropic.PaymentRequiredError, "billing_error"),
    ("unknown model", 404, anthropic.NotFoundError, "not_found_error"),
    ("untranslatable field", 400, anthropic.BadRequestError, "invalid_request_error"),
    ("provider 400", 400, anthropic.BadRequestError, "invalid_request_error"),
    ("provider 429", 429, anthropic.RateLimitError, "rate_limit_error"),
    ("provider 529", 529, anthropic.OverloadedError, "overloaded_error"),
])
def test_each_error_is_anthropic_shaped_and_raises_the_sdks_class(world, case, status, error_class, error_type):
    fake, stack, project_id, key, client = world
    model, extra = MODEL, {}
    if case == "wrong key":
        client = sdk(stack, "ok-not-a-real-key-0000000000")
    elif case == "no credit":
        _, broke = stack.new_key(credit_micro_usd=0, free_requests=0)
        client = sdk(stack, broke)
    elif case == "unknown model":
        model = "claude-nonexistent-9"
    elif case == "untranslatable field":
        # An OpenAI model is served here by translation (once a 400): what cannot be translated,
        # such as a server tool, is still a 400 naming the field.
        model, extra = "openai/gpt-4.1", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    elif case == "provider 400":
        fake.queue(Behaviour(kind="status", status=400, body={"type": "error", "error": {
            "type": "invalid_request_error", "message": "max_tokens: Field required"}}))
    else:
        fake.queue(Behaviour(kind="status", status=status))
    with pytest.raises(error_class) as info:
        client.messages.create(model=model, max_tokens=16, messages=MSGS, **extra)
    err = info.value
    assert err.status_code == status
    assert err.body["type"] == "error" and err.body["error"]["type"] == error_type
    assert set(err.body) == {"type", "error"} and err.body["error"]["message"]
    assert err.response.headers["x-onekey-request-id"].startswith("req_")
    if case == "untranslatable field":
        assert "tools" in err.body["error"]["message"]
    if case == "provider 400":
        assert err.body["error"]["message"] == "max_tokens: Field required"
    if status >= 429:
        assert err.response.headers["x-should-retry"] == "false", "OneKey already tried its channels"
    upstream_cases = {"provider 400", "provider 429", "provider 529"}
    assert len(fake.received) == (1 if case in upstream_cases else 0)


def test_a_missing_key_is_401_anthropic_shaped(world):
    fake, stack, *_ = world
    status, headers, raw = post(stack, "/v1/messages", {"model": MODEL, "max_tokens": 8, "messages": MSGS},
                                {"anthropic-version": "2023-06-01"})
    error = json.loads(raw)
    assert status == 401 and error["type"] == "error" and error["error"]["type"] == "authentication_error"
    assert "x-api-key" in error["error"]["message"]
    status, _, raw = post(stack, "/v1/messages", {"model": MODEL, "max_tokens": 8, "messages": "hi"},
                          {"x-api-key": world[3]})
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    assert fake.received == []


@pytest.mark.parametrize("behaviour", [Behaviour(kind="stream_error"), Behaviour(kind="reset_mid_body")],
                         ids=["provider_error_event", "connection_reset"])
def test_a_stream_failing_after_its_first_byte_ends_with_an_error_event(world, behaviour):
    fake, stack, project_id, key, client = world
    fake.queue(behaviour)
    got = []
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(model=MODEL, max_tokens=64, messages=[
                {"role": "user", "content": "a b c d e f"}]) as stream:
            for event in stream:
                got.append(event)
    assert got and got[0].type == "message_start", "the first events reached the client before the break"
    body = info.value.body
    assert body["type"] == "error" and body["error"]["type"] in {"overloaded_error", "api_error"}
    event = usage_events(stack, project_id, 1)[0]
    assert event.usage.input_tokens > 0 and event.charged_micro_usd > 0, "what was produced is billed"
    assert event.status == (529 if behaviour.kind == "stream_error" else 502)
    assert channels(stack)["anthropic-a"].error_rate > 0, "the breaker learns of the broken answer"


def test_failover_before_the_first_byte_and_free_requests_as_on_chat(start_fake, make_stack):
    primary, backup = start_fake("anthropic"), start_fake("anthropic", name="backup")
    stack = make_stack([channel_to(primary, "anthropic", "primary"), channel_to(backup, "anthropic", "backup",
                                                                                priority=1)])
    project_id, key = stack.new_key(credit_micro_usd=0, free_requests=2)
    client = sdk(stack, key)
    primary.queue(Behaviour(kind="status", status=529), Behaviour(kind="status", status=500))
    assert client.messages.create(model=MODEL, max_tokens=16, messages=MSGS).content[0].text == "hello there"
    with client.messages.stream(model=MODEL, max_tokens=16, messages=MSGS) as stream:
        assert stream.get_final_text() == "hello there"
    assert (len(primary.received), len(backup.received)) == (2, 2)
    with pytest.raises(anthropic.PaymentRequiredError):
        client.messages.create(model=MODEL, max_tokens=16, messages=MSGS)
    assert len(backup.received) == 2, "a refused request never reaches a provider"
    events = usage_events(stack, project_id, 3)
    served = [e for e in events if e.status == 200]
    assert len(served) == 2 and all(e.channel == "backup" and e.cost_micro_usd > 0 and e.charged_micro_usd == 0
                                    for e in served)
    assert [(e.status, e.charged_micro_usd) for e in events if e.status != 200] == [(402, 0)], "the refusal is recorded"


def test_a_client_leaving_mid_stream_cancels_upstream_and_is_billed_once(world):
    fake, stack, project_id, key, client = world
    long_text = " ".join(f"word{i}" for i in range(200))
    fake.queue(Behaviour(chunk_delay=0.05))
    stream = client.messages.create(model=MODEL, max_tokens=1024, stream=True,
                                    messages=[{"role": "user", "content": long_text}])
    it = iter(stream)
    got = [next(it) for _ in range(6)]
    request_id = stream.response.headers["x-onekey-request-id"]
    stream.close()
    cut_at = time.monotonic()
    while fake.cancelled == 0:
        assert time.monotonic() - cut_at < 5.0, "the upstream call outlived the client"
        time.sleep(0.01)
    assert got[0].type == "message_start"
    input_tokens = got[0].message.usage.input_tokens
    usage = None
    for _ in range(100):
        try:
            usage = stack.metering.GetRequestUsage(
                metering_pb2.GetRequestUsageRequest(request_id=request_id, project_id=project_id),
                metadata=stack.metadata)
            break
        except Exception:
            time.sleep(0.05)
    assert usage is not None and usage.status == 499 and usage.usage.estimated
    assert usage.usage.input_tokens == input_tokens, "the input the provider reported is billed as reported"
    assert 0 < usage.usage.output_tokens < 200
    assert usage.charged_micro_usd == usage.cost_micro_usd > 0
    time.sleep(0.3)
    events = usage_events(stack, project_id, 1)
    assert [e.request_id for e in events] == [request_id], "billed once"


def test_models_list_names_the_messages_route_and_the_cache_write_price(world):
    fake, stack, project_id, key, client = world
    req = urllib.request.Request(stack.base_url + "/models", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        models = {m["id"]: m for m in json.loads(resp.read())["data"]}
    claude = models[MODEL]
    assert claude["endpoints"] == ["/v1/chat/completions", "/v1/messages"]
    assert claude["pricing"]["cache_write_input"] == "1.25" and claude["pricing"]["cached_input"] == "0.1"
    assert "/v1/messages" not in models["openai/gpt-4.1"]["endpoints"]
    assert models["openai/gpt-4.1"]["pricing"]["cache_write_input"] == models["openai/gpt-4.1"]["pricing"]["input"]
