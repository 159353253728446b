"""The catalog as an install sees it: the operator's file and markup reach the bill to the
micro-dollar, and /v1/models (and the errors) say whether each model can be served here."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request

import openai
import pytest

from onekey.v1 import metering_pb2
from router_core.breaker import BreakerSettings
from router_core.settings import CoreSettings, Timeouts
from tests.e2e.conftest import channel_to
from tests.fakes.providers import Behaviour
from tests.stack import Stack, usage_events

MSG = [{"role": "user", "content": "price me"}]
USAGE = {"prompt_tokens": 1234, "completion_tokens": 567, "total_tokens": 1801,
         "prompt_tokens_details": {"cached_tokens": 200}}
OPERATOR_FILE = """
[markup]
percent = 10
openai = 20

[[models]]                       # a model the shipped catalog lacks
id = "openai/house-model"
provider = "openai"
upstream_id = "house-model-2026-12-01"
display_name = "House model"
input_price = 1_000_000
output_price = 3_000_000
cached_input_price = 100_000
context_window = 64_000
endpoints = ["chat/completions"]

[[models]]                       # a shipped model at the operator's own list price
id = "openai/gpt-4.1"
input_price = 2_100_003
cached_input_price = 0

[[models]]
id = "openai/o3-mini"
hidden = true
"""


def models_of(stack, key: str) -> dict[str, dict]:
    req = urllib.request.Request(stack.base_url + "/models", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return {m["id"]: m for m in json.loads(resp.read())["data"]}


def expected_cost(input_price: int, cached_price: int, output_price: int) -> int:
    """USAGE priced the way a customer's bill must read: each token at its rate, rounded up once."""
    scaled = (1234 - 200) * input_price + 200 * cached_price + 567 * output_price
    return -(-scaled // 1_000_000)


@pytest.fixture
def priced(start_fake, make_stack, tmp_path):
    fake = start_fake("openai")
    path = tmp_path / "catalog.toml"
    path.write_text(textwrap.dedent(OPERATOR_FILE))
    stack = make_stack([channel_to(fake, "openai", "openai-a")], catalog_file=str(path))
    project_id, key = stack.new_key(credit_micro_usd=5_000_000)
    return fake, stack, project_id, key


def test_an_operator_file_adds_overrides_hides_and_marks_up_to_the_micro_dollar(priced):
    fake, stack, project_id, key = priced
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    listed = models_of(stack, key)
    house = listed["openai/house-model"]
    # +20 % for openai: 2_100_003 x 1.2 = 2_520_003.6 -> 2_520_004 (rounded up, never down)
    assert listed["openai/gpt-4.1"]["pricing"]["input_micro_usd"] == 2_520_004
    assert listed["openai/gpt-4.1"]["pricing"]["cached_input_micro_usd"] == 2_520_004  # no cached rate: as input
    assert (house["pricing"]["input_micro_usd"], house["pricing"]["output_micro_usd"]) == (1_200_000, 3_600_000)
    assert house["status"] == "available" and house["context_window"] == 64_000
    assert "openai/o3-mini" not in listed
    assert listed["anthropic/claude-haiku-4-5"]["pricing"]["input_micro_usd"] == 1_100_000  # +10 % global

    fake.queue(Behaviour(usage=USAGE), Behaviour(usage=USAGE))
    client.chat.completions.create(model="house-model", messages=MSG)
    assert fake.received[-1].body["model"] == "house-model-2026-12-01"
    client.chat.completions.create(model="openai/gpt-4.1", messages=MSG)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai/o3-mini", messages=MSG)
    recorded = usage_events(stack, project_id, 3)  # the hidden model's refusal has an event of its own
    refused = [e for e in recorded if e.status == 404]
    assert len(refused) == 1 and refused[0].charged_micro_usd == 0 and refused[0].model == ""
    events = {e.model: e for e in recorded if e.status == 200}
    # gpt-4.1: its output price is the shipped $8 + 20 %; no cached rate, so cached input bills as input
    want = {"openai/house-model": expected_cost(1_200_000, 120_000, 3_600_000),
            "openai/gpt-4.1": expected_cost(2_520_004, 2_520_004, 9_600_000)}
    assert {m: e.cost_micro_usd for m, e in events.items()} == want
    assert {m: e.charged_micro_usd for m, e in events.items()} == want
    balance = stack.metering.GetBalance(metering_pb2.GetBalanceRequest(project_id=project_id), metadata=stack.metadata)
    assert balance.balance_micro_usd == 5_000_000 - sum(want.values())


def test_a_usage_event_keeps_the_price_it_was_charged_at(start_fake, loop_thread, tmp_path):
    fake = start_fake("openai")
    path = tmp_path / "catalog.toml"
    path.write_text('[[models]]\nid = "openai/gpt-4.1"\ninput_price = 1_000_000\noutput_price = 1_000_000\n')
    settings = CoreSettings(database_url=f"sqlite:///{tmp_path}/router.db", channels=(channel_to(fake, "openai", "a"),),
                            usage_flush_interval=0.05, catalog_file=str(path), timeouts=Timeouts(first_byte=5.0))
    first = Stack(settings, loop=loop_thread)
    project_id, key = first.new_key()
    fake.queue(Behaviour(usage=USAGE))
    openai.OpenAI(base_url=first.base_url, api_key=key, max_retries=0).chat.completions.create(
        model="openai/gpt-4.1", messages=MSG)
    usage_events(first, project_id, 1)
    first.stop()

    path.write_text('[markup]\npercent = 100\n')  # a new price list takes effect on restart
    second = Stack(settings, loop=loop_thread)
    try:
        fake.queue(Behaviour(usage=USAGE))
        openai.OpenAI(base_url=second.base_url, api_key=key, max_retries=0).chat.completions.create(
            model="openai/gpt-4.1", messages=MSG)
        old, new = sorted(usage_events(second, project_id, 2), key=lambda e: e.time.ToDatetime())
        assert old.cost_micro_usd == expected_cost(1_000_000, 500_000, 1_000_000)  # shipped cached rate kept
        assert new.cost_micro_usd == expected_cost(4_000_000, 1_000_000, 16_000_000)  # shipped $2 / $0.50 / $8, x2
    finally:
        second.stop()


def test_statuses_with_no_channel_at_all(make_stack):
    stack = make_stack([])
    _, key = stack.new_key()
    listed = models_of(stack, key)
    gpt = listed["openai/gpt-4.1-mini"]
    assert gpt["status"] == "no_channel" and gpt["status_note"] == "This OneKey has no channel for `openai`."
    assert {m["status"] for m in listed.values() if not m["test_model"]} == {"no_channel", "retired"}
    assert listed["anthropic/claude-sonnet-4-5"]["status"] == "retired"  # retired whatever the channels
    echo = listed["sandbox/echo"]
    assert echo["status"] == "available" and echo["test_model"] and "sandbox" in echo["status_note"]
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="openai/gpt-4.1-mini", messages=MSG)
    assert info.value.code == "model_not_available" and gpt["status_note"] in info.value.message
    assert client.models.retrieve("gpt-4.1-mini").model_extra["status"] == "no_channel"
    assert client.chat.completions.create(model="sandbox/echo", messages=MSG).choices[0].message.content


