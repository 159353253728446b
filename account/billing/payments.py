"""The payments backend behind one small interface, chosen from settings (Stripe, or none).

Views and the webhook talk to `Payments`; only StripePayments knows Stripe, through the official
`stripe` package, with its API base taken from settings so tests reach a local fake. The package
(about 13 MiB, with the HTTP clients it brings) is imported by the first call that needs Stripe, not
by an idle app.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from account.settings import BillingSettings

logger = logging.getLogger(__name__)


class PaymentsUnavailable(Exception):
    """The payments provider is not configured, unreachable or refused; the message is safe to show."""


class InvalidWebhook(Exception):
    """A webhook that is not provably the provider's: bad or missing signature, stale, malformed."""


@dataclass(frozen=True)
class CheckoutRequest:
    purchase_id: str
    project_id: str
    user_id: str
    amount_cents: int
    currency: str
    product_name: str
    success_url: str
    cancel_url: str
    customer_email: str = ""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    object: dict[str, Any] = field(default_factory=dict)


class Payments(Protocol):
    enabled: bool

    def payment_methods(self) -> list[str]:
        """The provider's payment method types offered at checkout."""

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """A hosted checkout for the request; raises PaymentsUnavailable."""

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        """The event, once its signature and timestamp are proven; raises InvalidWebhook."""


class NoPayments:
    """No payments backend configured: the billing page says so and nothing is sold."""

    enabled = False

    def payment_methods(self) -> list[str]:
        return []

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        raise PaymentsUnavailable("Buying credits is not set up on this server.")

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        raise InvalidWebhook("no payments backend")


class StripePayments:
    """Stripe Checkout (hosted page) and Stripe's signed webhooks."""

    enabled = True

    def __init__(self, settings: BillingSettings, *, max_network_retries: int = 2) -> None:
        self._settings = settings
        self._max_network_retries = max_network_retries
        self._client = None
        self._lock = threading.Lock()  # waitress serves requests from several threads

    def _stripe(self):
        """The stripe module and this backend's client, made on first use."""
        import stripe

        with self._lock:
            if self._client is None:
                self._client = stripe.StripeClient(self._settings.stripe_secret_key.reveal(),
                                                   base_addresses={"api": self._settings.stripe_api_base},
                                                   max_network_retries=self._max_network_retries)
            return stripe, self._client

    def payment_methods(self) -> list[str]:
        # `card` brings Apple Pay and Google Pay with it: Checkout shows them on devices that support
        # them. `crypto` is Stripe's stablecoin method (USDC and the like, settled in USD).
        return ["card", "crypto"] if self._settings.stripe_crypto else ["card"]

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = {"onekey_purchase_id": request.purchase_id, "onekey_project_id": request.project_id,
                    "onekey_user_id": request.user_id}
        params: dict[str, Any] = {
            "mode": "payment",
            "payment_method_types": self.payment_methods(),
            "line_items": [{"quantity": 1, "price_data": {
                "currency": request.currency, "unit_amount": request.amount_cents,
                "product_data": {"name": request.product_name}}}],
            "client_reference_id": request.project_id,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        if request.customer_email:
            params["customer_email"] = request.customer_email
        stripe, client = self._stripe()
        try:
            # The purchase id as Stripe's idempotency key: a retried request makes no second session.
            session = client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": f"onekey-checkout-{request.purchase_id}"})
        except stripe.StripeError as exc:
            logger.warning("stripe checkout for purchase %s failed: %s (HTTP %s)", request.purchase_id,
                           type(exc).__name__, exc.http_status)
            raise PaymentsUnavailable("The payment service is not reachable right now.") from None
        if not session.url:
            raise PaymentsUnavailable("The payment service gave no checkout page.")
        return CheckoutSession(id=session.id, url=session.url)

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        stripe, client = self._stripe()
        try:
            # Verifies the HMAC of `t.payload` against every v1 signature, and the age of t, before
            # anything of the payload is parsed.
            event = client.construct_event(payload, signature, self._settings.stripe_webhook_secret.reveal(),
                                                 tolerance=self._settings.webhook_tolerance)
            obj = event.data.object.to_dict()
            event_id, event_type = event.id, event.type
        except stripe.SignatureVerificationError as exc:
            raise InvalidWebhook(f"signature refused: {exc.user_message or 'mismatch'}") from None
        except (ValueError, TypeError, KeyError, AttributeError, stripe.StripeError) as exc:  # signed, not an event
            raise InvalidWebhook(f"malformed event: {type(exc).__name__}") from None
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            raise InvalidWebhook("malformed event: no id or type")
        return WebhookEvent(id=event_id, type=event_type, object=obj)


def payments_from_settings(settings: BillingSettings) -> Payments:
    """The backend the settings choose."""
    backends = {"stripe": StripePayments, "none": lambda _s: NoPayments()}
    return backends[settings.backend](settings)
