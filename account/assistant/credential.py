"""The assistant's system key: the operator's (`assistant_api_key_env`), or one made at first use.

A key made here belongs to a system project of its own, credited with the configured budget, so
the assistant's calls are metered and paid there like any client's. It must stay usable, so it is
kept encrypted (Fernet, key derived from the app's secret key, which every replica shares) in the
account store; it is never logged or shown.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from account.core_client import CoreClient, CoreError
from account.settings import AccountSettings, Secret
from account.store.models import ServiceCredential
from account.store.repositories import ServiceCredentialRepository

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

logger = logging.getLogger(__name__)

NAME = "assistant"
PROJECT_NAME = "OneKey assistant (system)"


def _fernet(secret_key: Secret) -> Fernet:
    from cryptography.fernet import Fernet  # ~7 MiB: loaded by the assistant's first call, not by an idle app

    derived = hmac.new(secret_key.reveal().encode(), b"onekey-service-credentials", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def _stored(sessions: sessionmaker[Session], fernet: Fernet, core: CoreClient) -> Secret | None:
    from cryptography.fernet import InvalidToken

    with sessions() as db, db.begin():
        row = ServiceCredentialRepository(db).get(NAME)
        if row is None:
            return None
        try:
            return Secret(fernet.decrypt(row.secret_encrypted.encode()).decode())
        except InvalidToken:  # the secret key changed: this key cannot be read any more
            logger.warning("assistant system key unreadable (secret key changed); making a new one")
            ServiceCredentialRepository(db).delete(NAME)
            _revoke(core, row.project_id, row.key_id)
            return None


def _revoke(core: CoreClient, project_id: str, key_id: str) -> None:
    try:
        core.revoke_key(project_id, key_id)
    except CoreError as exc:
        logger.warning("could not revoke unused assistant key %s: %s", key_id, type(exc).__name__)


def system_key(settings: AccountSettings, sessions: sessionmaker[Session], core: CoreClient) -> Secret:
    """The key the assistant calls the edge with. Raises the core client's errors."""
    if settings.assistant.api_key:
        return settings.assistant.api_key
    fernet = _fernet(settings.secret_key)
    found = _stored(sessions, fernet, core)
    if found is not None:
        return found
    project = core.create_project(PROJECT_NAME, 0)
    budget = settings.assistant.budget_usd * 1_000_000
    if budget:
        core.add_credit(project.id, budget, idempotency_key=f"assistant-budget:{project.id}",
                        reason="assistant system project budget")
    key, secret = core.create_key(project.id, "assistant")
    try:
        with sessions() as db, db.begin():
            ServiceCredentialRepository(db).add(ServiceCredential(
                name=NAME, project_id=project.id, key_id=key.id, key_prefix=key.prefix,
                secret_encrypted=fernet.encrypt(secret.encode()).decode()))
    except IntegrityError:  # another replica made one first: use theirs, retire ours
        _revoke(core, project.id, key.id)
        return _stored(sessions, fernet, core) or Secret(secret)
    logger.info("assistant system project %s created with key %s… and a $%d budget", project.id, key.prefix,
                settings.assistant.budget_usd)
    return Secret(secret)


def system_project_id(sessions: sessionmaker[Session]) -> str | None:
    """The system project made at first use, if any (for operators and tests)."""
    with sessions() as db:
        row = ServiceCredentialRepository(db).get(NAME)
        return row.project_id if row else None
