"""The live catalog through the real edge and core: models come and go with the providers' own
lists, priced by the package, without a restart; the operator's file reloads atomically."""
from __future__ import annotations

import json
import urllib.request
from dataclasses import replace
from decimal import ROUND_CEILING

import anthropic
import grpc
import openai
import pytest

from onekey.v1 import admin_pb2
from router_core.prices import PriceBook
from router_core.settings import CoreSettings, Timeouts
from tests.e2e.conftest import channel_to
from tests.fakes.openai_provider import Behaviour
from tests.stack import Stack, usage_events

MSG = [{"role": "user", "content": "hi"}]
USAGE = {"prompt_tokens": 1234, "completion_tokens": 567, "total_tokens": 1801,
         "prompt_tokens_details": {"cached_tokens": 200}}


def models_of(stack, key: str) -> dict[str, dict]:
    req = urllib.request.Request(stack.base_url + "/models", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return {m["id"]: m for m in json.loads(resp.read())["data"]}


def package_micro_usd(provider: str, upstream: str, inp: int, out: int, cached: int = 0) -> int:
    usd = PriceBook().find(provider, upstream).package_cost(inp, out, cached)
    return int((usd * 1_000_000).to_integral_value(rounding=ROUND_CEILING))


@pytest.fixture
def live(start_fake, loop_thread, tmp_path):
    """A stack whose configuration can be re-read: the operator's file and channels live in `state`."""
    fakes = {"openai": start_fake("openai"), "anthropic": start_fake("anthropic")}
    catalog = tmp_path / "catalog.toml"
    catalog.write_text("")
    state = {"channels": (channel_to(fakes["openai"], "openai", "openai-a"),
                          channel_to(fakes["anthropic"], "anthropic", "anthropic-a"))}
    base = CoreSettings(database_url=f"sqlite:///{tmp_path}/router.db", channels=state["channels"],
                        usage_flush_interval=0.05, catalog_file=str(catalog), models_sync_interval=0,
                        timeouts=Timeouts(connect=2.0, first_byte=2.0, idle=2.0))

    def reload_settings() -> CoreSettings:
        from router_core.catalog_file import apply_operator_file
        from router_core.catalog_build import shipped_models
        apply_operator_file(shipped_models(PriceBook()), catalog, PriceBook())  # as the config loader checks it
        return replace(base, channels=state["channels"])

    stack = Stack(base, loop=loop_thread, reload_settings=reload_settings)
    project_id, key = stack.new_key()
    yield fakes, stack, project_id, key, catalog, state
    stack.stop()


def sync(stack) -> admin_pb2.SyncModelsResponse:
    return stack.admin.SyncModels(admin_pb2.SyncModelsRequest(), metadata=stack.metadata)


def test_a_model_a_provider_starts_listing_is_served_at_the_package_price_without_a_restart(live):
    fakes, stack, project_id, key, _, _ = live
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    assert "openai/gpt-6-luna" not in models_of(stack, key)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai/gpt-6-luna", messages=MSG)

    fakes["openai"].models.append("gpt-6-luna")
    report = sync(stack)
    assert {c.channel: c.listed for c in report.channels}["openai-a"] == len(fakes["openai"].models)
    luna = models_of(stack, key)["openai/gpt-6-luna"]
    assert luna["status"] == "available" and luna["price_source"].startswith("genai-prices ")
    fakes["openai"].queue(Behaviour(usage=USAGE))
    client.chat.completions.create(model="gpt-6-luna", messages=MSG)
    assert fakes["openai"].received[-1].body["model"] == "gpt-6-luna"
    events = usage_events(stack, project_id, 2)  # the refusal before the sync has an event of its own
    event = next(e for e in events if e.status == 200)
    assert event.model == "openai/gpt-6-luna"
    assert event.cost_micro_usd == package_micro_usd("openai", "gpt-6-luna", 1234, 567, 200) > 0


def test_a_model_the_provider_stops_listing_is_retired_saying_so(live):
    fakes, stack, _, key, _, _ = live
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    assert models_of(stack, key)["openai/gpt-4.1-nano"]["status"] == "available"
    fakes["openai"].models.remove("gpt-4.1-nano")
    sync(stack)
    nano = models_of(stack, key)["openai/gpt-4.1-nano"]
    assert nano["status"] == "retired" and "no longer lists `gpt-4.1-nano`" in nano["status_note"]
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="openai/gpt-4.1-nano", messages=MSG)
    assert info.value.code == "model_retired" and len(fakes["openai"].received) == 0
    fakes["openai"].models.append("gpt-4.1-nano")  # and back, once it is listed again
    sync(stack)
    assert models_of(stack, key)["openai/gpt-4.1-nano"]["status"] == "available"


def test_a_listed_model_with_no_known_price_is_not_served_and_is_reported(live):
    fakes, stack, _, key, _, _ = live
    fakes["openai"].models += ["gpt-9-preview-unpriced", "text-embedding-9"]
    report = sync(stack)
    unpriced = {u.provider: list(u.upstream_ids) for u in report.unpriced}
    assert unpriced == {"openai": ["gpt-9-preview-unpriced"]}, "an embedding model is not text: not even listed"
    listed = models_of(stack, key)
    assert "openai/gpt-9-preview-unpriced" not in listed and "openai/text-embedding-9" not in listed
    assert "openai/text-embedding-3-small" not in listed and "openai/tts-1" not in listed
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai/gpt-9-preview-unpriced", messages=MSG)
    assert len(fakes["openai"].received) == 0


