"""Who is signing in: users found or made from a verified email or a linked OAuth identity."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets

from sqlalchemy.orm import Session

from account.auth.oauth import Profile
from account.store.models import User, utcnow
from account.store.repositories import (
    IdentityRepository, LoginTokenRepository, RateEventRepository, UserRepository,
)

logger = logging.getLogger(__name__)


class SignInRefused(Exception):
    """This sign-in cannot go ahead; the message is shown to the person."""


class RateLimited(Exception):
    """Too many sign-in links asked for; try later."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def user_for_email(db: Session, email: str) -> tuple[User, bool]:
    """The user owning this (verified) email, made on first sign-in; and whether it is new."""
    users = UserRepository(db)
    user = users.by_email(email)
    if user is not None:
        return user, False
    return users.create(email), True


def user_for_profile(db: Session, profile: Profile) -> tuple[User, bool]:
    """The user behind an OAuth identity.

    A known identity signs in its user. A new identity is linked to an existing user only
    through an email the provider says is verified; without one there is no sign-in, since an
    unverified address would let anyone claim someone else's account.
    """
    identities = IdentityRepository(db)
    known = identities.find(profile.provider, profile.subject)
    if known is not None:
        return known.user, False
    if not profile.email or not profile.email_verified:
        raise SignInRefused("Your account there has no verified email address. Verify one with the "
                            "provider, or sign in with an email link instead.")
    user, created = user_for_email(db, profile.email)
    identities.link(user, profile.provider, profile.subject, profile.email)
    logger.info("linked a %s identity to user %s (new user: %s)", profile.provider, user.id, created)
    return user, created


def issue_magic_link(db: Session, email: str, client_ip: str, *, ttl: float, window: float,
                     per_email: int, per_ip: int) -> str:
    """A new single-use sign-in token for this email (only its hash is stored).

    Raises RateLimited when this email or this address asked too often in the window. The
    answer never depends on whether the email belongs to a user.
    """
    now = utcnow()
    since = now - dt.timedelta(seconds=window)
    rates = RateEventRepository(db)
    buckets = {f"magic:email:{token_hash(email)[:32]}": per_email, f"magic:ip:{client_ip}": per_ip}
    if any(rates.count(bucket, since) >= limit for bucket, limit in buckets.items()):
        raise RateLimited()
    for bucket in buckets:
        rates.add(bucket, now)
    token = secrets.token_urlsafe(32)
    tokens = LoginTokenRepository(db)
    tokens.add(token_hash(token), email, now + dt.timedelta(seconds=ttl))
    tokens.purge(now - dt.timedelta(days=1))
    rates.purge(now - dt.timedelta(seconds=window))
    return token
