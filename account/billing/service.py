"""Buying credits: start a checkout for a user's project, and settle what the provider's webhooks say.

Credits land through the core's AddCredit, whose idempotency key makes a replayed webhook change
nothing: a Checkout Session is credited once under `stripe-checkout:<session id>` (so both
`checkout.session.completed` and `..._async_payment_succeeded` of one session credit once), and a
refund is debited once per cumulative refunded amount of its charge.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from account.billing.money import cents_to_micro
from account.billing.payments import CheckoutRequest, Payments, WebhookEvent
from account.core_client import CoreClient
from account.settings import BillingSettings
from account.store.models import Project, Purchase, utcnow
from account.store.repositories import ProjectRepository, PurchaseRepository

logger = logging.getLogger(__name__)

CURRENCY = "usd"


class CheckoutRefused(ValueError):
    """An amount outside the limits; the message is safe to show."""


class RetryLater(Exception):
    """The event cannot be settled yet (e.g. a refund seen before its payment): the provider must retry."""


def check_amount(settings: BillingSettings, cents: int) -> None:
    """Refuse, before the provider is called, an amount outside [min_usd, max_usd]."""
    if cents < settings.min_usd * 100:
        raise CheckoutRefused(f"The smallest purchase is ${settings.min_usd}.")
    if cents > settings.max_usd * 100:
        raise CheckoutRefused(f"The largest purchase is ${settings.max_usd:,}.")


def start_checkout(db: Session, payments: Payments, settings: BillingSettings, project: Project, user_id: str,
                   email: str, cents: int, urls: Callable[[str], tuple[str, str]]) -> str:
    """Record a pending purchase and open the provider's checkout; the page to send the user to.

    `urls(purchase_id)` gives the success and cancel URLs. The project must already be known to be
    the user's. Raises CheckoutRefused or PaymentsUnavailable; then the caller rolls back.
    """
    check_amount(settings, cents)
    purchase = PurchaseRepository(db).add(project.id, user_id, cents, CURRENCY)
    success_url, cancel_url = urls(purchase.id)
    session = payments.create_checkout(CheckoutRequest(
        purchase_id=purchase.id, project_id=project.id, user_id=user_id, amount_cents=cents, currency=CURRENCY,
        product_name=f"OneKey credit ${cents // 100:,}.{cents % 100:02d} for {project.name}",
        success_url=success_url, cancel_url=cancel_url, customer_email=email))
    purchase.session_id = session.id
    logger.info("user %s started checkout %s for project %s (%d cents)", user_id, purchase.id, project.id, cents)
    return session.url


class WebhookHandler:
    """Settles one verified event; returns what was done ('credited', 'duplicate', 'ignored', …)."""

    def __init__(self, db: Session, core: CoreClient) -> None:
        self._db = db
        self._core = core
        self._purchases = PurchaseRepository(db)

    def handle(self, event: WebhookEvent) -> str:
        handlers: dict[str, Callable[[WebhookEvent], str]] = {
            "checkout.session.completed": self._completed,
            "checkout.session.async_payment_succeeded": self._async_succeeded,
            "checkout.session.async_payment_failed": self._async_failed,
            "checkout.session.expired": self._expired,
            "charge.refunded": self._refunded,
        }
        handler = handlers.get(event.type)
        return handler(event) if handler else "ignored"

    # -- checkout sessions -------------------------------------------------------------------

    def _purchase_of(self, session: dict[str, Any]) -> Purchase | None:
        """The purchase a session pays for: by session id, else by the metadata we gave it."""
        session_id = session.get("id")
        if not isinstance(session_id, str):
            return None
        purchase = self._purchases.by_session(session_id, lock=True)
        if purchase is not None:
            return purchase
        metadata = session.get("metadata") or {}
        purchase_id = metadata.get("onekey_purchase_id")
        purchase = self._purchases.get(purchase_id, lock=True) if isinstance(purchase_id, str) else None
        if purchase is not None and purchase.session_id in (None, session_id):
            purchase.session_id = session_id
            return purchase
        return None

    def _completed(self, event: WebhookEvent) -> str:
        session = event.object
        purchase = self._purchase_of(session)
        if purchase is None:
            logger.warning("stripe event %s: checkout session of no known purchase, ignored", event.id)
            return "ignored"
        if session.get("payment_status") == "paid":
            return self._credit(purchase, session)
        if purchase.status == "pending":  # a delayed method (e.g. crypto): the async events settle it
            purchase.status, purchase.updated_at = "processing", utcnow()
        return "awaiting payment"

    def _async_succeeded(self, event: WebhookEvent) -> str:
        purchase = self._purchase_of(event.object)
        if purchase is None:
            logger.warning("stripe event %s: async payment of no known purchase, ignored", event.id)
            return "ignored"
        return self._credit(purchase, event.object)

    def _async_failed(self, event: WebhookEvent) -> str:
        purchase = self._purchase_of(event.object)
        if purchase is None:
            return "ignored"
        if purchase.status in ("pending", "processing"):
            purchase.status, purchase.updated_at = "failed", utcnow()
        logger.info("purchase %s: payment failed, nothing credited", purchase.id)
        return "failed"

    def _expired(self, event: WebhookEvent) -> str:
        purchase = self._purchase_of(event.object)
        if purchase is not None and purchase.status == "pending":
            purchase.status, purchase.updated_at = "expired", utcnow()
        return "expired" if purchase is not None else "ignored"

    def _credit(self, purchase: Purchase, session: dict[str, Any]) -> str:
        session_id = session["id"]
        amount = session.get("amount_total")
        if session.get("currency") != CURRENCY or not isinstance(amount, int) or isinstance(amount, bool) \
                or amount <= 0:
            logger.error("purchase %s: session %s paid an unexpected amount or currency; not credited",
                         purchase.id, session_id)
            return "ignored"
        if amount != purchase.amount_cents:  # Stripe collected this much: that is what we credit
            logger.warning("purchase %s: paid %d cents, %d expected", purchase.id, amount, purchase.amount_cents)
            purchase.amount_cents = amount
        if ProjectRepository(self._db).get_owned(purchase.project_id, purchase.user_id) is None:
            logger.error("purchase %s: its project is no longer the buyer's; not credited", purchase.id)
            return "ignored"
        _, applied = self._core.add_credit(purchase.project_id, cents_to_micro(amount),
                                           idempotency_key=f"stripe-checkout:{session_id}",
                                           reason=f"stripe:{session_id}")
        if isinstance(session.get("payment_intent"), str):
            purchase.payment_intent = session["payment_intent"]
        if purchase.status in ("pending", "processing", "failed", "expired"):
            purchase.status = "paid"
        purchase.updated_at = utcnow()
        logger.info("purchase %s: %s %d cents to project %s", purchase.id,
                    "credited" if applied else "already credited", amount, purchase.project_id)
        return "credited" if applied else "duplicate"

    # -- refunds ---------------------------------------------------------------------------

    def _refunded(self, event: WebhookEvent) -> str:
        charge = event.object
        charge_id, intent, refunded = charge.get("id"), charge.get("payment_intent"), charge.get("amount_refunded")
        if not isinstance(charge_id, str) or not isinstance(refunded, int) or isinstance(refunded, bool) \
                or refunded < 0:
            return "ignored"
        purchase = self._purchases.by_payment_intent(intent, lock=True) if isinstance(intent, str) else None
        if purchase is None:
            metadata = charge.get("metadata") or {}
            purchase_id = metadata.get("onekey_purchase_id")
            if isinstance(purchase_id, str) and self._purchases.get(purchase_id) is not None:
                raise RetryLater("refund of a purchase not credited yet")  # its payment event comes first
            logger.info("stripe event %s: refund of a charge that is no purchase of ours, ignored", event.id)
            return "ignored"
        if charge.get("currency") != purchase.currency:
            return "ignored"
        refunded = min(refunded, purchase.amount_cents)
        delta = refunded - purchase.refunded_cents
        if delta <= 0:  # a replay, or an older event arriving after a newer one
            return "duplicate"
        # Keyed on the charge's cumulative refund: each refund level debits once, however often told.
        _, applied = self._core.add_credit(purchase.project_id, -cents_to_micro(delta),
                                           idempotency_key=f"stripe-refund:{charge_id}:{refunded}",
                                           reason=f"stripe-refund:{charge_id}")
        purchase.refunded_cents = refunded
        purchase.status = "refunded" if refunded >= purchase.amount_cents else "partially_refunded"
        purchase.updated_at = utcnow()
        logger.info("purchase %s: refund of %d cents %s", purchase.id, delta, "debited" if applied else "already debited")
        return "debited" if applied else "duplicate"
