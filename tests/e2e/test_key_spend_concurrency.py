"""A key's monthly spend limit under a burst: requests in flight hold their estimate against the
key's remaining limit, as project credit does, so a burst serves at most what the limit pays for
(issue 23, finding 1). Chat, chat streams and Anthropic's /v1/messages with `x-api-key`."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai
import pytest

from onekey.v1 import admin_pb2
from router_core.catalog import Catalog
from router_core.settings import Timeouts
from router_core.usage import Usage, cost_micro_usd, reservation_usage
from tests.e2e.conftest import channel_to
from tests.fakes.openai_provider import Behaviour
from tests.stack import usage_events
from tests.stores import build

LIMIT = 10_000  # $0.01
BURST = 50
MSGS = [{"role": "user", "content": "count the sheep please"}]
OPENAI_USAGE = {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}
ANTHROPIC_USAGE = {"input_tokens": 1000, "output_tokens": 1000}


def _cost(model: str) -> int:
    return cost_micro_usd(Catalog.load().resolve(model), Usage(1000, 1000))


def _estimate(model: str, body: dict) -> int:
    """The core's hold for a body (a few bytes of doubt in how the SDK lays out its JSON)."""
    return cost_micro_usd(Catalog.load().resolve(model), reservation_usage(body, max(len(json.dumps(body)) - 64, 0)))


@pytest.fixture
def world(start_fake, make_stack, database_url):
    build(database_url, "core")  # PostgreSQL is upgraded by the operator, not by the core
    openai_fake, anthropic_fake = start_fake("openai"), start_fake("anthropic")
    stack = make_stack([channel_to(openai_fake, "openai", "openai-a"),
                        channel_to(anthropic_fake, "anthropic", "anthropic-a")],
                       database_url=database_url, timeouts=Timeouts(connect=2.0, first_byte=10.0, idle=10.0))
    project = stack.admin.CreateProject(admin_pb2.CreateProjectRequest(name="p", credit_micro_usd=10_000_000),
                                        metadata=stack.metadata)
    key = stack.admin.CreateKey(admin_pb2.CreateKeyRequest(project_id=project.id, name="limited",
                                                           spend_limit_micro_usd=LIMIT), metadata=stack.metadata)
    return stack, openai_fake, anthropic_fake, project.id, key


def _burst(call) -> tuple[int, list[int]]:
    """Run BURST calls at once: (served, statuses of the refused)."""
    def one(_):
        try:
            call()
            return 200
        except (openai.APIStatusError, anthropic.APIStatusError) as err:
            return err.status_code
    with ThreadPoolExecutor(BURST) as pool:
        statuses = list(pool.map(one, range(BURST)))
    return statuses.count(200), [s for s in statuses if s != 200]


def _check(stack, project_id: str, key_id: str, served: int, refused: list[int], cost: int, estimate: int) -> None:
    assert set(refused) <= {402}, refused
    # Never refused what the limit covers; never more served than the limit pays for (every
    # request costs more than its estimate here, so by one request's overshoot at most).
    assert served >= LIMIT // cost
    assert served <= max(LIMIT // estimate, 1), f"{served} served on a limit for {LIMIT // estimate}"
    events = [e for e in usage_events(stack, project_id, BURST) if e.key_id == key_id]
    assert len(events) == BURST
    charged = sum(e.charged_micro_usd for e in events)
    assert charged <= LIMIT + served * max(cost - estimate, 0)
    assert all(e.error_code == "key_spend_limit_reached" for e in events if e.status == 402)


@pytest.mark.parametrize("stream", [False, True])
def test_a_burst_on_a_limited_key_serves_at_most_what_the_limit_pays_for(world, stream):
    stack, openai_fake, _, project_id, key = world
    model = "openai/gpt-4.1"
    openai_fake.queue(*[Behaviour(delay=1.0, usage=OPENAI_USAGE) for _ in range(BURST)])
    client = openai.OpenAI(base_url=stack.base_url, api_key=key.secret, max_retries=0)

    def call():
        if stream:
            for _ in client.chat.completions.create(model=model, messages=MSGS, stream=True):
                pass
        else:
            client.chat.completions.create(model=model, messages=MSGS)

    served, refused = _burst(call)
    body = {"messages": MSGS, "model": model, **({"stream": True} if stream else {})}
    _check(stack, project_id, key.key.id, served, refused, _cost(model), _estimate(model, body))


def test_a_burst_on_messages_with_x_api_key_serves_at_most_what_the_limit_pays_for(world):
    stack, _, anthropic_fake, project_id, key = world
    model = "anthropic/claude-haiku-4-5"
    anthropic_fake.queue(*[Behaviour(delay=1.0, usage=ANTHROPIC_USAGE) for _ in range(BURST)])
    client = anthropic.Anthropic(base_url=stack.base_url.removesuffix("/v1"), api_key=key.secret, max_retries=0)
    served, refused = _burst(lambda: client.messages.create(model=model, max_tokens=1000, messages=MSGS))
    body = {"max_tokens": 1000, "messages": MSGS, "model": model}
    _check(stack, project_id, key.key.id, served, refused, _cost(model), _estimate(model, body))


def test_a_burst_on_a_translated_route_is_held_like_a_native_one(world):
    """Messages on an OpenAI model (translated to chat completions): the same holds, the same bound."""
    stack, openai_fake, _, project_id, key = world
    model = "openai/gpt-4.1"
    openai_fake.queue(*[Behaviour(delay=1.0, usage=OPENAI_USAGE) for _ in range(BURST)])
    client = anthropic.Anthropic(base_url=stack.base_url.removesuffix("/v1"), api_key=key.secret, max_retries=0)
    served, refused = _burst(lambda: client.messages.create(model=model, max_tokens=1000, messages=MSGS))
    body = {"max_tokens": 1000, "messages": MSGS, "model": model}
    _check(stack, project_id, key.key.id, served, refused, _cost(model), _estimate(model, body))
