"""The billing page of a project, checkout, its return pages, and the provider's webhook."""
from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from account.billing.forms import BuyForm
from account.billing.money import parse_usd
from account.billing.payments import InvalidWebhook, Payments, PaymentsUnavailable
from account.billing.service import CheckoutRefused, RetryLater, WebhookHandler, start_checkout
from account.core_client import CoreError, CoreUnavailable, CreditInfo
from account.store.repositories import PurchaseRepository
from account.web import context, db, owned_project

logger = logging.getLogger(__name__)

bp = Blueprint("billing", __name__)
webhook_bp = Blueprint("billing_webhook", __name__)  # CSRF-exempt: the signature proves the sender

PAYMENTS = "onekey_payments"
WEBHOOK_MAX_BYTES = 1024 * 1024


def install(app: Flask, payments: Payments) -> None:
    """Register the billing blueprints with their payments backend; the webhook skips CSRF."""
    app.extensions[PAYMENTS] = payments
    app.register_blueprint(bp)
    app.register_blueprint(webhook_bp)
    app.extensions["csrf"].exempt(webhook_bp)


def payments() -> Payments:
    return current_app.extensions[PAYMENTS]


def _page(project, form: BuyForm | None = None, error: str | None = None, status: int = 200):
    settings = context().settings.billing
    balance, core_error, statement, credits = None, None, [], []
    try:
        balance = context().core.balance(project.id)
        statement = monthly_statement(project.id)
        credits = [(c, credit_label(c)) for c in context().core.credits(project.id)]
    except CoreError as exc:
        core_error = str(exc)
        if isinstance(exc, CoreUnavailable) and status < 400:
            status = 503  # the page is there, but not its balance: a "try later", not a success
    purchases = PurchaseRepository(db()).for_project(project.id)
    return render_template("billing/show.html", project=project, balance=balance, core_error=core_error,
                           purchases=purchases, packs=settings.packs_usd, min_usd=settings.min_usd,
                           max_usd=settings.max_usd, enabled=payments().enabled,
                           methods=payments().payment_methods(), form=form or BuyForm(),
                           error=error, statement=statement, credits=credits), status, {"Content-Security-Policy": _csp()}


def credit_label(entry: CreditInfo) -> str:
    """What a ledger entry was, in the user's words (the core records a short reason)."""
    if entry.reason.startswith("stripe:"):
        return "Card purchase" if entry.amount_micro_usd > 0 else "Refund of a purchase"
    if entry.reason == "operator":
        return "Added by the operator" if entry.amount_micro_usd > 0 else "Taken back by the operator"
    if entry.reason == "initial credit":
        return "Credit the project started with"
    return entry.reason or "Adjustment"


def monthly_statement(project_id: str, months: int = 12) -> list[dict]:
    """Charges per calendar month (UTC), newest first: requests, failed, tokens, charged."""
    now = dt.datetime.now(dt.timezone.utc)
    first = (now.replace(day=1) - dt.timedelta(days=31 * (months - 1))).replace(day=1, hour=0, minute=0, second=0,
                                                                                 microsecond=0)
    rows, _ = context().core.usage(project_id, first, now + dt.timedelta(seconds=1), "day")
    by_month: dict[str, dict] = {}
    for r in rows:
        month = by_month.setdefault(r.group[:7], {"month": r.group[:7], "requests": 0, "errors": 0, "tokens": 0,
                                                  "charged": 0})
        month["requests"] += r.requests
        month["errors"] += r.errors
        month["tokens"] += r.input_tokens + r.output_tokens
        month["charged"] += r.charged_micro_usd
    return sorted(by_month.values(), key=lambda m: m["month"], reverse=True)


def _csp() -> str:
    """The app's policy, but the checkout forms may redirect to the provider's hosted page."""
    from account.app import CSP  # the app module imports this one

    origin = context().settings.billing.stripe_checkout_origin
    return CSP.replace("form-action 'self'", f"form-action 'self' {origin}") if payments().enabled else CSP


@bp.get("/projects/<project_id>/billing")
@login_required
def show(project_id: str):
    return _page(owned_project(project_id))


@bp.post("/projects/<project_id>/billing/checkout")
@login_required
def checkout(project_id: str):
    project = owned_project(project_id)  # another user's project is a 404 before anything else
    form = BuyForm()
    if not form.validate_on_submit():
        return _page(project, form, "Enter an amount in dollars.", 400)
    try:
        cents = parse_usd(form.amount_usd.data)
    except ValueError:
        return _page(project, form, "Enter an amount in dollars, like 25 or 25.50.", 400)
    public = context().settings.public_url

    def urls(purchase_id: str) -> tuple[str, str]:
        # {CHECKOUT_SESSION_ID} is filled in by Stripe on the way back.
        return (public + url_for("billing.success", project_id=project.id) + "?session_id={CHECKOUT_SESSION_ID}",
                public + url_for("billing.cancel", project_id=project.id, purchase=purchase_id))

    try:
        page = start_checkout(db(), payments(), context().settings.billing, project, current_user.id,
                              current_user.email, cents, urls)
    except CheckoutRefused as exc:
        return _page(project, form, str(exc), 400)
    except PaymentsUnavailable as exc:
        return _page(project, form, f"{exc} Nothing was charged; try again in a minute.", 503)
    return redirect(page, code=303)


@bp.get("/projects/<project_id>/billing/success")
@login_required
def success(project_id: str):
    project = owned_project(project_id)
    purchase = PurchaseRepository(db()).by_session(request.args.get("session_id", ""))
    if purchase is not None and purchase.project_id != project.id:
        purchase = None
    return render_template("billing/success.html", project=project, purchase=purchase)


@bp.get("/projects/<project_id>/billing/cancel")
@login_required
def cancel(project_id: str):
    return render_template("billing/cancel.html", project=owned_project(project_id))


@webhook_bp.post("/stripe/webhook")
def stripe_webhook():
    """Stripe's events: 400 unless provably Stripe's; 200 once settled or ignored; 503 to be retried."""
    request.max_content_length = WEBHOOK_MAX_BYTES  # events outgrow the forms' 64 KiB limit
    try:
        event = payments().verify_webhook(request.get_data(cache=False), request.headers.get("Stripe-Signature"))
    except InvalidWebhook as exc:
        logger.warning("stripe webhook refused: %s", exc)
        return jsonify(error="invalid webhook"), 400
    try:
        outcome = WebhookHandler(db(), context().core).handle(event)
    except (RetryLater, CoreError) as exc:
        logger.warning("stripe event %s (%s) not settled yet: %s", event.id, event.type, type(exc).__name__)
        return jsonify(error="try again later"), 503
    logger.info("stripe event %s (%s): %s", event.id, event.type, outcome)
    return jsonify(received=True, outcome=outcome)


@bp.app_template_filter("cents")
def cents(value: int) -> str:
    return f"${value // 100:,}.{value % 100:02d}"


__all__ = ["bp", "install", "webhook_bp"]