def test_a_model_the_provider_answers_404_for_stops_being_servable(live):
    fakes, stack, _, key, _, _ = live
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    fakes["openai"].queue(Behaviour(kind="status", status=404))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai/gpt-5-nano", messages=MSG)
    nano = models_of(stack, key)["openai/gpt-5-nano"]
    assert nano["status"] == "retired" and "does not exist" in nano["status_note"]
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="openai/gpt-5-nano", messages=MSG)
    assert info.value.code == "model_retired" and len(fakes["openai"].received) == 1
    sync(stack)  # the provider still lists it: the list is the newer word
    assert models_of(stack, key)["openai/gpt-5-nano"]["status"] == "available"


def test_an_operator_override_of_a_listed_model_wins_and_reload_applies_it(live):
    fakes, stack, project_id, key, catalog, _ = live
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    catalog.write_text('[markup]\nopenai = 10\n\n[[models]]\nid = "openai/gpt-5.5"\n'
                       'input_price = 1_000_000\noutput_price = 2_000_000\n\n'
                       '[[models]]\nid = "openai/gpt-4.1-mini"\nhidden = true\n')
    stack.admin.Reload(admin_pb2.ReloadRequest(), metadata=stack.metadata)
    listed = models_of(stack, key)
    gpt55 = listed["openai/gpt-5.5"]
    assert gpt55["price_source"] == "operator file" and gpt55["pricing"]["input_micro_usd"] == 1_100_000
    assert "openai/gpt-4.1-mini" not in listed
    assert listed["openai/gpt-4.1"]["pricing"]["input_micro_usd"] == 2_200_000  # the package's $2 + 10 %
    fakes["openai"].queue(Behaviour(usage={"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000,
                                           "total_tokens": 2_000_000}))
    client.chat.completions.create(model="openai/gpt-5.5", messages=MSG)
    assert usage_events(stack, project_id, 1)[0].cost_micro_usd == 3_300_000


def test_a_bad_reload_is_refused_by_line_and_the_old_catalog_keeps_serving(live):
    fakes, stack, _, key, catalog, _ = live
    catalog.write_text('[[models]]\nid = "openai/gpt-4.1-nano"\nhidden = true\n')
    stack.admin.Reload(admin_pb2.ReloadRequest(), metadata=stack.metadata)
    assert "openai/gpt-4.1-nano" not in models_of(stack, key)
    catalog.write_text('[[models]]\nid = "openai/gpt-4.1"\n\ninput_price = 2.5\n')
    with pytest.raises(grpc.RpcError) as info:
        stack.admin.Reload(admin_pb2.ReloadRequest(), metadata=stack.metadata)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "line 4" in info.value.details() and "input_price" in info.value.details()
    listed = models_of(stack, key)
    assert "openai/gpt-4.1-nano" not in listed, "the file that was serving still is"
    fakes["openai"].queue(Behaviour())
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    assert client.chat.completions.create(model="openai/gpt-4.1", messages=MSG).choices[0].message.content


def test_a_reload_adds_a_channel_without_a_restart(live, start_fake):
    fakes, stack, _, key, _, state = live
    gemini = start_fake("google")
    assert models_of(stack, key)["google/gemini-2.5-pro"]["status"] == "no_channel"
    state["channels"] = (*state["channels"], channel_to(gemini, "google", "google-a"))
    report = stack.admin.Reload(admin_pb2.ReloadRequest(), metadata=stack.metadata)
    assert "google-a" in {c.channel for c in report.channels} and report.servable["google"] >= 6
    listed = models_of(stack, key)
    assert listed["google/gemini-2.5-pro"]["status"] == "available"
    assert listed["google/gemini-3.1-pro-preview"]["status"] == "available"  # listed, priced by the package
    gemini.queue(Behaviour())
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    assert client.chat.completions.create(model="gemini-2.5-pro", messages=MSG).choices[0].message.content


@pytest.mark.parametrize("model", ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"])
def test_the_models_claude_code_asks_for_by_default_are_served(live, model):
    """Claude Code 2.1.328 asks for these when no model is set; the fake Anthropic lists them."""
    fakes, stack, project_id, key, _, _ = live
    messages = anthropic.Anthropic(base_url=stack.base_url.removesuffix("/v1"), api_key=key, max_retries=0)
    reply = messages.messages.create(model=model, max_tokens=64, messages=MSG)
    assert reply.content[0].text and fakes["anthropic"].received[-1].body["model"] == model
    chat = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    assert chat.chat.completions.create(model=model, messages=MSG).choices[0].message.content
    assert fakes["anthropic"].received[-1].body["model"] == model
    events = usage_events(stack, project_id, 2)
    assert {e.model for e in events} == {f"anthropic/{model}"} and all(e.cost_micro_usd > 0 for e in events)
