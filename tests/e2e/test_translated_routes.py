"""Every model on every route: the official SDKs against models whose provider speaks another
format, through the real edge and core and fake providers on loopback.

- the `anthropic` SDK (Messages) against OpenAI, Google and xAI models (chat upstreams);
- the `openai` SDK's Responses API against Anthropic and Google models (chat upstreams);
each whole and streamed: text, a tool-use round trip, an image, count_tokens; billing from the
provider's own usage exactly as a native request; refusals in the client's shape naming the field.
"""
from __future__ import annotations

import base64
import time
import json
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from router_core.catalog import Catalog
from tests.e2e.conftest import channel_to
from tests.fakes.openai_provider import Behaviour
from tests.stack import usage_events

# A 1x1 transparent PNG.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")).decode()
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
MESSAGES_MODELS = {"openai": "openai/gpt-4.1", "google": "google/gemini-2.5-flash", "xai": "xai/grok-4"}
RESPONSES_MODELS = {"anthropic": "anthropic/claude-haiku-4-5", "google": "google/gemini-2.5-flash"}


@pytest.fixture
def world(start_fake, make_stack):
    """A fake of each provider (answering tools and reasoning), a channel each, a funded project."""
    fakes = {p: start_fake(p) for p in ("openai", "anthropic", "google", "xai")}
    for fake in fakes.values():
        fake.agentic = True
    stack = make_stack([channel_to(f, p, f"{p}-a") for p, f in fakes.items()])
    project_id, key = stack.new_key()
    return fakes, stack, project_id, key


def messages_sdk(stack, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.base_url.removesuffix("/v1"), api_key=key, max_retries=0)


def openai_sdk(stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)


