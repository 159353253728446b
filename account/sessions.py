"""Browser sessions: server-side for a signed-in user, a signed cookie for anyone else.

A signed-in session lives in the account store: the cookie holds a random id, the row its hash
and data. Unlike Flask's default signed-cookie session it can be ended on the server (sign out
deletes its row, so a copied cookie is worth nothing afterwards), its id is replaced at sign-in
(no session fixation), and a row ended elsewhere is never written back by a request that was in
flight.

A visitor who is not signed in writes no row: what their session holds (the CSRF token, a
flash, an OAuth sign-in's state) travels in the same cookie, signed with the app's secret key
(`anon.` + an itsdangerous token, with the session's lifetime), so a loop of cookieless
requests costs the store nothing. It holds nothing worth stealing, and nothing that would need
ending on the server: the user's id, and with it a row, comes only with a sign-in.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from typing import Any

from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import CallbackDict

from account.outage import STORE_ERRORS, into_unavailable
from account.store.models import utcnow
from account.store.repositories import WebSessionRepository

logger = logging.getLogger(__name__)

ANONYMOUS_PREFIX = "anon."        # a cookie value holding an anonymous session (an id never has a dot)
MAX_ANONYMOUS_COOKIE = 3800       # bytes: browsers keep a cookie up to about 4 KiB
USER_KEY = "_user_id"             # flask-login's: a session holding it is a signed-in one


def session_hash(sid: str) -> str:
    """The stored form of a session id (the id itself is only ever in the cookie)."""
    return _hash(sid)


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    """The session dict, plus its id and whether to replace or end it when the response goes."""

    # True when the store could not load it, or the request ended in a store outage: then it is
    # never written back (an empty session saved over a signed-in one would sign the user out).
    store_unavailable = False

    def __init__(self, initial: dict[str, Any] | None = None, sid: str | None = None) -> None:
        def on_update(_self) -> None:
            _self.modified = True

        super().__init__(initial or {}, on_update)
        self.sid = sid
        self.new = sid is None
        self.modified = False
        self.drop_sid: str | None = None

    def regenerate(self) -> None:
        """Give this session a new id: the old one stops working (call at sign-in)."""
        if self.sid is not None:
            self.drop_sid = self.sid
        self.sid = None
        self.modified = True

    def end(self) -> None:
        """Forget everything and delete the server-side record (call at sign-out)."""
        self.clear()
        self.regenerate()


class StoreSessionInterface(SessionInterface):
    """Signed-in sessions in the account store's web_sessions table; anonymous ones in a signed cookie."""

    def __init__(self, sessions: sessionmaker[Session], lifetime: dt.timedelta) -> None:
        self._sessions = sessions
        self._lifetime = lifetime

    def _signer(self, app: Flask) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(app.secret_key or "", salt="onekey.anonymous-session",
                                      serializer=TaggedJSONSerializer(), signer_kwargs={"digest_method": hashlib.sha256})

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return ServerSession()
        if value.startswith(ANONYMOUS_PREFIX):
            try:
                data = self._signer(app).loads(value[len(ANONYMOUS_PREFIX):],
                                               max_age=int(self._lifetime.total_seconds()))
            except BadSignature:  # tampered, made with another key, or too old: a new session
                return ServerSession()
            session = ServerSession(data if isinstance(data, dict) else {})
            session.had_cookie = True
            return session
        try:
            with self._sessions() as db:
                row = WebSessionRepository(db).get(_hash(value), utcnow())
                if row is not None:
                    return ServerSession(dict(row.data), value)
        except STORE_ERRORS as exc:
            # Raised from here, Flask would answer 500: the app's first before_request answers 503.
            logger.warning("session not loaded, account store unavailable: %s", type(exc).__name__)
            unloaded = ServerSession()
            unloaded.store_unavailable = True
            return unloaded
        return ServerSession()

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:  # type: ignore[override]
        if session.accessed:
            response.vary.add("Cookie")
        if not (session.modified or session.drop_sid) or session.store_unavailable:
            return
        now = utcnow()
        expires = now + self._lifetime
        signed_in = bool(session.get(USER_KEY))
        anonymous = None if signed_in or not session else self._anonymous_value(app, session)
        if anonymous == "":
            session.clear()
        if signed_in or session.sid or session.drop_sid:  # an anonymous visitor costs the store nothing
            try:
                self._save_row(session, signed_in, now, expires)
            except STORE_ERRORS as exc:
                # The page was made, but the session it leaves cannot be kept (a sign-in would
                # silently not hold): say so rather than answer as if all went well.
                logger.warning("session not saved, account store unavailable: %s", type(exc).__name__)
                into_unavailable(response)
                return
        if not session:
            if session.sid or session.drop_sid or getattr(session, "had_cookie", False):
                self._forget_cookie(app, response)
            return
        self._set_cookie(app, response, anonymous or session.sid, expires)

    def _save_row(self, session: ServerSession, signed_in: bool, now: dt.datetime, expires: dt.datetime) -> None:
        """Write (or delete) the session's row, and the row of the id it replaces, in one transaction."""
        with self._sessions() as db, db.begin():
            repo = WebSessionRepository(db)
            if session.drop_sid:
                repo.delete(_hash(session.drop_sid))
            if not signed_in:
                # No row for a session without a user: the one it had goes (signed out).
                if session.sid:
                    repo.delete(_hash(session.sid))
            elif session.sid is None:
                session.sid = secrets.token_urlsafe(32)
                repo.purge(now)  # a cheap moment to drop dead sessions
                repo.add(_hash(session.sid), dict(session), session.get(USER_KEY), expires)
            elif not repo.update(_hash(session.sid), dict(session), session.get(USER_KEY), expires):
                # Ended elsewhere while this request ran (sign out everywhere, account
                # deleted): it stays ended, and the browser forgets it.
                logger.info("session ended elsewhere during a request: not written back")
                session.clear()

    def _anonymous_value(self, app: Flask, session: ServerSession) -> str:
        """The signed cookie value of an anonymous session ("" when too large for a cookie: then
        it is not kept at all, rather than given a row; nothing the app stores comes near)."""
        value = ANONYMOUS_PREFIX + self._signer(app).dumps(dict(session))
        if len(value) > MAX_ANONYMOUS_COOKIE:
            logger.warning("anonymous session too large for its cookie, not kept: bytes=%d", len(value))
            return ""
        return value

    def _set_cookie(self, app: Flask, response: Response, value: str, expires: dt.datetime) -> None:
        response.set_cookie(
            self.get_cookie_name(app), value, expires=expires, httponly=True, domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app), secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app))
        response.vary.add("Cookie")

    def _forget_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(self.get_cookie_name(app), domain=self.get_cookie_domain(app),
                               path=self.get_cookie_path(app), secure=self.get_cookie_secure(app), httponly=True,
                               samesite=self.get_cookie_samesite(app))


def end_user_sessions(db: Session, user_id: str) -> None:
    """Delete every session of a user (e.g. sign out everywhere)."""
    WebSessionRepository(db).delete_for_user(user_id)
