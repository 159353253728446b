"""The dashboard's Quick start and first-run banner point at a model that answers here, in the
words the API really uses."""
from __future__ import annotations

import re

import openai
import pytest

from account.core_client import ModelInfo, ProjectInfo
from account.dashboard.quick_start import quick_start
from tests.account.conftest import Browser
from tests.account.test_projects import create_key

MSG = [{"role": "user", "content": "Hello!"}]


def quick_model(page: str) -> str:
    return re.search(r'id="quick-model">([^<]+)<', page).group(1)


def test_with_a_provider_channel_the_quick_start_calls_an_available_priced_model(browser, core):
    browser.sign_in_by_email("quick@example.com")
    [project_id] = browser.project_ids()
    page = browser.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    model = quick_model(page)
    assert model == "openai/gpt-5-mini" and 'id="first-run"' not in page
    assert f'model="{model}"' in page and f'"model": "{model}"' in page
    secret, _ = create_key(browser, project_id)
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    assert client.models.retrieve(model).model_extra["status"] == "available"
    assert client.chat.completions.create(model=model, messages=MSG).choices[0].message.content == "Hello!"


def test_a_project_that_cannot_pay_is_pointed_at_the_sandbox_and_told_the_real_error(make_app, smtp, core):
    browser = Browser(make_app(first_project_free_requests=0), smtp)
    browser.sign_in_by_email("broke@example.com")
    [project_id] = browser.project_ids()
    page = browser.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    assert quick_model(page) == "sandbox/echo"
    banner = re.search(r'id="first-run">(.*?)</p>', page, re.S).group(1)
    assert "402 <code>insufficient_quota</code>" in banner and "sandbox/echo" in banner
    secret, _ = create_key(browser, project_id)
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:  # what the banner says, the API answers
        client.chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
    assert (info.value.status_code, info.value.code) == (402, "insufficient_quota")
    assert client.chat.completions.create(model="sandbox/echo", messages=MSG).choices[0].message.content


def _model(model_id: str, status: str = "available", price: int = 1) -> ModelInfo:
    free = model_id.startswith("sandbox/")
    return ModelInfo(id=model_id, provider=model_id.partition("/")[0], name=model_id, input_price=0 if free else price,
                     output_price=0 if free else price, cached_input_price=0, context_window=0, status=status,
                     status_note="", endpoints=("chat/completions",), test_model=free)


def test_the_choice_follows_statuses_and_the_balance():
    funded = ProjectInfo(id="p", name="", balance_micro_usd=1, free_requests=0)
    sandbox = [_model("sandbox/echo"), _model("sandbox/lorem")]
    none_here = quick_start([*sandbox, _model("openai/gpt-5-mini", "no_channel")], funded)
    assert (none_here.model, none_here.no_provider, none_here.free_models) == (
        "sandbox/echo", True, ("sandbox/echo", "sandbox/lorem"))
    degraded = quick_start([*sandbox, _model("anthropic/claude-haiku-4-5", "degraded")], funded)
    assert degraded.model == "sandbox/echo" and not degraded.no_provider  # a channel exists, it is failing
    cheapest = quick_start([*sandbox, _model("google/gemini-3-pro", price=9), _model("xai/grok-4", price=3),
                            _model("openai/gpt-5-nano", "retired", price=1)], funded)
    assert cheapest.model == "xai/grok-4"  # none of the preferred ones: the cheapest available
    preferred = quick_start([*sandbox, _model("openai/gpt-5-nano"), _model("anthropic/claude-haiku-4-5", price=5)], funded)
    assert preferred.model == "anthropic/claude-haiku-4-5"
    assert quick_start([], None).model == "sandbox/echo"
