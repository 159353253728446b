"""[[channels]] mistakes are refused at start-up, naming the channel and its line; the
operator sees channel health with `onekey channels`."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from onekey_cli.config import ConfigError, load
from router_core.breaker import BreakerSettings
from router_core.catalog import Catalog
from router_core.channels import check_channel_models
from router_core.settings import ChannelSettings, ConfigError as CoreConfigError, Secret
from tests.stack import SERVICE_TOKEN

GOOD = '[[channels]]\nname = "a"\nprovider = "openai"\napi_key = "sk-a"\n\n'


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def refused(tmp_path, text: str) -> str:
    path = tmp_path / "onekey.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(str(path), env={})
    return str(info.value)


@pytest.mark.parametrize("second, words", [
    ('[[channels]]\nname = "b"\nprovider = "mistral"\napi_key = "k"\n', ["unknown provider 'mistral'", "'b'", "channels[1]"]),
    ('[[channels]]\nname = "b"\nprovider = "anthropic"\n', ["'b'", "has no key"]),
    ('[[channels]]\nname = "a"\nprovider = "xai"\napi_key = "k"\n', ["duplicate channel name 'a'", "channels[1]", "channels[0]"]),
    ('[[channels]]\nname = "b"\nprovider = "google"\napi_key = "k"\nweight = 0\n', ["weight must be at least 1"]),
    ('[[channels]]\nname = "b"\nprovider = "google"\napi_key = "k"\nmodels = ["gpt-4.1"]\n', ["'gpt-4.1'", "google"]),
])
def test_channel_errors_name_the_channel_and_its_line(tmp_path, second, words):
    message = refused(tmp_path, "# providers\n\n" + GOOD + second)
    assert "onekey.toml, line 8:" in message
    for word in words:
        assert word in message


def test_breaker_and_timeout_settings_load_and_are_checked(tmp_path):
    path = tmp_path / "onekey.toml"
    path.write_text('[core]\nfirst_byte_timeout = 900\nbreaker_cooldown = 5\nbreaker_min_requests = 10\n'
                    'metrics_listen = "127.0.0.1:0"\nmax_retry_wait = 1.5\n' + GOOD)
    core = load(str(path), env={}).core
    assert core.timeouts.first_byte == 900 and core.max_retry_wait == 1.5 and core.metrics_listen == "127.0.0.1:0"
    assert core.breaker == BreakerSettings(cooldown=5, min_requests=10)
    assert "breaker_failure_rate" in refused(tmp_path, "[core]\nbreaker_failure_rate = 2\n")
    assert "positive" in refused(tmp_path, "[core]\nidle_timeout = 0\n")


def test_a_channel_model_subset_must_name_its_providers_models():
    catalog = Catalog.load()
    ok = ChannelSettings(name="a", provider="openai", base_url="x", api_key=Secret("k"),
                         models=("openai/gpt-4.1", "gpt-4.1-mini"))
    check_channel_models([ok], catalog)
    wrong = ChannelSettings(name="b", provider="openai", base_url="x", api_key=Secret("k"),
                            models=("anthropic/claude-opus-4-6",))
    with pytest.raises(CoreConfigError) as info:
        check_channel_models([ok, wrong], catalog)
    assert info.value.channel_index == 1 and "'b'" in str(info.value)


def test_a_channel_may_name_a_model_the_price_package_knows_before_its_list_is_read():
    from router_core.prices import PriceBook

    book = PriceBook()
    newer = ChannelSettings(name="a", provider="openai", base_url="x", api_key=Secret("k"),
                            models=("openai/gpt-5.5", "gpt-6-sol"))
    check_channel_models([newer], Catalog.load(), book.knows)
    unknown = ChannelSettings(name="b", provider="openai", base_url="x", api_key=Secret("k"), models=("gpt-99",))
    with pytest.raises(CoreConfigError):
        check_channel_models([unknown], Catalog.load(), book.knows)
    other = ChannelSettings(name="c", provider="openai", base_url="x", api_key=Secret("k"),
                            models=("claude-opus-5-5",))  # the package knows it, but not as an OpenAI model
    with pytest.raises(CoreConfigError):
        check_channel_models([other], Catalog.load(), book.knows)


def test_onekey_channels_shows_health(stack, tmp_path):
    config = tmp_path / "onekey.toml"
    config.write_text(f'[core]\nlisten = "127.0.0.1:{stack.core.port}"\n')
    env = {**os.environ, "ONEKEY_CONFIG": str(config), "ONEKEY_SERVICE_TOKEN": SERVICE_TOKEN}
    run = [sys.executable, "-m", "onekey_cli", "channels"]
    text = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "openai-a" in text and "closed" in text and "ERR%" in text
    listing = json.loads(subprocess.run(run + ["--json"], env=env, cwd=tmp_path, capture_output=True, text=True,
                                        timeout=60, check=True).stdout)
    names = {c["name"]: c for c in listing["channels"]}
    assert names["openai-a"]["state"] == "closed" and "sk-" not in json.dumps(listing)
