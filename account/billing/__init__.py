"""Prepaid credits bought through a payments backend: the billing page, checkout, Stripe's webhooks."""
from account.billing.payments import payments_from_settings
from account.billing.views import bp, install, webhook_bp

__all__ = ["bp", "install", "payments_from_settings", "webhook_bp"]
