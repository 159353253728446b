"""Prepaid credits bought through a payments backend: the billing page, checkout, Stripe's webhooks."""
from account.billing.views import bp, webhook_bp

__all__ = ["bp", "webhook_bp"]
