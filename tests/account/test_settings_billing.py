"""The billing and assistant keys of [account]: Stripe secrets by *_env, limits, the assistant's model."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from account.billing.payments import NoPayments, StripePayments, payments_from_settings
from account.settings import ACCOUNT_KEYS, ConfigError, Secret, load_account_settings


@dataclass
class FakeCore:
    listen: str = "127.0.0.1:50051"
    service_token: Secret = Secret("core-token")


def load(section: dict, env: dict | None = None):
    return load_account_settings(section, FakeCore(), env or {})


def test_defaults_sell_nothing_and_ask_haiku():
    s = load({})
    assert s.billing.backend == "none" and isinstance(payments_from_settings(s.billing), NoPayments)
    assert s.billing.stripe_api_base == "https://api.stripe.com" and s.billing.webhook_tolerance == 300
    assert (s.billing.min_usd, s.billing.max_usd, s.billing.packs_usd) == (5, 1000, (10, 25, 100))
    assert s.assistant.model == "anthropic/claude-haiku-4-5" and s.assistant.enabled
    assert s.assistant.base_url == "" and not s.assistant.api_key


def test_stripe_secrets_come_from_the_environment_and_never_print():
    env = {"SK": "sk_test_secret_value", "WH": "whsec_secret_value", "AK": "onekey-assistant-secret"}
    s = load({"stripe_secret_key_env": "SK", "stripe_webhook_secret_env": "WH", "stripe_api_base": "http://127.0.0.1:9/",
              "stripe_crypto": True, "credit_packs_usd": [5, 50], "checkout_min_usd": 5, "checkout_max_usd": 500,
              "assistant_api_key_env": "AK", "assistant_model": "anthropic/claude-sonnet-4-5",
              "assistant_base_url": "http://127.0.0.1:8080/v1", "assistant_per_minute": 3}, env)
    assert s.billing.backend == "stripe" and s.billing.stripe_secret_key.reveal() == "sk_test_secret_value"
    assert s.billing.stripe_api_base == "http://127.0.0.1:9" and s.billing.packs_usd == (5, 50)
    assert s.assistant.api_key.reveal() == "onekey-assistant-secret" and s.assistant.per_minute == 3
    shown = repr(s)
    for secret in env.values():
        assert secret not in shown
    payments = payments_from_settings(s.billing)
    assert isinstance(payments, StripePayments) and payments.payment_methods() == ["card", "crypto"]
    assert "sk_test_secret_value" not in repr(vars(payments))


def test_the_usual_stripe_variables_are_enough():
    s = load({}, {"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"})
    assert s.billing.backend == "stripe" and s.billing.stripe_webhook_secret.reveal() == "whsec_x"


@pytest.mark.parametrize("section, env, message", [
    ({"payments": "paypal"}, {}, "payments must be"),
    ({"payments": "stripe"}, {}, "secrets are not set"),
    ({}, {"STRIPE_SECRET_KEY": "sk_test_x"}, "secrets are not set"),
    ({"stripe_secret_key_env": "NOPE"}, {}, "NOPE is not set"),
    ({"checkout_min_usd": 50, "checkout_max_usd": 10}, {}, "checkout_min_usd"),
    ({"credit_packs_usd": [1]}, {}, "credit_packs_usd"),
    ({"credit_packs_usd": [10.5]}, {}, "credit_packs_usd"),
    ({"stripe_api_base": "ftp://x"}, {}, "stripe_api_base must be an http"),
    ({"assistant_per_minute": 0}, {}, "assistant_per_minute"),
    ({"stripe_crypto": "yes"}, {}, "stripe_crypto must be bool"),
])
def test_bad_billing_settings_are_refused_by_name(section, env, message):
    with pytest.raises(ConfigError, match=message):
        load(section, env)


def test_the_new_keys_are_known():
    assert {"payments", "stripe_secret_key_env", "stripe_webhook_secret_env", "stripe_api_base", "stripe_crypto",
            "credit_packs_usd", "checkout_min_usd", "checkout_max_usd", "assistant_model", "assistant_api_key_env",
            "assistant_base_url", "assistant_per_minute", "stripe_checkout_origin"} <= ACCOUNT_KEYS
