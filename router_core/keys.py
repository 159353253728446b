"""API keys: minted once, stored only as a SHA-256 hash, validated through a short-lived cache.

Keys carry 256 bits of randomness, so a plain SHA-256 is the right hash (a slow password hash
would only slow the hot path). The hash is the lookup index; the final comparison is constant
time. The cache bounds staleness: a revoked key stops working within `ttl` seconds on every
replica, because each replica re-reads the row once its entry expires (and so does a changed
rate limit, which the cache carries along).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker

from router_core.errors import InvalidApiKey
from router_core.repositories import KeyRepository
from router_core.tables import utcnow

KEY_PREFIX = "ok-"
DISPLAY_CHARS = 10


def mint_key() -> tuple[str, str, str]:
    """A new secret with its display prefix and hash: (secret, prefix, hash)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[:DISPLAY_CHARS], hash_key(secret)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """Who a valid key speaks for, and its request rate limits (None: not set)."""

    project_id: str
    key_id: str
    key_rpm: int | None = None
    project_rpm: int | None = None


class KeyValidator:
    """Validates secrets against the store with a bounded, short-lived in-memory cache."""

    def __init__(self, sessions: async_sessionmaker, ttl: float = 2.0, max_entries: int = 100_000) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[KeyIdentity | None, float]] = OrderedDict()
        self._last_used: dict[str, dt.datetime] = {}

    async def validate(self, secret: str) -> KeyIdentity:
        """The identity behind a secret; raises InvalidApiKey for a missing, unknown or revoked key."""
        if not secret:
            raise InvalidApiKey("You didn't provide an API key. Send it as `Authorization: Bearer <key>`.")
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            identity = hit[0]
        else:
            identity = await self._load(digest)
            self._remember(digest, identity, now)
        if identity is None:
            raise InvalidApiKey("Incorrect API key provided. Find your keys in the OneKey dashboard.")
        self._last_used[identity.key_id] = utcnow()
        return identity

    def forget(self, secret_hash: str) -> None:
        """Drop one cached entry (after a revoke on this replica)."""
        self._cache.pop(secret_hash, None)

    def take_last_used(self) -> dict[str, dt.datetime]:
        """Hand over and reset the keys used since the last call, for a batched write."""
        used, self._last_used = self._last_used, {}
        return used

    async def _load(self, digest: str) -> KeyIdentity | None:
        async with self._sessions() as session:
            found = await KeyRepository(session).by_hash(digest)
        if found is None:
            return None
        row, project_rpm = found
        if row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, digest):
            return None
        return KeyIdentity(project_id=row.project_id, key_id=row.id, key_rpm=row.rate_limit_rpm,
                           project_rpm=project_rpm)

    def _remember(self, digest: str, identity: KeyIdentity | None, now: float) -> None:
        # Unknown keys are remembered for a shorter time so a fresh key is never refused long.
        ttl = self._ttl if identity is not None else min(self._ttl, 1.0)
        self._cache[digest] = (identity, now + ttl)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
