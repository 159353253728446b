"""What the app answers while its store or the core cannot be reached: a 503 that says so, never a 500.

Pages get the error page, in the app's style, with Retry-After; a script's JSON call (the
assistant's) and the Stripe webhook get JSON. Nothing here keeps state: the next request tries
the store and the core again, so pages come back by themselves once they answer.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, jsonify, render_template, request, session, url_for
from sqlalchemy import exc as sa_exc

from account.core_client import CoreUnavailable

logger = logging.getLogger(__name__)

RETRY_AFTER = 10  # seconds: an outage that ends sooner is seen by the user's next try anyway


class StoreUnavailable(Exception):
    """The account store did not answer (down, unreachable, or slower than [account].store_timeout)."""


# What the store raises when it cannot answer: a lost or refused connection, a timed-out answer
# (OperationalError), a broken one (InterfaceError), no free pooled connection (TimeoutError).
STORE_ERRORS: tuple[type[Exception], ...] = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                                             StoreUnavailable)

MESSAGES = {
    "store": "OneKey's account service is temporarily unavailable, so nothing was changed. This page works "
             "again by itself once it is back: try again in a minute.",
    "core": "OneKey's routing service is temporarily unavailable, so nothing was changed. This page works again "
            "by itself once it is back: try again in a minute.",
}


def install(app: Flask) -> None:
    """Register the 503 answers. Call before CSRFProtect: a session the store could not load must not
    read as an expired form."""
    @app.before_request
    def session_loaded():
        if getattr(session, "store_unavailable", False) and request.endpoint not in ("static", "healthz", "readyz"):
            raise StoreUnavailable

    def store_down(exc: Exception):
        # The driver's own first line (why: refused, timed out, locked), never SQLAlchemy's text,
        # which quotes the statement and its parameters.
        cause = getattr(exc, "orig", None)
        why = str(cause).strip().splitlines()[0][:200] if cause is not None and str(cause).strip() else ""
        logger.warning("account store unavailable during %s %s: %s %s", request.method, request.endpoint,
                       type(cause or exc).__name__, why)
        return unavailable("store")

    def core_down(_exc: Exception):
        return unavailable("core")

    for kind in STORE_ERRORS:
        app.register_error_handler(kind, store_down)
    app.register_error_handler(CoreUnavailable, core_down)


def unavailable(what: str) -> Response:
    """The 503 answer for `what` ("store" or "core") in the form the request wants."""
    if what == "store":
        skip_session_save()
        if "_login_user" not in g:  # the page's header must not ask the store who is signed in
            g._login_user = current_app.login_manager.anonymous_user()
    message = MESSAGES[what]
    if request.blueprint == "billing_webhook":  # the webhook's own 503: Stripe retries it
        response = jsonify(error="try again later")
    elif _wants_json():
        response = jsonify(answer=None, error=message) if request.blueprint == "assistant" else jsonify(error=message)
    else:
        response = Response(render_template("error.html", title="Temporarily unavailable", message=message,
                                            back=url_for("projects.home")), mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def into_unavailable(response: Response) -> None:
    """Turn a response already made into the store's 503 (its session could not be saved)."""
    page = unavailable("store")
    response.status_code = 503
    response.set_data(page.get_data())
    response.headers["Content-Type"] = page.headers["Content-Type"]
    response.headers["Retry-After"] = page.headers["Retry-After"]
    response.headers.pop("Location", None)


def skip_session_save() -> None:
    """This request's session is not written back: the store is down, and trying again would double the wait."""
    session.store_unavailable = True  # type: ignore[attr-defined]  # see ServerSession


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.is_json
