"""What the settings page does with a whole account: export it, and delete it.

Deletion revokes every key in the core first: if the core cannot be reached nothing is deleted,
so no key can outlive its account.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete
from sqlalchemy.orm import Session

from account.core_client import CoreClient, CoreError, CoreNotFound
from account.store.models import KeyAudit, LoginToken, OAuthIdentity, Project, Purchase, User, WebSession
from account.store.repositories import IdentityRepository, KeyAuditRepository, ProjectRepository, PurchaseRepository

logger = logging.getLogger(__name__)

EXPORT_DAYS = 366


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat() if value else None


def export(db: Session, core: CoreClient, user: User) -> dict:
    """Everything OneKey holds about the user, as plain JSON-able data (never a secret or a hash)."""
    now = dt.datetime.now(dt.timezone.utc)
    data = {
        "exported_at": _iso(now),
        "user": {"id": user.id, "email": user.email, "created_at": _iso(user.created_at),
                 "last_login_at": _iso(user.last_login_at)},
        # As Settings lists them: the e-mail link always works for the account's address.
        "sign_in_methods": [{"provider": "email_link", "email": user.email, "linked_at": _iso(user.created_at)}] + [
            {"provider": i.provider, "email": i.email, "linked_at": _iso(i.created_at)}
            for i in IdentityRepository(db).for_user(user.id)],
        "projects": [],
    }
    for project in ProjectRepository(db).owned_by(user.id):
        entry = {"id": project.id, "name": project.name, "created_at": _iso(project.created_at),
                 "purchases": [{"id": p.id, "amount_cents": p.amount_cents, "currency": p.currency,
                                "status": p.status, "refunded_cents": p.refunded_cents,
                                "created_at": _iso(p.created_at)}
                               for p in PurchaseRepository(db).for_project(project.id, limit=10_000)],
                 "key_activity": [{"key_id": a.key_id, "key_prefix": a.key_prefix, "action": a.action,
                                   "at": _iso(a.at)} for a in KeyAuditRepository(db).recent(project.id, 10_000)]}
        try:
            balance = core.balance(project.id)
            entry["balance_micro_usd"], entry["free_requests"] = balance.balance_micro_usd, balance.free_requests
            entry["keys"] = [{"id": k.id, "name": k.name, "prefix": k.prefix, "created_at": _iso(k.created_at),
                              "last_used_at": _iso(k.last_used_at), "revoked_at": _iso(k.revoked_at),
                              "spend_limit_micro_usd": k.spend_limit_micro_usd, "expires_at": _iso(k.expires_at)}
                             for k in core.list_keys(project.id)]
            rows, _ = core.usage(project.id, now - dt.timedelta(days=EXPORT_DAYS), now, "day")
            entry["usage_by_day"] = [{"day": r.group, "requests": r.requests, "failed": r.errors,
                                      "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                                      "charged_micro_usd": r.charged_micro_usd} for r in rows]
        except CoreNotFound:
            entry["core"] = "unknown to the routing core"
        data["projects"].append(entry)
    return data


def unspent_credit(core: CoreClient, projects: list[Project]) -> int | None:
    """The balance left across the projects (micro-USD), or None if the core cannot say."""
    try:
        return sum(max(core.balance(p.id).balance_micro_usd, 0) for p in projects)
    except CoreError:
        return None


def delete_account(db: Session, core: CoreClient, user: User) -> int:
    """Close every project in the core (its keys revoked, no key made after), then delete the
    user's rows. Returns keys revoked.

    Closing rather than listing and revoking keys: a key another session of the user creates
    meanwhile would be missed by the list and outlive the account; the core refuses it once the
    project is closed, and a key made just before is revoked by the close. The user's row is
    locked first, so a project being created meanwhile waits and is then counted.
    Raises the core client's errors before anything is deleted here.
    """
    db.refresh(user, with_for_update=True)
    projects = ProjectRepository(db).owned_by(user.id)
    revoked = 0
    for project in projects:
        try:
            revoked += core.close_project(project.id)
        except CoreNotFound:
            continue
    ids = [p.id for p in projects]
    if ids:
        db.execute(delete(KeyAudit).where(KeyAudit.project_id.in_(ids)))
        db.execute(delete(Purchase).where(Purchase.project_id.in_(ids)))
        db.execute(delete(Project).where(Project.id.in_(ids)))
    db.execute(delete(KeyAudit).where(KeyAudit.user_id == user.id))
    db.execute(delete(Purchase).where(Purchase.user_id == user.id))
    db.execute(delete(OAuthIdentity).where(OAuthIdentity.user_id == user.id))
    db.execute(delete(LoginToken).where(LoginToken.email == user.email))
    db.execute(delete(WebSession).where(WebSession.user_id == user.id))
    db.delete(user)
    db.flush()
    logger.info("user %s deleted their account: projects=%d keys revoked=%d", user.id, len(ids), revoked)
    return revoked
