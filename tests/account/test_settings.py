"""The account settings loader: typed, secrets by *_env, unknown keys refused."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from account.settings import ACCOUNT_KEYS, ConfigError, Secret, load_account_settings
from onekey_cli import config as cli_config


@dataclass
class FakeCore:
    listen: str = "127.0.0.1:50051"
    service_token: Secret = Secret("core-token")


def test_defaults_come_from_the_core_settings():
    s = load_account_settings({}, FakeCore(listen="10.0.0.5:6000"), {})
    assert s.core == "10.0.0.5:6000"
    assert s.service_token.reveal() == "core-token"
    assert s.secret_key and s.secret_key.reveal() != "core-token"
    assert s.listen == "127.0.0.1:5000" and s.public_url == "http://127.0.0.1:5000"
    assert s.database_url == "sqlite:///.onekey/account.db"
    assert s.first_project_free_requests == 20 and s.magic_link_ttl == 600
    assert not s.cookie_secure and s.smtp is None and s.oauth_providers == ()


def test_layout_keys_are_accepted():
    assert {"listen", "database_url"} <= ACCOUNT_KEYS
    with pytest.raises(ConfigError, match="unknown keys in \\[account\\]: colour, size"):
        load_account_settings({"colour": "red", "size": 1}, FakeCore(), {})


def test_secrets_come_from_the_environment_and_never_print():
    env = {"SMTP_PW": "hunter2", "SVC": "svc-token", "G_SECRET": "g-secret", "KEY": "flask-key"}
    s = load_account_settings({
        "public_url": "https://account.example.com/", "smtp_host": "mail.example.com", "smtp_username": "me",
        "smtp_password_env": "SMTP_PW", "service_token_env": "SVC", "secret_key_env": "KEY",
        "google_client_id": "gid", "google_client_secret_env": "G_SECRET",
    }, FakeCore(), env)
    assert s.smtp.password.reveal() == "hunter2" and s.smtp.port == 587 and s.smtp.starttls
    assert s.service_token.reveal() == "svc-token" and s.secret_key.reveal() == "flask-key"
    assert s.google.client_secret.reveal() == "g-secret"
    assert s.google.metadata_url == "https://accounts.google.com/.well-known/openid-configuration"
    assert s.public_url == "https://account.example.com" and s.cookie_secure
    shown = repr(s)
    for secret in env.values():
        assert secret not in shown


def test_missing_secret_variables_are_named():
    with pytest.raises(ConfigError, match="SMTP_PW is not set"):
        load_account_settings({"smtp_host": "m", "smtp_password_env": "SMTP_PW"}, FakeCore(), {})
    with pytest.raises(ConfigError, match="github_client_id is set but its secret is not"):
        load_account_settings({"github_client_id": "x"}, FakeCore(), {})


def test_github_endpoints_are_configurable():
    s = load_account_settings({"github_client_id": "x", "github_authorize_url": "http://127.0.0.1:9/a",
                               "github_token_url": "http://127.0.0.1:9/t", "github_api_url": "http://127.0.0.1:9"},
                              FakeCore(), {"ONEKEY_GITHUB_CLIENT_SECRET": "s"})
    assert (s.github.authorize_url, s.github.token_url, s.github.api_base_url) == (
        "http://127.0.0.1:9/a", "http://127.0.0.1:9/t", "http://127.0.0.1:9/")


def test_magic_link_limits_load_and_must_be_positive():
    s = load_account_settings({"magic_link_per_email": 8, "magic_link_per_email_ip": 2, "magic_link_per_ip": 9},
                              FakeCore(), {})
    assert (s.magic_link_per_email, s.magic_link_per_email_ip, s.magic_link_per_ip) == (8, 2, 9)
    defaults = load_account_settings({}, FakeCore(), {})
    assert (defaults.magic_link_per_email, defaults.magic_link_per_email_ip, defaults.magic_link_per_ip) == (5, 5, 20)
    with pytest.raises(ConfigError, match="at least 1"):
        load_account_settings({"magic_link_per_email_ip": 0}, FakeCore(), {})


def test_store_and_core_timeouts_load_and_must_be_positive():
    s = load_account_settings({"store_timeout": 3, "core_timeout": 4.5}, FakeCore(), {})
    assert (s.store_timeout, s.core_timeout) == (3.0, 4.5)
    defaults = load_account_settings({}, FakeCore(), {})
    assert (defaults.store_timeout, defaults.core_timeout) == (2.0, 5.0)
    for key in ("store_timeout", "core_timeout"):
        with pytest.raises(ConfigError, match="must be positive"):
            load_account_settings({key: 0}, FakeCore(), {})


def test_types_are_checked():
    with pytest.raises(ConfigError, match="smtp_port must be int"):
        load_account_settings({"smtp_host": "m", "smtp_port": "25"}, FakeCore(), {})
    with pytest.raises(ConfigError, match="public_url must be an http"):
        load_account_settings({"public_url": "account.example.com"}, FakeCore(), {})


def test_no_service_credential_is_an_error():
    with pytest.raises(ConfigError, match="service credential"):
        load_account_settings({}, FakeCore(service_token=Secret("")), {})


def test_the_launcher_accepts_account_keys_and_refuses_others(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[account]\nlisten = "127.0.0.1:5001"\nsmtp_host = "mail"\nmagic_link_per_ip = 5\n')
    config = cli_config.load(str(good), {"ONEKEY_SERVICE_TOKEN": "t"})
    assert config.account_section["smtp_host"] == "mail"
    bad = tmp_path / "bad.toml"
    bad.write_text('[account]\nsmtp_hots = "mail"\n')
    with pytest.raises(cli_config.ConfigError, match="smtp_hots"):
        cli_config.load(str(bad), {"ONEKEY_SERVICE_TOKEN": "t"})
