"""All four providers through the real edge and core, the official OpenAI SDK as the client,
and fakes that speak each provider's own dialect (path, auth header, usage, errors)."""
from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from router_core.catalog import Catalog
from tests.e2e.conftest import channel_to
from tests.fakes.providers import ANTHROPIC_NO_CREDIT, Behaviour
from tests.stack import usage_events

PROVIDERS = [
    # provider, model, path the fake must see, auth header name, its value's prefix
    ("openai", "openai/gpt-4.1-mini", "/v1/chat/completions", "Authorization", "Bearer "),
    ("anthropic", "anthropic/claude-haiku-4-5", "/v1/chat/completions", "x-api-key", ""),
    ("google", "google/gemini-2.5-flash", "/v1beta/openai/chat/completions", "Authorization", "Bearer "),
    ("xai", "xai/grok-3-mini", "/v1/chat/completions", "Authorization", "Bearer "),
]


@pytest.fixture
def world(start_fake, make_stack):
    """One fake per provider, one channel to each, a stack and a funded project."""
    fakes = {p: start_fake(p) for p, *_ in PROVIDERS}
    stack = make_stack([channel_to(f, p, f"{p}-a") for p, f in fakes.items()])
    project_id, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    return fakes, stack, project_id, key, client


@pytest.mark.parametrize("provider, model, path, header, prefix", PROVIDERS)
def test_chat_non_stream_speaks_each_providers_wire(world, provider, model, path, header, prefix):
    fakes, stack, project_id, key, client = world
    fake = fakes[provider]
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello there"}])
    assert reply.choices[0].message.content == "hello there"
    assert reply.usage.completion_tokens == 2
    sent = fake.received[-1]
    assert sent.path == path
    assert sent.headers[header] == prefix + fake.api_key
    assert sent.body["model"] == Catalog.load().resolve(model).upstream_id
    assert key not in sent.raw.decode() + repr(sent.headers)
    event = usage_events(stack, project_id, 1)[0]
    assert (event.provider, event.channel, event.status, event.usage.output_tokens) == (provider, f"{provider}-a", 200, 2)


@pytest.mark.parametrize("provider, model, path, header, prefix", PROVIDERS)
def test_chat_stream_for_each_provider_with_usage_billed(world, provider, model, path, header, prefix):
    fakes, stack, project_id, key, client = world
    chunks = list(client.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": "one two three"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert all(c.choices for c in chunks), "no usage-only chunk for a client that did not ask"
    assert fakes[provider].received[-1].body["stream_options"] == {"include_usage": True}
    # Billing uses the provider's last (real) usage, even where it repeats or trails.
    event = usage_events(stack, project_id, 1)[0]
    assert event.usage.output_tokens == 3 and not event.usage.estimated

    chunks = list(client.chat.completions.create(
        model=model, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "one two three"}]))
    assert [c.usage.completion_tokens for c in chunks if c.usage][-1] == 3