def test_statuses_with_one_provider_and_a_models_subset(start_fake, make_stack):
    fake_openai, fake_xai = start_fake("openai"), start_fake("xai")
    stack = make_stack([channel_to(fake_openai, "openai", "openai-a"),
                        channel_to(fake_xai, "xai", "xai-mini", models=("xai/grok-3-mini",))])
    _, key = stack.new_key()
    listed = models_of(stack, key)
    assert {m["status"] for i, m in listed.items() if i.startswith("openai/")} == {"available"}
    assert listed["openai/gpt-5.2"]["status_note"] is None
    assert {m["status"] for i, m in listed.items()
            if i.startswith(("anthropic/", "google/")) and listed[i]["status"] != "retired"} == {"no_channel"}
    assert {i for i, m in listed.items() if m["status"] == "retired"} == {"anthropic/claude-sonnet-4-5",
                                                                           "anthropic/claude-sonnet-4"}
    assert listed["xai/grok-3-mini"]["status"] == "preview" and "preview" in listed["xai/grok-3-mini"]["status_note"]
    grok4 = listed["xai/grok-4"]
    assert grok4["status"] == "no_channel" and "`models`" in grok4["status_note"]
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="xai/grok-4", messages=MSG)
    assert grok4["status_note"] in info.value.message and len(fake_xai.received) == 0
    assert client.chat.completions.create(model="xai/grok-3-mini", messages=MSG).choices[0].message.content


def test_a_channel_whose_breaker_is_open_makes_its_models_degraded(start_fake, make_stack):
    fake = start_fake("anthropic")
    stack = make_stack([channel_to(fake, "anthropic", "only")],
                       breaker=BreakerSettings(window=30, min_requests=2, failure_rate=0.5, cooldown=60))
    _, key = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    assert models_of(stack, key)["anthropic/claude-haiku-4-5"]["status"] == "available"
    fake.queue(*[Behaviour(kind="status", status=503)] * 2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=MSG)
    haiku = models_of(stack, key)["anthropic/claude-haiku-4-5"]
    assert haiku["status"] == "degraded" and "failing right now" in haiku["status_note"]
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=MSG)
    assert info.value.status_code == 503 and haiku["status_note"] in info.value.message
    assert "is degraded" in info.value.message and len(fake.received) == 2


def test_a_retired_model_is_listed_as_retired_and_refused_saying_so(start_fake, make_stack, tmp_path):
    fake = start_fake("google")
    path = tmp_path / "catalog.toml"
    path.write_text('[[models]]\nid = "google/gemini-2.0-flash"\nstatus = "retired"\n'
                    'status_note = "Retired on 2026-12-01: use google/gemini-2.5-flash."\n')
    stack = make_stack([channel_to(fake, "google", "g")], catalog_file=str(path))
    _, key = stack.new_key()
    flash = models_of(stack, key)["google/gemini-2.0-flash"]
    assert flash["status"] == "retired" and flash["status_note"] == "Retired on 2026-12-01: use google/gemini-2.5-flash."
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gemini-2.0-flash", messages=MSG)
    assert info.value.code == "model_retired" and flash["status_note"] in info.value.message
    assert len(fake.received) == 0


def test_a_broken_catalog_file_stops_start_up_naming_its_line(tmp_path):
    (tmp_path / "models.toml").write_text('[markup]\npercent = 5\n\n[[models]]\nid = "openai/gpt-4.1"\n'
                                          'input_price = 2.10\n')
    (tmp_path / "onekey.toml").write_text('[core]\ncatalog = "models.toml"\n')
    done = subprocess.run([sys.executable, "-m", "onekey_cli", "core", "--config", str(tmp_path / "onekey.toml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{tmp_path / 'models.toml'}, line 6:" in done.stderr and "input_price" in done.stderr
    assert "integer micro-USD" in done.stderr

