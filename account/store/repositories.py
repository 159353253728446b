"""Repositories of the account store. Each takes a session and never commits: the HTTP
request owns the unit of work."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from account.store.models import (
    KeyAudit, LoginToken, OAuthIdentity, Project, Purchase, RateEvent, ServiceCredential, User, WebSession,
)


class UserRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, user_id: str) -> User | None:
        return self._s.get(User, user_id)

    def by_email(self, email: str) -> User | None:
        return self._s.scalar(select(User).where(User.email == email))

    def create(self, email: str) -> User:
        user = User(email=email)
        self._s.add(user)
        self._s.flush()
        return user


class IdentityRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def find(self, provider: str, subject: str) -> OAuthIdentity | None:
        return self._s.scalar(select(OAuthIdentity).where(
            OAuthIdentity.provider == provider, OAuthIdentity.subject == subject))

    def link(self, user: User, provider: str, subject: str, email: str) -> OAuthIdentity:
        identity = OAuthIdentity(user_id=user.id, provider=provider, subject=subject, email=email)
        self._s.add(identity)
        self._s.flush()
        return identity

    def for_user(self, user_id: str) -> list[OAuthIdentity]:
        return list(self._s.scalars(select(OAuthIdentity).where(OAuthIdentity.user_id == user_id)
                                    .order_by(OAuthIdentity.id)))


class ProjectRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, project_id: str, owner_id: str, name: str) -> Project:
        project = Project(id=project_id, owner_id=owner_id, name=name)
        self._s.add(project)
        self._s.flush()
        return project

    def owned_by(self, owner_id: str) -> list[Project]:
        return list(self._s.scalars(select(Project).where(Project.owner_id == owner_id)
                                    .order_by(Project.created_at, Project.id)))

    def get_owned(self, project_id: str, owner_id: str) -> Project | None:
        """The project if this user owns it; None for unknown ids and other users' projects alike."""
        return self._s.scalar(select(Project).where(Project.id == project_id, Project.owner_id == owner_id))


class LoginTokenRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, token_hash: str, email: str, expires_at: dt.datetime) -> LoginToken:
        token = LoginToken(token_hash=token_hash, email=email, expires_at=expires_at)
        self._s.add(token)
        self._s.flush()
        return token

    def usable(self, token_hash: str, now: dt.datetime) -> LoginToken | None:
        """The token if it is unused and unexpired (for the confirm page; nothing changes)."""
        return self._s.scalar(select(LoginToken).where(
            LoginToken.token_hash == token_hash, LoginToken.used_at.is_(None), LoginToken.expires_at > now))

    def consume(self, token_hash: str, now: dt.datetime) -> str | None:
        """Mark the token used, atomically: the email it was sent to, or None if it was not usable."""
        email = self._s.scalar(select(LoginToken.email).where(LoginToken.token_hash == token_hash))
        result = self._s.execute(
            update(LoginToken)
            .where(LoginToken.token_hash == token_hash, LoginToken.used_at.is_(None), LoginToken.expires_at > now)
            .values(used_at=now)
            .execution_options(synchronize_session=False))
        return email if result.rowcount == 1 else None

    def outstanding(self, email: str, now: dt.datetime) -> int:
        """How many links sent to this email could still sign in."""
        return self._s.scalar(select(func.count()).select_from(LoginToken).where(
            LoginToken.email == email, LoginToken.used_at.is_(None), LoginToken.expires_at > now)) or 0

    def end_outstanding(self, email: str, now: dt.datetime) -> int:
        """Mark every still-usable link of this email used; how many there were."""
        result = self._s.execute(
            update(LoginToken)
            .where(LoginToken.email == email, LoginToken.used_at.is_(None), LoginToken.expires_at > now)
            .values(used_at=now)
            .execution_options(synchronize_session=False))
        return result.rowcount

    def end(self, token_hash: str, now: dt.datetime) -> None:
        """Mark one link used (its mail never left)."""
        self._s.execute(update(LoginToken).where(LoginToken.token_hash == token_hash, LoginToken.used_at.is_(None))
                        .values(used_at=now).execution_options(synchronize_session=False))

    def usable_among(self, token_hashes: list[str], now: dt.datetime) -> set[str]:
        """The hashes, of those given, whose links are unused and unexpired."""
        found: set[str] = set()
        for start in range(0, len(token_hashes), 500):  # keep each IN list small
            found.update(self._s.scalars(select(LoginToken.token_hash).where(
                LoginToken.token_hash.in_(token_hashes[start:start + 500]),
                LoginToken.used_at.is_(None), LoginToken.expires_at > now)))
        return found

    def purge(self, before: dt.datetime) -> None:
        self._s.execute(delete(LoginToken).where(LoginToken.expires_at < before))


class RateEventRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def count(self, bucket: str, since: dt.datetime) -> int:
        return self._s.scalar(select(func.count()).select_from(RateEvent)
                              .where(RateEvent.bucket == bucket, RateEvent.at > since)) or 0

    def oldest(self, bucket: str, since: dt.datetime) -> dt.datetime | None:
        """When the oldest event still counted in the window happened: the window frees one then."""
        return self._s.scalar(select(func.min(RateEvent.at)).where(RateEvent.bucket == bucket, RateEvent.at > since))

    def add(self, bucket: str, at: dt.datetime) -> None:
        self._s.add(RateEvent(bucket=bucket, at=at))
        self._s.flush()

    def purge(self, before: dt.datetime) -> None:
        self._s.execute(delete(RateEvent).where(RateEvent.at < before))


class WebSessionRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, id_hash: str, now: dt.datetime) -> WebSession | None:
        return self._s.scalar(select(WebSession).where(WebSession.id_hash == id_hash, WebSession.expires_at > now))

    def add(self, id_hash: str, data: dict, user_id: str | None, expires_at: dt.datetime) -> None:
        """A new session's row."""
        self._s.add(WebSession(id_hash=id_hash, data=data, user_id=user_id, expires_at=expires_at))
        self._s.flush()

    def update(self, id_hash: str, data: dict, user_id: str | None, expires_at: dt.datetime) -> bool:
        """Write an existing session's row; False when it is gone (ended elsewhere): never re-made."""
        result = self._s.execute(update(WebSession).where(WebSession.id_hash == id_hash)
                                 .values(data=data, user_id=user_id, expires_at=expires_at)
                                 .execution_options(synchronize_session=False))
        return result.rowcount == 1

    def delete(self, id_hash: str) -> None:
        self._s.execute(delete(WebSession).where(WebSession.id_hash == id_hash))

    def delete_for_user(self, user_id: str, keep: str | None = None) -> None:
        """Delete the user's sessions, all of them or all but the one whose id hash is `keep`."""
        query = delete(WebSession).where(WebSession.user_id == user_id)
        if keep is not None:
            query = query.where(WebSession.id_hash != keep)
        self._s.execute(query)

    def for_user(self, user_id: str, now: dt.datetime) -> list[WebSession]:
        return list(self._s.scalars(select(WebSession).where(WebSession.user_id == user_id, WebSession.expires_at > now)
                                    .order_by(WebSession.created_at.desc())))

    def purge(self, now: dt.datetime) -> None:
        self._s.execute(delete(WebSession).where(WebSession.expires_at <= now))


class KeyAuditRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def record(self, user_id: str, project_id: str, key_id: str, key_prefix: str, action: str, ip: str) -> None:
        self._s.add(KeyAudit(user_id=user_id, project_id=project_id, key_id=key_id, key_prefix=key_prefix,
                             action=action, ip=ip))
        self._s.flush()

    def recent(self, project_id: str, limit: int = 20) -> list[KeyAudit]:
        return list(self._s.scalars(select(KeyAudit).where(KeyAudit.project_id == project_id)
                                    .order_by(KeyAudit.at.desc(), KeyAudit.id.desc()).limit(limit)))


class PurchaseRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, project_id: str, user_id: str, amount_cents: int, currency: str) -> Purchase:
        purchase = Purchase(project_id=project_id, user_id=user_id, amount_cents=amount_cents, currency=currency)
        self._s.add(purchase)
        self._s.flush()
        return purchase

    def get(self, purchase_id: str, *, lock: bool = False) -> Purchase | None:
        query = select(Purchase).where(Purchase.id == purchase_id)
        return self._s.scalar(query.with_for_update() if lock else query)

    def by_session(self, session_id: str, *, lock: bool = False) -> Purchase | None:
        query = select(Purchase).where(Purchase.session_id == session_id)
        return self._s.scalar(query.with_for_update() if lock else query)

    def by_payment_intent(self, payment_intent: str, *, lock: bool = False) -> Purchase | None:
        query = select(Purchase).where(Purchase.payment_intent == payment_intent)
        return self._s.scalar(query.with_for_update() if lock else query)

    def for_project(self, project_id: str, limit: int = 50) -> list[Purchase]:
        return list(self._s.scalars(select(Purchase).where(Purchase.project_id == project_id)
                                    .order_by(Purchase.created_at.desc(), Purchase.id).limit(limit)))


class ServiceCredentialRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, name: str) -> ServiceCredential | None:
        return self._s.get(ServiceCredential, name)

    def add(self, credential: ServiceCredential) -> None:
        self._s.add(credential)
        self._s.flush()

    def delete(self, name: str) -> None:
        self._s.execute(delete(ServiceCredential).where(ServiceCredential.name == name))