@pytest.mark.parametrize("provider, model", [("openai", "openai/gpt-5.2"), ("xai", "xai/grok-4")])
def test_responses_non_stream_and_stream(world, provider, model):
    fakes, stack, project_id, key, client = world
    reply = client.responses.create(model=model, input="hello responses")
    assert reply.output_text == "hello responses" and reply.usage.output_tokens == 2
    assert fakes[provider].received[-1].path == "/v1/responses"

    events = list(client.responses.create(model=model, input="streamed words here", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "streamed words here"
    assert fakes[provider].received[-1].body["stream"] is True
    assert "stream_options" not in fakes[provider].received[-1].body
    event = usage_events(stack, project_id, 2)[0]
    assert event.endpoint == "responses" and event.usage.output_tokens == 3


def test_responses_for_a_provider_without_it_is_translated_to_its_chat_route(world):
    # Once a 400 naming the routes that serve the model; now every model answers on /v1/responses.
    fakes, stack, project_id, key, client = world
    reply = client.responses.create(model="anthropic/claude-opus-4-6", input="hi")
    assert reply.output_text == "hi" and reply.object == "response"
    sent = fakes["anthropic"].received[-1]
    assert sent.path == "/v1/chat/completions" and sent.body["messages"] == [{"role": "user", "content": "hi"}]
    event = usage_events(stack, project_id, 1)[0]
    assert event.endpoint == "responses" and event.provider == "anthropic" and event.status == 200


@pytest.mark.parametrize("provider, model", [("openai", "openai/gpt-5.2"), ("xai", "xai/grok-4")])
def test_previous_response_id_is_honoured_only_for_its_project(world, provider, model):
    fakes, stack, project_id, key, client = world
    first = client.responses.create(model=model, input="remember me")
    streamed = [e for e in client.responses.create(model=model, input="me too", stream=True)]
    streamed_id = streamed[0].response.id
    for rid in (first.id, streamed_id):
        again = client.responses.create(model=model, input="and now?", previous_response_id=rid)
        assert again.output_text == "and now?"
        assert fakes[provider].received[-1].body["previous_response_id"] == rid

    _, other_key = stack.new_key()
    other = openai.OpenAI(base_url=stack.base_url, api_key=other_key, max_retries=0)
    seen = len(fakes[provider].received)
    for rid in (first.id, streamed_id, "resp_made_up"):
        with pytest.raises(openai.NotFoundError) as info:
            other.responses.create(model=model, input="let me read it", previous_response_id=rid)
        assert info.value.code == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):  # the same id through another provider's model
        client.responses.create(model="openai/gpt-5.2" if provider == "xai" else "xai/grok-4",
                                input="x", previous_response_id=first.id)
    assert len(fakes[provider].received) == seen, "a refused continuation never reaches the provider"


def test_store_false_responses_are_not_recorded(world):
    fakes, stack, project_id, key, client = world
    reply = client.responses.create(model="openai/gpt-5.2", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="openai/gpt-5.2", input="x", previous_response_id=reply.id)


@pytest.mark.parametrize("provider, model, body, status", [
    ("anthropic", "anthropic/claude-haiku-4-5",
     {"type": "error", "error": {"type": "invalid_request_error", "message": "messages: roles must alternate"}}, 400),
    ("google", "google/gemini-2.5-flash",
     [{"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}}], 400),
    ("xai", "xai/grok-3-mini", {"code": "Client specified an invalid argument", "error": "bad max_tokens"}, 400),
])
def test_each_providers_client_errors_arrive_openai_shaped(world, provider, model, body, status):
    fakes, stack, project_id, key, client = world
    fakes[provider].queue(Behaviour(kind="status", status=status, body=body))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 400 and info.value.type == "invalid_request_error"
    assert len(fakes[provider].received) == 1, "a 400 is the request's fault: never retried"


def test_anthropic_out_of_credit_is_a_503_the_sdk_does_not_retry(world):
    fakes, stack, project_id, key, client = world
    retrying = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=2)
    fakes["anthropic"].queue(Behaviour(kind="status", status=400, body=ANTHROPIC_NO_CREDIT))
    with pytest.raises(openai.InternalServerError) as info:
        retrying.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503 and info.value.code == "provider_credit_exhausted"
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(fakes["anthropic"].received) == 1, "x-should-retry: false keeps the SDK from multiplying the load"


def test_models_list_shows_provider_prices_context_and_preview_status(world):
    fakes, stack, project_id, key, client = world
    req = urllib.request.Request(stack.base_url + "/models", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        models = {m["id"]: m for m in json.loads(resp.read())["data"]}
    assert {m["provider"] for m in models.values()} >= {"openai", "anthropic", "google", "xai"}
    grok = models["xai/grok-4"]
    assert grok["status"] == "preview" and "unavailable" in grok["status_note"]
    claude = models["anthropic/claude-opus-4-6"]
    assert claude["context_window"] > 0 and claude["pricing"]["input_micro_usd"] > 0 and claude["status_note"] is None
    assert [m.id for m in client.models.list().data if m.id == "google/gemini-2.5-pro"]


@pytest.mark.parametrize("provider, model", [("openai", "openai/gpt-5.2"), ("xai", "xai/grok-4")])
def test_a_stored_response_is_retrieved_and_deleted_only_by_its_project(world, provider, model):
    fakes, stack, project_id, key, client = world
    fake = fakes[provider]
    made = client.responses.create(model=model, input="keep this")
    _, other_key = stack.new_key()
    other = openai.OpenAI(base_url=stack.base_url, api_key=other_key, max_retries=0)
    seen = len(fake.received)
    with pytest.raises(openai.NotFoundError) as info:
        other.responses.retrieve(made.id)
    assert info.value.code == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):  # ids are never passed through unchecked
        client.responses.retrieve("..%2Ffiles")
    assert len(fake.received) == seen, "refused retrievals never reach the provider"

    assert client.responses.retrieve(made.id).output_text == "keep this"
    got = fake.received[-1]
    assert (got.path, got.headers.get("Authorization") or got.headers.get("x-api-key")) == (
        f"/v1/responses/{made.id}", f"Bearer {fake.api_key}")
    client.responses.delete(made.id)
    assert made.id not in fake.stored
    with pytest.raises(openai.NotFoundError):  # the provider's own 404, OpenAI-shaped
        client.responses.retrieve(made.id)


@pytest.mark.parametrize("stream", [False, True])
def test_a_sandbox_response_is_retrieved_and_deleted_by_its_project(make_stack, stream):
    stack = make_stack([])
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    if stream:
        events = list(client.responses.create(model="sandbox/echo", input="keep this too", stream=True))
        made = next(e.response for e in events if e.type == "response.completed")
    else:
        made = client.responses.create(model="sandbox/echo", input="keep this too")
    again = client.responses.create(model="sandbox/echo", input="keep this too")
    assert again.id != made.id, "equal requests make distinct responses"

    got = client.responses.retrieve(made.id)
    assert (got.id, got.output_text, got.status, got.model) == (made.id, "keep this too", "completed", made.model)
    assert got.usage.output_tokens == made.usage.output_tokens == 3

    _, other_key = stack.new_key()
    other = openai.OpenAI(base_url=stack.base_url, api_key=other_key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(made.id)
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(made.id)
    assert "not found" in info.value.message
    assert client.responses.retrieve(again.id).output_text == "keep this too"


def test_a_sandbox_response_made_with_store_false_is_not_kept(make_stack):
    stack = make_stack([])
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    made = client.responses.create(model="sandbox/echo", input="forget this", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)


def test_sandbox_models_answer_with_the_id_asked_for(make_stack):
    stack = make_stack([])
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    for model in ("sandbox/echo", "sandbox/lorem"):
        hi = [{"role": "user", "content": "hi"}]
        assert client.chat.completions.create(model=model, messages=hi).model == model
        assert {c.model for c in client.chat.completions.create(model=model, messages=hi, stream=True)} == {model}
        assert client.responses.create(model=model, input="hi").model == model