def price(usage, model: str) -> int:
    """The cost of a usage by the catalog's rates, computed here independently."""
    m = Catalog.load().resolve(model)
    cached_price = m.cached_input_price or m.input_price
    fresh = usage.input_tokens - usage.cached_input_tokens
    return -(-(fresh * m.input_price + usage.cached_input_tokens * cached_price
               + usage.output_tokens * m.output_price) // 1_000_000)


def assert_billed_as_reported(event, reported: dict, model: str) -> None:
    """The usage event holds the provider's own counts, priced as a native request would be."""
    assert (event.usage.input_tokens, event.usage.output_tokens) == (
        reported["prompt_tokens"], reported["completion_tokens"])
    assert event.usage.reasoning_tokens == reported["completion_tokens_details"]["reasoning_tokens"]
    assert not event.usage.estimated
    assert event.cost_micro_usd == event.charged_micro_usd == price(event.usage, model) > 0


def post(stack, path: str, body: dict, key: str) -> tuple[int, dict]:
    req = urllib.request.Request(stack.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# -- the anthropic SDK on chat-completions models ---------------------------------------------

def create_message(client: anthropic.Anthropic, stream: bool, **kw):
    """A whole Message, asked for whole or streamed (the SDK assembles the stream)."""
    if not stream:
        return client.messages.create(**kw)
    with client.messages.stream(**kw) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(MESSAGES_MODELS))
def test_messages_text_on_a_chat_model(world, provider, stream):
    fakes, stack, project_id, key = world
    model = MESSAGES_MODELS[provider]
    reply = create_message(messages_sdk(stack, key), stream, model=model, max_tokens=64,
                           system="be brief", messages=[{"role": "user", "content": "hello there"}])
    assert [b.type for b in reply.content] == ["text"] and reply.content[0].text == "hello there"
    assert reply.stop_reason == "end_turn" and reply.role == "assistant"
    sent = fakes[provider].received[-1]
    assert sent.path.endswith("/chat/completions")
    assert sent.body["messages"][0] == {"role": "system", "content": "be brief"}
    assert key not in sent.raw.decode() + repr(sent.headers)
    assert not any(h.lower().startswith("anthropic-") for h in sent.headers), "Anthropic's headers stay here"
    event = usage_events(stack, project_id, 1)[0]
    assert (event.endpoint, event.provider, event.status, event.stream) == ("messages", provider, 200, stream)
    reported = fakes[provider].usages[-1]
    assert_billed_as_reported(event, reported, model)
    assert reply.usage.input_tokens == reported["prompt_tokens"]
    assert reply.usage.output_tokens == reported["completion_tokens"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(MESSAGES_MODELS))
def test_messages_tool_use_round_trip_on_a_chat_model(world, provider, stream):
    fakes, stack, project_id, key = world
    client, model = messages_sdk(stack, key), MESSAGES_MODELS[provider]
    tools = [{"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER_SCHEMA}]
    question = {"role": "user", "content": "weather in Paris?"}
    first = create_message(client, stream, model=model, max_tokens=64, tools=tools, messages=[question])
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    sent = fakes[provider].received[-1].body
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_SCHEMA
    answer = create_message(client, stream, model=model, max_tokens=64, tools=tools, messages=[
        question, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22 degrees"}]}])
    assert answer.stop_reason == "end_turn"
    assert answer.content[-1].text == "The tool said: 22 degrees"
    sent = fakes[provider].received[-1].body["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == call.id
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    events = usage_events(stack, project_id, 2)
    for event, reported in zip(events, reversed(fakes[provider].usages[-2:])):
        assert_billed_as_reported(event, reported, model)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(MESSAGES_MODELS))
def test_messages_image_on_a_chat_model(world, provider, stream):
    fakes, stack, project_id, key = world
    reply = create_message(messages_sdk(stack, key), stream, model=MESSAGES_MODELS[provider], max_tokens=64,
                           messages=[{"role": "user", "content": [
                               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                               {"type": "text", "text": "what is this"}]}])
    assert reply.content[0].text == "what is this"
    assert fakes[provider].images == ["image/png"], "the image reached the provider as an image part"


@pytest.mark.parametrize("provider", list(MESSAGES_MODELS))
def test_count_tokens_on_a_chat_model_is_local_and_free(world, provider):
    fakes, stack, project_id, key = world
    client, model = messages_sdk(stack, key), MESSAGES_MODELS[provider]
    msgs = [{"role": "user", "content": "count these words please"}]
    small = client.messages.count_tokens(model=model, messages=msgs).input_tokens
    tools = [{"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER_SCHEMA}]
    large = client.messages.count_tokens(model=model, messages=msgs, system="a system prompt", tools=tools)
    assert 0 < small < large.input_tokens
    assert fakes[provider].received == [], "counted here: the provider is not asked"
    events = usage_events(stack, project_id, 2)
    assert {e.endpoint for e in events} == {"messages/count_tokens"}
    assert all(e.cost_micro_usd == 0 and e.status == 200 for e in events)


def test_messages_thinking_on_a_reasoning_chat_model(world):
    fakes, stack, project_id, key = world
    client = messages_sdk(stack, key)
    for stream in (False, True):
        reply = create_message(client, stream, model="openai/o4-mini", max_tokens=8192,
                               thinking={"type": "enabled", "budget_tokens": 2048},
                               messages=[{"role": "user", "content": "think first"}])
        assert fakes["openai"].received[-1].body["reasoning_effort"] == "low"
        assert [b.type for b in reply.content] == ["thinking", "text"]
        assert reply.content[0].thinking == "Thinking it over step by step."
        assert reply.content[1].text == "think first"
    for event, reported in zip(usage_events(stack, project_id, 2), reversed(fakes["openai"].usages)):
        assert event.usage.reasoning_tokens == reported["completion_tokens_details"]["reasoning_tokens"] > 0
        assert_billed_as_reported(event, reported, "openai/o4-mini")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_server_tool_on_a_chat_model_is_a_400_naming_it(world, stream):
    fakes, stack, project_id, key = world
    with pytest.raises(anthropic.BadRequestError) as info:
        create_message(messages_sdk(stack, key), stream, model="openai/gpt-4.1", max_tokens=64,
                       tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
                       messages=[{"role": "user", "content": "search"}])
    err = info.value
    assert err.body["type"] == "error" and err.body["error"]["type"] == "invalid_request_error"
    assert "tools" in err.body["error"]["message"]
    assert fakes["openai"].received == []
    event = usage_events(stack, project_id, 1)[0]
    assert (event.status, event.error_code, event.cost_micro_usd) == (400, "unsupported_parameter", 0)


def test_messages_provider_error_is_anthropic_shaped(world):
    fakes, stack, project_id, key = world
    fakes["openai"].queue(Behaviour(kind="status", status=400, body={"error": {
        "message": "bad temperature", "type": "invalid_request_error", "param": "temperature", "code": None}}),
        Behaviour(kind="status", status=429))
    client = messages_sdk(stack, key)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="openai/gpt-4.1", max_tokens=16, messages=[{"role": "user", "content": "x"}])
    assert bad.value.body["error"] == {"type": "invalid_request_error", "message": "bad temperature"}
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="openai/gpt-4.1", max_tokens=16, messages=[{"role": "user", "content": "x"}])
    assert limited.value.body["type"] == "error" and limited.value.body["error"]["type"] == "rate_limit_error"


def test_a_cut_translated_stream_ends_in_an_error_event_and_bills_what_was_produced(world):
    fakes, stack, project_id, key = world
    fakes["openai"].queue(Behaviour(kind="reset_mid_body"))
    client = messages_sdk(stack, key)
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(model="openai/gpt-4.1", max_tokens=64,
                                    messages=[{"role": "user", "content": "one two three four five six"}]) as s:
            list(s)
    assert info.value.body["type"] == "error"
    event = usage_events(stack, project_id, 1)[0]
    assert event.endpoint == "messages" and event.status >= 500
    assert event.usage.estimated and event.usage.input_tokens > 0 and event.cost_micro_usd > 0


def test_messages_credit_is_reserved_from_the_clients_max_tokens(world):
    fakes, stack, project_id, key = world
    _, poor = stack.new_key(credit_micro_usd=50_000)  # $0.05: gpt-4.1's output is $8 / 1M tokens
    client = messages_sdk(stack, poor)
    with pytest.raises(anthropic.PaymentRequiredError):
        client.messages.create(model="openai/gpt-4.1", max_tokens=20_000,  # $0.16 of output
                               messages=[{"role": "user", "content": "x"}])
    assert fakes["openai"].received == []
    assert client.messages.create(model="openai/gpt-4.1", max_tokens=16,
                                  messages=[{"role": "user", "content": "x"}]).content[0].text == "x"


# -- the openai SDK's Responses API on chat-completions models -------------------------------

def create_response(client: openai.OpenAI, stream: bool, **kw):
    """A whole Response, asked for whole or streamed (the SDK assembles the stream)."""
    if not stream:
        return client.responses.create(**kw)
    with client.responses.stream(**kw) as events:
        return events.get_final_response()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(RESPONSES_MODELS))
def test_responses_text_on_a_chat_model(world, provider, stream):
    fakes, stack, project_id, key = world
    model = RESPONSES_MODELS[provider]
    reply = create_response(openai_sdk(stack, key), stream, model=model, instructions="be brief",
                            input="hello there", max_output_tokens=64)
    assert reply.output_text == "hello there" and reply.status == "completed"
    sent = fakes[provider].received[-1]
    assert sent.path.endswith("/chat/completions")
    assert sent.body["messages"][0]["content"] == "be brief"
    event = usage_events(stack, project_id, 1)[0]
    assert (event.endpoint, event.provider, event.status, event.stream) == ("responses", provider, 200, stream)
    reported = fakes[provider].usages[-1]
    assert_billed_as_reported(event, reported, model)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (
        reported["prompt_tokens"], reported["completion_tokens"])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(RESPONSES_MODELS))
def test_responses_function_call_round_trip_on_a_chat_model(world, provider, stream):
    fakes, stack, project_id, key = world
    client, model = openai_sdk(stack, key), RESPONSES_MODELS[provider]
    tools = [{"type": "function", "name": "get_weather", "description": "The weather in a city.",
              "parameters": WEATHER_SCHEMA}]
    question = {"role": "user", "content": "weather in Paris?"}
    first = create_response(client, stream, model=model, tools=tools, input=[question])
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    answer = create_response(client, stream, model=model, tools=tools, input=[
        question, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees"}])
    assert answer.output_text == "The tool said: 22 degrees"
    sent = fakes[provider].received[-1].body["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "22 degrees"}
    for event, reported in zip(usage_events(stack, project_id, 2), reversed(fakes[provider].usages[-2:])):
        assert_billed_as_reported(event, reported, model)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(RESPONSES_MODELS))
def test_responses_input_image_on_a_chat_model(world, provider, stream):
    fakes, stack, project_id, key = world
    reply = create_response(openai_sdk(stack, key), stream, model=RESPONSES_MODELS[provider], input=[
        {"role": "user", "content": [{"type": "input_text", "text": "what is this"},
                                     {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]}])
    assert reply.output_text == "what is this"
    assert fakes[provider].images == ["image/png"]


def test_responses_previous_response_id_is_refused_and_ids_are_not_kept(world):
    fakes, stack, project_id, key = world
    client = openai_sdk(stack, key)
    model = RESPONSES_MODELS["anthropic"]
    kept = client.responses.create(model=model, input="remember me", store=True)  # accepted, ignored
    assert kept.output_text == "remember me"
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=model, input="and now?", previous_response_id=kept.id)
    assert info.value.status_code == 400 and info.value.body["param"] == "previous_response_id"
    assert "previous_response_id" in info.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(kept.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(kept.id)
    assert len(fakes["anthropic"].received) == 1


def test_responses_provider_error_is_openai_shaped(world):
    fakes, stack, project_id, key = world
    fakes["google"].queue(Behaviour(kind="status", status=400))
    with pytest.raises(openai.BadRequestError) as info:
        openai_sdk(stack, key).responses.create(model=RESPONSES_MODELS["google"], input="x")
    assert {"message", "type", "code"} <= set(info.value.body)


# -- /v1/models says which routes are native and which translated -----------------------------

def test_models_list_each_route_as_native_or_translated(world):
    fakes, stack, project_id, key = world
    listing = {m.id: m.model_dump() for m in openai_sdk(stack, key).models.list().data}
    assert listing["google/gemini-2.5-flash"]["routes"] == {
        "/v1/chat/completions": "native", "/v1/messages": "translated", "/v1/responses": "translated"}
    assert listing["anthropic/claude-haiku-4-5"]["routes"] == {
        "/v1/chat/completions": "native", "/v1/messages": "native", "/v1/responses": "translated"}
    assert listing["openai/gpt-4.1"]["routes"] == {
        "/v1/chat/completions": "native", "/v1/messages": "translated", "/v1/responses": "native"}
    assert listing["openai/gpt-4.1"]["endpoints"] == ["/v1/chat/completions", "/v1/responses"], "native only"


def test_sandbox_answers_on_messages(world):
    fakes, stack, project_id, key = world
    client = messages_sdk(stack, key)
    reply = client.messages.create(model="sandbox/echo", max_tokens=64, messages=[{"role": "user", "content": "hi you"}])
    assert reply.type == "message" and reply.content[0].type == "text" and reply.content[0].text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_messages_on_a_responses_only_model_go_through_chat_to_responses(world, stream):
    """Messages -> chat -> Responses: Claude Code on GPT-5.x Codex, a tool round trip, billed as reported."""
    fakes, stack, project_id, key = world
    client = messages_sdk(stack, key)
    tools = [{"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER_SCHEMA}]
    question = {"role": "user", "content": "weather in Paris?"}

    def ask(messages):
        kw = dict(model="openai/gpt-5.3-codex", max_tokens=256, tools=tools, messages=messages)
        if not stream:
            return client.messages.create(**kw)
        with client.messages.stream(**kw) as events:
            return events.get_final_message()

    first = ask([question])
    call = next(b for b in first.content if b.type == "tool_use")
    assert first.stop_reason == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}
    assert fakes["openai"].received[-1].path == "/v1/responses"
    final = ask([question, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22 degrees"}]}])
    assert final.stop_reason == "end_turn" and final.content[-1].text == "The tool said: 22 degrees"
    for event, reported in zip(usage_events(stack, project_id, 2), reversed(fakes["openai"].usages[-2:])):
        assert event.endpoint == "messages"
        assert_billed_as_responses_reported(event, reported, "openai/gpt-5.3-codex")


# -- the openai SDK's chat completions on a Responses-only model -------------------------------

CODEX = "openai/gpt-5.3-codex"


def chat(client: openai.OpenAI, stream: bool, **kw) -> tuple[str, list[dict], str, object]:
    """(text, tool calls, finish_reason, usage) of a chat completion, whole or streamed."""
    if not stream:
        reply = client.chat.completions.create(**kw)
        message = reply.choices[0].message
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                 for c in message.tool_calls or ()]
        return message.content or "", calls, reply.choices[0].finish_reason, reply.usage
    text, calls, finish, usage = "", {}, None, None
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or ():
                got = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                got["id"] = call.id or got["id"]
                got["name"] += (call.function.name or "") if call.function else ""
                got["arguments"] += (call.function.arguments or "") if call.function else ""
    return text, list(calls.values()), finish, usage


def assert_billed_as_responses_reported(event, reported: dict, model: str) -> None:
    assert (event.usage.input_tokens, event.usage.output_tokens) == (
        reported["input_tokens"], reported["output_tokens"])
    assert not event.usage.estimated
    assert event.cost_micro_usd == event.charged_micro_usd == price(event.usage, model) > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_chat_on_a_responses_only_model(world, stream):
    fakes, stack, project_id, key = world
    client = openai_sdk(stack, key)
    text, calls, finish, usage = chat(client, stream, model=CODEX, messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}])
    assert (text, calls, finish) == ("hello there", [], "stop")
    sent = fakes["openai"].received[-1]
    assert sent.path == "/v1/responses" and sent.body["store"] is False
    reported = fakes["openai"].usages[-1]
    assert (usage.prompt_tokens, usage.completion_tokens) == (reported["input_tokens"], reported["output_tokens"])
    event = usage_events(stack, project_id, 1)[0]
    assert (event.endpoint, event.status, event.stream) == ("chat/completions", 200, stream)
    assert_billed_as_responses_reported(event, reported, CODEX)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_chat_tool_round_trip_and_image_on_a_responses_only_model(world, stream):
    fakes, stack, project_id, key = world
    client = openai_sdk(stack, key)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                               "parameters": WEATHER_SCHEMA}}]
    question = {"role": "user", "content": [{"type": "text", "text": "weather here?"}, {
        "type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}
    text, calls, finish, _ = chat(client, stream, model=CODEX, tools=tools, messages=[question])
    assert finish == "tool_calls" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert fakes["openai"].images == ["image/png"]
    text, calls, finish, _ = chat(client, stream, model=CODEX, tools=tools, messages=[
        question, {"role": "assistant", "content": None, "tool_calls": [
            {"id": calls[0]["id"], "type": "function",
             "function": {"name": "get_weather", "arguments": calls[0]["arguments"]}}]},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "22 degrees"}])
    assert (text, finish) == ("The tool said: 22 degrees", "stop")
    for event, reported in zip(usage_events(stack, project_id, 2), reversed(fakes["openai"].usages[-2:])):
        assert_billed_as_responses_reported(event, reported, CODEX)


# -- cut streams and clients that leave --------------------------------------------------------

def test_a_client_leaving_a_translated_stream_cancels_upstream_and_is_billed_once(world):
    fakes, stack, project_id, key = world
    fake = fakes["google"]
    fake.queue(Behaviour(chunk_delay=0.05))
    stream = messages_sdk(stack, key).messages.create(
        model="google/gemini-2.5-flash", max_tokens=1024, stream=True,
        messages=[{"role": "user", "content": " ".join(f"word{i}" for i in range(200))}])
    it = iter(stream)
    got = [next(it) for _ in range(5)]
    request_id = stream.response.headers["x-onekey-request-id"]
    stream.close()
    cut_at = time.monotonic()
    while fake.cancelled == 0:
        assert time.monotonic() - cut_at < 5.0, "the upstream call outlived the client"
        time.sleep(0.01)
    assert got[0].type == "message_start"
    events = usage_events(stack, project_id, 1)
    assert [e.request_id for e in events] == [request_id], "billed once"
    event = events[0]
    assert (event.status, event.error_code, event.endpoint) == (499, "client_closed", "messages")
    assert event.usage.estimated and event.usage.input_tokens > 0 and 0 < event.usage.output_tokens < 200
    assert event.charged_micro_usd == event.cost_micro_usd > 0


def test_a_cut_translated_responses_stream_ends_in_an_error_the_sdk_raises(world):
    fakes, stack, project_id, key = world
    fakes["anthropic"].queue(Behaviour(kind="reset_mid_body"))
    with pytest.raises(openai.APIError):
        with openai_sdk(stack, key).responses.stream(model=RESPONSES_MODELS["anthropic"],
                                                     input="one two three four five six") as events:
            list(events)
    event = usage_events(stack, project_id, 1)[0]
    assert event.endpoint == "responses" and event.status >= 500
    assert event.usage.estimated and event.cost_micro_usd > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_native_messages_tool_round_trip_and_image_stay_native(world, stream):
    """The same round trip on an Anthropic model goes to its own Messages API, untranslated."""
    fakes, stack, project_id, key = world
    client, model = messages_sdk(stack, key), RESPONSES_MODELS["anthropic"]
    tools = [{"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER_SCHEMA}]
    question = {"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "weather here?"}]}
    first = create_message(client, stream, model=model, max_tokens=64, tools=tools, messages=[question])
    call = next(b for b in first.content if b.type == "tool_use")
    assert first.stop_reason == "tool_use" and call.input == {"city": "Paris"}
    answer = create_message(client, stream, model=model, max_tokens=64, tools=tools, messages=[
        question, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22 degrees"}]}])
    assert answer.content[-1].text == "The tool said: 22 degrees"
    assert [r.path for r in fakes["anthropic"].received] == ["/v1/messages"] * 2
    assert fakes["anthropic"].images == ["image/png", "image/png"]


# -- odd bodies: a 400 in the client's shape, or an answer; never a 500 ------------------------

ODD_MESSAGES = [
    {"messages": [{"role": "user", "content": 42}]},
    {"messages": [{"role": "user", "content": [7, "x"]}]},
    {"messages": [{"role": "user", "content": [{"type": "image"}]}]},
    {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": {"a": 1}}]}]},
    {"messages": [{"role": "robot", "content": "hi"}]},
    {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "input": "x"}]}]},
    {"messages": [{"role": "user", "content": "hi"}], "tools": "x"},
    {"messages": [{"role": "user", "content": "hi"}], "tools": [{"name": 1, "input_schema": 2}]},
    {"messages": [{"role": "user", "content": "hi"}], "system": 5},
    {"messages": [{"role": "user", "content": "hi"}], "thinking": "yes"},
    {"messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled", "budget_tokens": "x"}},
    {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "any"},
    {"messages": [{"role": "user", "content": "hi"}], "metadata": "x", "stop_sequences": "x"},
    {"messages": [{"role": "user", "content": "hi"}], "output_config": {"effort": 3}},
]
ODD_RESPONSES = [
    {"input": 5}, {"input": [1]}, {"input": []}, {"input": [{"type": "function_call"}]},
    {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
    {"input": "hi", "tools": [{"type": "function"}]}, {"input": "hi", "tools": "x"},
    {"input": "hi", "text": {"format": 1}}, {"input": "hi", "reasoning": "high"},
    {"input": "hi", "instructions": 5}, {"input": "hi", "tool_choice": 3}, {"input": "hi", "include": "x"},
]


def test_odd_bodies_on_translated_routes_are_400s_in_the_clients_shape(world):
    fakes, stack, project_id, key = world
    for body in ODD_MESSAGES:
        status, answer = post(stack, "/messages", {"model": "openai/gpt-4.1", "max_tokens": 16, **body}, key)
        assert status in (200, 400), (body, status, answer)
        if status == 400:
            assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error", body
    for body in ODD_RESPONSES:
        status, answer = post(stack, "/responses", {"model": "anthropic/claude-haiku-4-5", **body}, key)
        assert status in (200, 400), (body, status, answer)
        if status == 400:
            assert set(answer["error"]) >= {"message", "type", "param", "code"}, body


def test_a_providers_error_chunk_mid_stream_ends_the_translated_stream_in_the_clients_error(world):
    fakes, stack, project_id, key = world
    fakes["openai"].queue(Behaviour(kind="stream_error"))
    with pytest.raises(anthropic.APIStatusError) as info:
        with messages_sdk(stack, key).messages.stream(model="openai/gpt-4.1", max_tokens=64,
                                                      messages=[{"role": "user", "content": "one two three"}]) as s:
            list(s)
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] in ("overloaded_error", "api_error")
    fakes["google"].queue(Behaviour(kind="stream_error"))
    with pytest.raises(openai.APIError):
        with openai_sdk(stack, key).responses.stream(model="google/gemini-2.5-flash", input="one two") as events:
            list(events)
    events = usage_events(stack, project_id, 2)
    assert sorted(e.provider for e in events) == ["google", "openai"]
    assert all(e.status >= 500 for e in events), [e.status for e in events]
