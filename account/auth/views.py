"""Sign-in pages. Every way in ends in sign_in(): a new session id, then the user."""
from __future__ import annotations

import logging
import math

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from account.auth.oauth import LABELS, ProfileError, profile_from
from account.auth.service import (
    LinkLimits, RateLimited, SignInRefused, end_other_links, issue_magic_link, normalize_email, sweep_sign_in_mail,
    token_hash, user_for_email, user_for_profile,
)
from account.forms import ConfirmForm, EmailForm
from account.mail import MailError, build_message
from account.projects.service import ensure_first_project
from account.store.models import User, utcnow
from account.store.repositories import LoginTokenRepository
from account.web import SignedInUser, context, db

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)


def _providers() -> list[tuple[str, str]]:
    return [(p.name, LABELS.get(p.name, p.name)) for p in context().settings.oauth_providers]


def _login_page(form: EmailForm) -> str:
    return render_template("auth/login.html", form=form, providers=_providers(),
                           free_requests=context().settings.first_project_free_requests)


def refused(title: str, message: str, status: int = 400):
    return render_template("error.html", title=title, message=message, back=url_for("auth.login")), status


def _link_spent():
    """A used or expired sign-in link: offer a new one rather than a way back."""
    return render_template("error.html", title="Link expired or used",
                           message="This sign-in link has expired or was already used. Each link works once, "
                                   "for a short time.",
                           action=(url_for("auth.login"), "Send me a new sign-in link")), 400


def _link_spent_or_home():
    """A spent link opened by someone already signed in: nothing to ask for, on to their page."""
    if current_user.is_authenticated:
        flash("That sign-in link was already used; you are signed in.")
        return redirect(url_for("projects.home"))
    return _link_spent()


@bp.get("/login")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("projects.home"))
    # Every way in needs the store: while it is down, say so before anyone types an address.
    db().execute(select(1))
    return _login_page(EmailForm())


@bp.post("/login/email")
def email_link():
    form = EmailForm()
    if not form.validate_on_submit():
        return _login_page(form), 400
    settings = context().settings
    email = normalize_email(form.email.data)
    limits = LinkLimits(ttl=settings.magic_link_ttl, window=settings.magic_link_window,
                        per_email=settings.magic_link_per_email, per_email_ip=settings.magic_link_per_email_ip,
                        per_ip=settings.magic_link_per_ip)
    try:
        token = issue_magic_link(db(), email, request.remote_addr or "", limits)
    except RateLimited as exc:
        minutes = max(1, math.ceil(exc.retry_after / 60))
        page, status = refused("Too many sign-in links",
                               f"Too many sign-in links were asked for from here. Try again in {minutes} "
                               f"minute{'s' if minutes != 1 else ''}; a link already sent still works until "
                               "it expires.", 429)
        return page, status, {"Retry-After": str(math.ceil(exc.retry_after))}
    db().commit()  # the link must be usable before the mail that carries it leaves
    minutes = int(settings.magic_link_ttl // 60)
    if token is None:  # the address's mail cap: a link sent earlier still works; same page
        return render_template("auth/check_email.html", minutes=minutes, email=email)
    link = settings.public_url + url_for("auth.magic_link", token=token)
    text = (f"Sign in to OneKey by opening this link:\n\n{link}\n\nIt works once, for {minutes} minutes. "
            "If you did not ask to sign in, ignore this mail.\n")
    try:
        context().mailer.send(build_message(settings.mail_from, email, "Your OneKey sign-in link", text),
                              ref=token_hash(token))
    except MailError:
        # The link never left: end it, so the mail cap does not count on it as one the owner has.
        LoginTokenRepository(db()).end(token_hash(token), utcnow())
        db().commit()
        return refused("Mail not sent", "We could not send the sign-in mail just now. Try again in a "
                       "minute.", 503)
    return render_template("auth/check_email.html", minutes=minutes, email=email)


@bp.get("/login/email/<token>")
def magic_link(token: str):
    """Shows a confirm button only: mail scanners that open links must not sign anyone in."""
    row = LoginTokenRepository(db()).usable(token_hash(token), utcnow())
    if row is None:
        return _link_spent_or_home()
    return render_template("auth/confirm.html", form=ConfirmForm(), email=row.email)


@bp.post("/login/email/<token>")
def magic_link_confirm(token: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    email = LoginTokenRepository(db()).consume(token_hash(token), utcnow())
    if email is None:
        return _link_spent_or_home()
    user, _ = user_for_email(db(), email)
    return sign_in(user)


@bp.get("/login/<provider>")
def oauth_start(provider: str):
    client = context().oauth.create_client(provider)
    if client is None:
        abort(404)
    import requests  # loaded with Authlib by create_client: see account/auth/oauth.py

    redirect_uri = context().settings.public_url + url_for("auth.oauth_callback", provider=provider)
    try:
        return client.authorize_redirect(redirect_uri)
    except requests.RequestException as exc:
        logger.warning("%s discovery failed: %s", provider, type(exc).__name__)
        return refused("Sign-in unavailable", f"{LABELS.get(provider, provider)} cannot be reached right now.", 502)


@bp.get("/login/<provider>/callback")
def oauth_callback(provider: str):
    client = context().oauth.create_client(provider)
    if client is None:
        abort(404)
    import requests  # loaded with Authlib by create_client: see account/auth/oauth.py
    from authlib.integrations.base_client import OAuthError
    from joserfc.errors import JoseError

    try:
        token = client.authorize_access_token()
        profile = profile_from(provider, client, token)
    except (OAuthError, JoseError, ProfileError, ValueError, KeyError) as exc:
        logger.warning("%s callback refused: %s", provider, type(exc).__name__)
        return refused("Sign-in failed", "This sign-in response was not one we asked for, or it was already "
                       "used. Start again from the sign-in page.")
    except requests.RequestException as exc:
        logger.warning("%s token or profile request failed: %s", provider, type(exc).__name__)
        return refused("Sign-in unavailable", f"{LABELS.get(provider, provider)} cannot be reached right now.", 502)
    try:
        user, _ = user_for_profile(db(), profile)
    except SignInRefused as exc:
        return refused("Sign-in refused", str(exc), 403)
    return sign_in(user)


@bp.post("/logout")
def logout():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    logout_user()
    session.end()  # deletes the server-side record: the old cookie is worthless from now on
    return redirect(url_for("auth.login"))


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device_of(user_agent: str) -> str:
    """'Firefox on Windows' from a User-Agent header: enough to tell one's sessions apart."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), "")
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "an unknown browser"


def sign_in(user: User):
    """Start a fresh session for the user (new id: no fixation) and see them in."""
    session.clear()
    session.regenerate()
    end_other_links(db(), user.email)  # whichever way they came in, older links die now
    sweep_sign_in_mail(db(), context().mailer)
    login_user(SignedInUser(user.id, user.email))
    session["device"] = device_of(request.user_agent.string)  # so Settings can tell sessions apart
    ensure_first_project(db(), context(), user)  # refreshes the user: set what follows after it
    user.last_login_at = utcnow()
    logger.info("user %s signed in", user.id)
    return redirect(url_for("projects.home"))
