"""The account app's factory: create_app(settings, ...) builds a Flask app from its collaborators."""
from __future__ import annotations

import datetime as dt
import logging

import grpc
from flask import Flask, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, login_url
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import Engine, text
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from account import assistant, auth, billing, dashboard, outage, pages, projects, user
from account.auth.oauth import OAuthClients
from account.billing.payments import Payments
from account.core_client import CoreClient, CoreError, CoreUnavailable, open_channel
from account.forms import ConfirmForm
from account.mail import Mailer, mailer_from_settings
from account.pages.views import per_million
from account.sessions import StoreSessionInterface
from account.settings import AccountSettings
from account.migrations import prepare_engine
from account.store.db import make_engine, session_factory
from account.store.repositories import UserRepository
from account.web import AccountContext, SignedInUser, context, db, usd

logger = logging.getLogger(__name__)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def create_app(settings: AccountSettings, *, core_channel: grpc.Channel | None = None, mailer: Mailer | None = None,
               engine: Engine | None = None, payments: Payments | None = None) -> Flask:
    """The account app. Collaborators not given are made from settings."""
    if not settings.secret_key:
        raise ValueError("the account app needs a secret key")
    app = Flask(__name__)
    secure = settings.cookie_secure
    app.config.update(
        SECRET_KEY=settings.secret_key.reveal(),
        SESSION_COOKIE_NAME="__Host-onekey-session" if secure else "onekey-session",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Lax, not Strict: the OAuth callback is a cross-site top-level GET
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=settings.session_lifetime),
        WTF_CSRF_TIME_LIMIT=int(settings.session_lifetime),
        WTF_CSRF_SSL_STRICT=secure,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if settings.proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count,
                                x_host=settings.proxy_count)

    engine = engine or make_engine(settings.database_url, timeout=settings.store_timeout)
    prepare_engine(engine)  # SQLite: upgraded here; PostgreSQL: refused unless at head
    sessions = session_factory(engine)
    app.session_interface = StoreSessionInterface(sessions, dt.timedelta(seconds=settings.session_lifetime))
    channel = core_channel or open_channel(settings.core)
    oauth = OAuthClients(app, settings)
    app.extensions["onekey"] = AccountContext(
        settings=settings, sessions=sessions, core=CoreClient(channel, settings.service_token, settings.core_timeout),
        mailer=mailer or mailer_from_settings(settings), oauth=oauth)
    app.extensions["onekey_engine"] = engine

    outage.install(app)  # first: its before_request runs before CSRFProtect's
    CSRFProtect(app)
    _login_manager(app)
    for blueprint in (auth.bp, projects.bp, dashboard.bp, assistant.bp, pages.bp, user.bp):
        app.register_blueprint(blueprint)
    billing.install(app, payments or billing.payments_from_settings(settings.billing))
    _security_headers(app)  # before the unit of work: after_request runs last-registered first, so
    _unit_of_work(app)      # a 503 the unit of work answers still gets the headers
    _pages(app, engine)
    app.jinja_env.filters["usd"] = usd
    app.jinja_env.filters["per_million"] = per_million
    app.jinja_env.globals["signout_form"] = ConfirmForm
    return app


def _store_state(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except outage.STORE_ERRORS as exc:
        logger.warning("readiness: account store unavailable: %s", type(exc).__name__)
        return "unavailable"
    return "ok"


def _core_state() -> str:
    try:
        context().core.ping()
    except CoreUnavailable:
        return "unavailable"
    except CoreError:
        return "refused"  # it answers, but not to this app's service credential: logged by the client
    return "ok"


def wants_json() -> bool:
    """A script's request (the assistant's), not a page's: it wants an answer it can show."""
    return request.accept_mimetypes.best == "application/json"


def signed_out_json():
    return jsonify(answer=None, error="You are signed out. Sign in again to ask the assistant.",
                   sign_in=url_for("auth.login")), 401


def _login_manager(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = "Sign in to see that page."
    manager.session_protection = "strong"

    @manager.unauthorized_handler
    def unauthorized():
        # flask-login's own handler flashes on every redirect: unfollowed ones piled up dozens of
        # identical notes. One is enough.
        if wants_json():
            return signed_out_json()
        if manager.login_message not in (message for _, message in session.get("_flashes", [])):
            flash(manager.login_message)
        return redirect(login_url(manager.login_view, next_url=request.url))

    @manager.user_loader
    def load(user_id: str) -> SignedInUser | None:
        user = UserRepository(db()).get(user_id)
        return SignedInUser(user.id, user.email) if user else None


def _unit_of_work(app: Flask) -> None:
    """Each request is one transaction: committed if it succeeded, rolled back otherwise."""

    @app.after_request
    def finish(response):
        session = g.pop("db", None)
        if session is None:
            return response
        try:
            if response.status_code >= 400:
                _quietly_rollback(session)
                return response
            try:
                session.commit()
            except outage.STORE_ERRORS as exc:
                # Not committed, so nothing happened: the page must not say otherwise.
                logger.warning("commit failed, account store unavailable: %s", type(exc).__name__)
                _quietly_rollback(session)
                return outage.unavailable("store")
        finally:
            session.close()
        return response

    @app.teardown_request
    def close(_exc):
        session = g.pop("db", None)
        if session is not None:  # an exception skipped after_request
            _quietly_rollback(session)
            session.close()


def _quietly_rollback(session) -> None:
    """Roll back a session whose connection may be gone (the store's outage is already answered)."""
    try:
        session.rollback()
    except outage.STORE_ERRORS as exc:
        logger.info("rollback failed, account store unavailable: %s", type(exc).__name__)


def _security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # same-origin: sign-in links never leak to other sites, while our own HTTPS form posts keep
        # the Referer that Flask-WTF's strict check wants.
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config["SESSION_COOKIE_SECURE"]:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.endpoint != "static":
            headers.setdefault("Cache-Control", "no-store")
        if response.status_code == 503:  # every "try later", the pages' own included
            headers.setdefault("Retry-After", str(outage.RETRY_AFTER))
        return response


def _pages(app: Flask, engine: Engine) -> None:
    @app.get("/healthz")
    def healthz():
        """Liveness: the process answers. It asks nothing of the store or the core, so an outage
        of theirs does not get a healthy process restarted (that is /readyz's question)."""
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz():
        """Readiness: 200 when the store and the core both answer, else 503 naming which does not."""
        checks = {"store": _store_state(engine), "core": _core_state()}
        ready = all(state == "ok" for state in checks.values())
        return jsonify(status="ready" if ready else "unavailable", **checks), 200 if ready else 503

    @app.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError):
        # The endpoint, not the path: a path may carry a sign-in token.
        logger.info("refused %s %s: %s", request.method, request.endpoint, exc.description)
        if wants_json():  # the assistant's script: an answer it can show
            if not current_user.is_authenticated:
                return signed_out_json()
            return jsonify(answer=None, error="This page has expired. Reload it and ask again."), 400
        return render_template("error.html", title="Form refused",
                               message="This form has expired or did not come from this site, so nothing was "
                                       "changed. Go back, reload the page and try again.",
                               back=url_for("projects.home")), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {404: "There is nothing here, or it is not yours.",
                    403: "You may not see this page.", 405: "That is not how this page is used."}
        return render_template("error.html", title=exc.name,
                               message=messages.get(exc.code or 500, exc.description),
                               back=url_for("projects.home")), exc.code or 500
