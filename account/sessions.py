"""Server-side browser sessions: the cookie holds a random id, the account store holds the data.

Unlike Flask's default signed-cookie session, a session here can be ended on the server (sign
out deletes its row, so a copied cookie is worth nothing afterwards) and its id is replaced at
sign-in (no session fixation).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import CallbackDict

from account.store.models import utcnow
from account.store.repositories import WebSessionRepository

logger = logging.getLogger(__name__)


def session_hash(sid: str) -> str:
    """The stored form of a session id (the id itself is only ever in the cookie)."""
    return _hash(sid)


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    """The session dict, plus its id and whether to replace or end it when the response goes."""

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
    """Sessions in the account store's web_sessions table."""

    def __init__(self, sessions: sessionmaker[Session], lifetime: dt.timedelta) -> None:
        self._sessions = sessions
        self._lifetime = lifetime

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if sid:
            with self._sessions() as db:
                row = WebSessionRepository(db).get(_hash(sid), utcnow())
                if row is not None:
                    return ServerSession(dict(row.data), sid)
        return ServerSession()

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:  # type: ignore[override]
        name = self.get_cookie_name(app)
        if session.accessed:
            response.vary.add("Cookie")
        if not (session.modified or session.drop_sid):
            return
        now = utcnow()
        with self._sessions() as db, db.begin():
            repo = WebSessionRepository(db)
            if session.drop_sid:
                repo.delete(_hash(session.drop_sid))
            if not session:
                if session.sid:
                    repo.delete(_hash(session.sid))
                if session.sid or session.drop_sid:
                    response.delete_cookie(name, domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
                                           secure=self.get_cookie_secure(app), httponly=True,
                                           samesite=self.get_cookie_samesite(app))
                return
            if session.sid is None:
                session.sid = secrets.token_urlsafe(32)
                repo.purge(now)  # a cheap moment to drop dead sessions
            expires = now + self._lifetime
            repo.save(_hash(session.sid), dict(session), session.get("_user_id"), expires)
        response.set_cookie(
            name, session.sid, expires=expires, httponly=True, domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app), secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app))
        response.vary.add("Cookie")


def end_user_sessions(db: Session, user_id: str) -> None:
    """Delete every session of a user (e.g. sign out everywhere)."""
    WebSessionRepository(db).delete_for_user(user_id)
