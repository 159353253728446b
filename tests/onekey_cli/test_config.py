from __future__ import annotations

import pytest

from onekey_cli.config import ConfigError, load

LAYOUT = '''
[core]
listen = "127.0.0.1:50999"
database_url = "sqlite:///x/router.db"

[edge]
listen = "127.0.0.1:8099"

[account]
listen = "127.0.0.1:5099"
database_url = "sqlite:///x/account.db"

[[channels]]
name = "openai-a"
provider = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
priority = 0
weight = 1
'''


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write(tmp_path, text: str):
    path = tmp_path / "onekey.toml"
    path.write_text(text)
    return str(path)


def test_the_design_layout_loads_and_env_supplies_secrets(tmp_path):
    config = load(write(tmp_path, LAYOUT), env={"OPENAI_API_KEY": "sk-real", "ONEKEY_SERVICE_TOKEN": "svc-secret-123"})
    assert config.core.listen == "127.0.0.1:50999"
    assert config.edge.core == "127.0.0.1:50999"  # the edge finds the core through [core].listen
    channel = config.core.channels[0]
    assert (channel.name, channel.provider, channel.priority, channel.weight) == ("openai-a", "openai", 0, 1)
    assert channel.api_key.reveal() == "sk-real"
    assert "sk-real" not in repr(config.core) and "svc-secret-123" not in repr(config.core)


@pytest.mark.parametrize("extra, message", [
    ("[core]\nlisten = \"x:1\"\nspeed = 3\n", "unknown key in [core]: speed"),
    ("[edge]\nlisten = \"x:1\"\ncolour = 1\n", "unknown key in [edge]: colour"),
    ("[account]\nbogus = 1\n", "unknown key in [account]: bogus"),
    ("[extras]\na = 1\n", "unknown section: extras"),
    ("[[channels]]\nname = \"a\"\nprovider = \"openai\"\napi_key = \"k\"\ntimeout = 3\n", "unknown key in channels[0]: timeout"),
    ("[[channels]]\nname = \"a\"\nprovider = \"mistral\"\napi_key = \"k\"\n", "unknown provider 'mistral'"),
    ("[[channels]]\nname = \"a\"\nprovider = \"openai\"\n", "has no key"),
    ("[[channels]]\nname = \"a\"\nprovider = \"openai\"\napi_key_env = \"MISSING_VAR\"\n", "MISSING_VAR is not set"),
    ("[[channels]]\nname = \"a\"\nprovider = \"openai\"\napi_key = \"k\"\n"
     "[[channels]]\nname = \"a\"\nprovider = \"xai\"\napi_key = \"k\"\n", "duplicate channel name 'a'"),
    ("[core]\nmax_body_bytes = \"big\"\n", "max_body_bytes must be int"),
    ("[core\n", "onekey.toml"),
    ("[edge]\nlisten = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.1:8080\"\n", "must differ from [edge].listen"),
    ("[edge]\nmetrics_listen = 9464\n", "[edge].metrics_listen has the wrong type"),
    ("[core]\nlease_renew_interval = 10\nlease_stale_after = 20\n", "lease_stale_after at least three times"),
    ("[edge]\ncore = [\"core-a:1\", \"core-b:1\"]\n", "one DNS name with several records"),
    ("[edge]\nmax_in_flight = 0\n", "[edge].max_in_flight must be at least 1"),
    ("[edge]\nidle_timeout = 0\n", "must be positive"),
    ("[edge]\nbody_timeout = \"slow\"\n", "[edge].body_timeout has the wrong type"),
    ("[edge]\nmax_header_bytes = 10\n", "max_header_bytes must be at least 1024"),
    ("[core]\nmax_in_flight = 0\n", "[core].max_in_flight must be at least 1"),
    ("[core]\nmax_in_flight = 1.5\n", "max_in_flight must be int"),
])
def test_bad_configs_are_refused_by_name(tmp_path, extra, message):
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, extra), env={})
    assert message in str(info.value)


