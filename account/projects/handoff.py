"""Handing a new key's secret from the POST that made it to the one GET that shows it.

The create form redirects (POST-redirect-GET), so a reload can never make a second key. The
secret waits in the server-side session, encrypted with a key derived from the app's secret
key, and is taken out by the first view of the "new key" page: a reload finds nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from flask import session

from account.web import context

_SLOT = "new_key"


def _fernet() -> Fernet:
    secret_key = context().settings.secret_key.reveal().encode()
    return Fernet(base64.urlsafe_b64encode(hmac.new(secret_key, b"onekey-new-key-handoff", hashlib.sha256).digest()))


def hand_over(key_id: str, secret: str) -> None:
    """Keep the secret for the next view of this key's "new key" page."""
    session[_SLOT] = {"key_id": key_id, "sealed": _fernet().encrypt(secret.encode()).decode()}


def take(key_id: str) -> str | None:
    """The secret, once; None when it was already shown (or belongs to another key)."""
    slot = session.get(_SLOT)
    if not slot or slot.get("key_id") != key_id:
        return None
    session.pop(_SLOT)
    try:
        return _fernet().decrypt(slot["sealed"].encode()).decode()
    except (InvalidToken, KeyError):
        return None
