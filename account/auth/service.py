"""Who is signing in: users found or made from a verified email or a linked OAuth identity."""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from account.auth.oauth import Profile
from account.mail import Mailer
from account.store.models import User, utcnow
from account.store.repositories import (
    IdentityRepository, LoginTokenRepository, RateEventRepository, UserRepository,
)

logger = logging.getLogger(__name__)


class SignInRefused(Exception):
    """This sign-in cannot go ahead; the message is shown to the person."""


class RateLimited(Exception):
    """Too many sign-in links asked for; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"try again in {retry_after:.0f} s")
        self.retry_after = retry_after


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


@dataclass(frozen=True)
class LinkLimits:
    """How magic links are limited; counts are per `window` seconds."""

    ttl: float
    window: float
    per_email: int        # mails to one address, whoever asks: past it, no new mail while a link works
    per_email_ip: int     # links one requester may ask for one address: past it, 429 to that requester
    per_ip: int           # links one requester may ask for in all: past it, 429 to that requester


def requester_of(client_ip: str) -> str:
    """Who is asking, as counted: the IPv4 address, or the /64 of an IPv6 one (a host gets a whole /64)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip[:64]
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _as_utc(at: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes: they were written in UTC."""
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


def issue_magic_link(db: Session, email: str, client_ip: str, limits: LinkLimits) -> str | None:
    """A new single-use sign-in token to mail for this email (only its hash is stored), or None.

    The limits keep strangers from flooding a mailbox without letting them keep its owner out:
    - a requester who asked too often, for this email or in all, gets RateLimited; that is
      counted per requester, so it never holds back the owner asking from elsewhere;
    - past `per_email` mails in the window, whoever asks, no new mail is sent while a link
      already sent still works (None): the owner signs in with that one. Once none works, a
      new one goes out, so a flood costs the owner at most one mail per link lifetime.
    The answer never depends on whether the email belongs to a user.
    """
    now = utcnow()
    since = now - dt.timedelta(seconds=limits.window)
    rates = RateEventRepository(db)
    tokens = LoginTokenRepository(db)
    email_key = token_hash(email)[:32]
    requester = requester_of(client_ip)
    asks = {f"magic:ip:{requester}": limits.per_ip, f"magic:email-ip:{email_key}:{requester}": limits.per_email_ip}
    full = [bucket for bucket, limit in asks.items() if rates.count(bucket, since) >= limit]
    if full:
        frees = max(_as_utc(rates.oldest(bucket, since)) for bucket in full) + dt.timedelta(seconds=limits.window)
        raise RateLimited(max((frees - now).total_seconds(), 1.0))
    for bucket in asks:
        rates.add(bucket, now)
    rates.purge(since)
    tokens.purge(now - dt.timedelta(days=1))
    mails = f"magic:email:{email_key}"
    if rates.count(mails, since) >= limits.per_email and tokens.outstanding(email, now) > 0:
        logger.info("sign-in mail cap reached for an address; an earlier link still works, none sent")
        return None
    rates.add(mails, now)
    token = secrets.token_urlsafe(32)
    tokens.add(token_hash(token), email, now + dt.timedelta(seconds=limits.ttl))
    return token


def end_other_links(db: Session, email: str) -> int:
    """Signing in ends every other outstanding link of the address (any older mail is dead)."""
    return LoginTokenRepository(db).end_outstanding(email, utcnow())


def sweep_sign_in_mail(db: Session, mailer: Mailer) -> int:
    """Delete the kept copies of sign-in mails whose link was used or has expired."""
    tokens = LoginTokenRepository(db)
    now = utcnow()
    return mailer.sweep(lambda refs: set(refs) - tokens.usable_among(refs, now))