def test_limits_have_defaults_and_can_be_set(tmp_path):
    env = {"OPENAI_API_KEY": "sk-1"}
    config = load(write(tmp_path, LAYOUT), env=env)
    assert (config.edge.max_in_flight, config.edge.idle_timeout, config.edge.body_timeout,
            config.edge.max_header_bytes, config.core.max_in_flight) == (1024, 30.0, 60.0, 8190, 1024)
    config = load(write(tmp_path, LAYOUT.replace(
        'listen = "127.0.0.1:8099"', 'listen = "127.0.0.1:8099"\nmax_in_flight = 7\nidle_timeout = 2\n'
        'body_timeout = 3.5\nmax_header_bytes = 4096').replace(
        'database_url = "sqlite:///x/router.db"', 'database_url = "sqlite:///x/router.db"\nmax_in_flight = 9')),
        env=env)
    assert (config.edge.max_in_flight, config.edge.idle_timeout, config.edge.body_timeout,
            config.edge.max_header_bytes, config.core.max_in_flight) == (7, 2, 3.5, 4096, 9)


def test_edge_metrics_listen_is_off_unless_set(tmp_path):
    env = {"OPENAI_API_KEY": "sk-1"}
    assert load(write(tmp_path, LAYOUT), env=env).edge.metrics_listen == ""
    config = load(write(tmp_path, LAYOUT.replace('listen = "127.0.0.1:8099"',
                                                 'listen = "127.0.0.1:8099"\nmetrics_listen = "127.0.0.1:9465"')), env=env)
    assert config.edge.metrics_listen == "127.0.0.1:9465"


def test_secret_values_never_appear_in_config_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, "[[channels]]\nname = \"a\"\nprovider = \"openai\"\napi_key = 12345678\n"), env={})
    assert "12345678" not in str(info.value)


def test_without_channels_the_usual_environment_variables_make_them(tmp_path):
    config = load(None, env={"OPENAI_API_KEY": "sk-1", "GEMINI_API_KEY": "g-1"})
    by_provider = {c.provider: c for c in config.core.channels}
    assert set(by_provider) == {"openai", "google"}
    assert by_provider["google"].base_url == "https://generativelanguage.googleapis.com/v1beta/openai"
    assert by_provider["openai"].base_url == "https://api.openai.com/v1"


def test_onekey_config_env_names_the_file_and_a_local_token_is_made_once(tmp_path):
    path = write(tmp_path, "[core]\nlisten = \"127.0.0.1:1234\"\n")
    first = load(None, env={"ONEKEY_CONFIG": path})
    second = load(None, env={"ONEKEY_CONFIG": path})
    assert first.core.listen == "127.0.0.1:1234"
    assert first.core.service_token.reveal() == second.core.service_token.reveal() != ""
    assert (tmp_path / ".onekey" / "service-token").stat().st_mode & 0o077 == 0


def test_the_local_service_token_is_private_and_so_is_its_folder(tmp_path):
    (tmp_path / ".onekey").mkdir(mode=0o755)
    (tmp_path / ".onekey").chmod(0o755)  # as an older install left it
    config = load(None, env={})
    token = tmp_path / ".onekey" / "service-token"
    assert token.read_text() == config.core.service_token.reveal()
    assert token.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".onekey").stat().st_mode & 0o777 == 0o700


def test_several_cores_and_lease_times_are_read(tmp_path):
    config = load(write(tmp_path, "[core]\nlease_renew_interval = 1\nlease_stale_after = 4\n"
                                  "[edge]\ncore = [\"10.0.0.1:50051\", \"10.0.0.2:50051\"]\ncore_attempts = 2\n"),
                  env={"ONEKEY_SERVICE_TOKEN": "t"})
    assert (config.core.lease_renew_interval, config.core.lease_stale_after) == (1.0, 4.0)
    assert config.edge.core == "ipv4:10.0.0.1:50051,10.0.0.2:50051" and config.edge.core_attempts == 2
