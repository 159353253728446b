"""`onekey models` lists the catalog as this install sees it; `onekey models check` asks each
channel's provider (the fakes serve their model lists in each provider's dialect)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from router_core.catalog import Catalog
from tests.fakes.providers import FakeAnthropic, FakeGemini, FakeOpenAI, FakeXAI
from tests.stack import SERVICE_TOKEN


def onekey(tmp_path, config: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "onekey.toml").write_text(config)
    env = {**os.environ, "ONEKEY_CONFIG": str(tmp_path / "onekey.toml"), "ONEKEY_SERVICE_TOKEN": SERVICE_TOKEN}
    return subprocess.run([sys.executable, "-m", "onekey_cli", *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


def test_onekey_models_lists_prices_status_and_channels(stack, tmp_path):
    config = f'[core]\nlisten = "127.0.0.1:{stack.core.port}"\n'
    text = onekey(tmp_path, config, "models").stdout
    row = next(line for line in text.splitlines() if line.startswith("openai/gpt-4.1 "))
    assert "$2.00" in row and "$8.00" in row and "available" in row and "openai-a" in row
    assert "no_channel" in next(line for line in text.splitlines() if line.startswith("anthropic/claude-opus-4-6"))
    listing = json.loads(onekey(tmp_path, config, "models", "--json").stdout)["models"]
    by_id = {m["id"]: m for m in listing}
    assert by_id["openai/gpt-4.1"]["channels"] == ["openai-a"] and by_id["openai/gpt-4.1"]["status"] == "available"
    assert by_id["google/gemini-2.5-pro"]["status"] == "no_channel" and by_id["google/gemini-2.5-pro"]["status_note"]
    assert by_id["sandbox/echo"]["test_model"] is True
    # The shipped catalog, and the models the channel lists that the package prices (gpt-5.5, …)
    assert len(listing) == len(Catalog.load().all()) + 2
    assert by_id["openai/gpt-5.5"]["status"] == "available"
    assert by_id["openai/gpt-5.5"]["price_source"].startswith("genai-prices ")
    assert "genai-prices" in row


@pytest.fixture
def fakes(loop_thread):
    started = {"openai": FakeOpenAI(), "anthropic": FakeAnthropic(), "google": FakeGemini(), "xai": FakeXAI()}
    for fake in started.values():
        loop_thread.run(fake.start())
    yield started
    for fake in started.values():
        loop_thread.run(fake.stop())


def channels_toml(fakes, **extra: str) -> str:
    return "".join(f'[[channels]]\nname = "{p}-a"\nprovider = "{p}"\nbase_url = "{f.url}"\napi_key = "{f.api_key}"\n'
                   f'{extra.get(p, "")}\n' for p, f in fakes.items())


def test_models_check_reports_models_gone_from_a_provider_and_models_the_catalog_lacks(fakes, tmp_path):
    catalog = Catalog.load()
    everything = {p: [m.upstream_id for m in catalog.all() if m.provider == p] for p in fakes}
    fakes["openai"].models = [m for m in everything["openai"] if m != "gpt-5.2"] + ["gpt-9-experimental",
                                                                                   "gpt-4.1-2025-04-14"]
    # Anthropic lists dated ids and pages its list: a few to a page here.
    fakes["anthropic"].models = [m if m[-8:].isdigit() or m.endswith("-6") else f"{m.removesuffix('-latest')}-20250101"
                                 for m in everything["anthropic"]] + ["claude-future-5"]
    fakes["anthropic"].page_size = 2
    fakes["google"].models = everything["google"]
    fakes["xai"].models = ["grok-4"]  # the channel serves only a subset: the rest is not expected
    config = "[core]\nsandbox = false\n" + channels_toml(fakes, xai='models = ["xai/grok-4"]\n')

    done = onekey(tmp_path, config, "models", "check")
    assert done.returncode == 1, done.stdout + done.stderr
    report = done.stdout
    assert "no longer listed by the provider:  openai/gpt-5.2" in report
    assert "unpriced:                          gpt-9-experimental  (not served: no known price)" in report
    assert "gpt-4.1-2025-04-14" not in report, "a dated snapshot of a catalog model is that model"
    assert "unpriced:                          claude-future-5" in report
    assert "anthropic-a (anthropic): " in report and "no longer listed by the provider:  anthropic/" not in report
    assert "google-a (google): 6 models listed, matches the catalog" in report
    assert "xai-a (xai): 1 models listed, matches the catalog" in report
    assert fakes["anthropic"].list_requests[-1].headers["anthropic-version"] == "2023-06-01"
    assert len([r for r in fakes["anthropic"].list_requests if r.path == "/v1/models"]) > 1, "every page was read"
    assert fakes["openai"].api_key not in report

    verdict = json.loads(onekey(tmp_path, config, "models", "check", "--json").stdout)
    by_channel = {c["channel"]: c for c in verdict["channels"]}
    assert by_channel["openai-a"]["missing"] == ["openai/gpt-5.2"]
    assert by_channel["openai-a"]["unknown"] == by_channel["openai-a"]["unpriced"] == ["gpt-9-experimental"]
    assert by_channel["anthropic-a"]["unknown"] == ["claude-future-5"] and not by_channel["anthropic-a"]["missing"]


def test_models_check_says_which_channel_could_not_be_asked(fakes, tmp_path):
    config = channels_toml({"openai": fakes["openai"]}).replace(fakes["openai"].api_key, "sk-wrong-key-0123456789")
    done = onekey(tmp_path, config, "models", "check")
    assert done.returncode == 1
    assert "openai-a (openai): could not list models: HTTP 401" in done.stdout
    assert "sk-wrong-key-0123456789" not in done.stdout
