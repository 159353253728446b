"""Handing a new key's secret from the POST that made it to the one GET that shows it.

The create form redirects (POST-redirect-GET), so a reload can never make a second key. The
secret waits in the server-side session, encrypted with a key derived from the app's secret
key, and is taken out by the first view of the "new key" page: a reload finds nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING

from flask import session

from account.web import context

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

_SLOT = "new_key"


def _fernet() -> Fernet:
    from cryptography.fernet import Fernet  # ~7 MiB: loaded by the first key made, not by an idle app

    secret_key = context().settings.secret_key.reveal().encode()
    return Fernet(base64.urlsafe_b64encode(hmac.new(secret_key, b"onekey-new-key-handoff", hashlib.sha256).digest()))


_MAX_WAITING = 5  # keys made in other tabs before their page was shown


def hand_over(key_id: str, secret: str) -> None:
    """Keep the secret for the next view of this key's "new key" page."""
    waiting = dict(session.get(_SLOT) or {})
    waiting[key_id] = _fernet().encrypt(secret.encode()).decode()
    session[_SLOT] = dict(list(waiting.items())[-_MAX_WAITING:])


def take(key_id: str) -> str | None:
    """The secret, once; None when it was already shown (or belongs to another key)."""
    waiting = dict(session.get(_SLOT) or {})
    sealed = waiting.pop(key_id, None)
    if sealed is None:
        return None
    if waiting:
        session[_SLOT] = waiting
    else:
        session.pop(_SLOT)
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None
