"""[core] rate_limit_rpm and redis_url: defaults, checks, and the URL kept out of sight."""
from __future__ import annotations

import pytest

from onekey_cli.config import ConfigError, load


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write(tmp_path, text: str) -> str:
    path = tmp_path / "onekey.toml"
    path.write_text(text)
    return str(path)


def test_off_by_default_and_in_memory(tmp_path):
    core = load(write(tmp_path, "[core]\n"), env={}).core
    assert core.rate_limit_rpm == 0 and not core.redis_url


def test_a_default_limit_and_a_shared_store(tmp_path):
    url = "redis://:pa55word@10.0.0.5:6380/2"
    core = load(write(tmp_path, f'[core]\nrate_limit_rpm = 120\nredis_url = "{url}"\nredis_timeout = 0.2\n'),
                env={}).core
    assert core.rate_limit_rpm == 120 and core.redis_url.reveal() == url and core.redis_timeout == 0.2
    assert "pa55word" not in repr(core)


def test_the_redis_url_may_come_from_the_environment(tmp_path):
    core = load(write(tmp_path, '[core]\nredis_url_env = "MY_REDIS"\n'),
                env={"MY_REDIS": "rediss://:pw@cache:6379/0"}).core
    assert core.redis_url.reveal() == "rediss://:pw@cache:6379/0"


@pytest.mark.parametrize("text, message", [
    ("[core]\nrate_limit_rpm = -1\n", "rate_limit_rpm must be 0"),
    ("[core]\nrate_limit_rpm = \"60\"\n", "rate_limit_rpm must be int"),
    ("[core]\nrate_limit_rpm = 1.5\n", "rate_limit_rpm must be int"),
    ("[core]\nredis_url = \"http://cache:6379\"\n", "redis_url must start with redis://"),
    ("[core]\nredis_url_env = \"NOPE\"\n", "NOPE is not set"),
    ("[core]\nredis_url = \"redis://a\"\nredis_url_env = \"X\"\n", "not both"),
    ("[core]\nredis_timeout = 0\n", "redis_timeout must be positive"),
])
def test_bad_settings_are_refused_by_name(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), env={})
    assert message in str(info.value)


def test_a_bad_url_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, '[core]\nredis_url = "http://:hunter2@cache"\n'), env={})
    assert "hunter2" not in str(info.value)
