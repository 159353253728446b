"""API keys: minted once, stored only as a SHA-256 hash, validated through a short-lived cache.

Keys carry 256 bits of randomness, so a plain SHA-256 is the right hash (a slow password hash
would only slow the hot path). The hash is the lookup index; the final comparison is constant
time. The cache bounds staleness: a revoked key stops working within `ttl` seconds on every
replica, because each replica re-reads the row once its entry expires (and so does a changed
rate limit, which the cache carries along). While the store does not answer, an entry past its
ttl is still believed (a revoke made meanwhile waits for the store too); a key never seen is
refused with StoreUnavailable (503), never taken on trust.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker

from router_core.errors import InvalidApiKey, StoreUnavailable
from router_core.repositories import KeyRepository
from router_core.store_guard import StoreGuard
from router_core.tables import utcnow

KEY_PREFIX = "ok-"
DISPLAY_CHARS = 10
KEY_UNCHECKED = "OneKey could not check this API key just now (its store is not answering); retry shortly."
MAX_KEY_CHARS = 512  # the edge's bound on an API key header (printable ASCII)


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
    spend_limit: int | None = None  # micro-USD per calendar month (UTC); held in router_core/key_spend.py


@dataclass(slots=True)
class _Entry:
    """What the cache knows of one secret: who it is, and whether it may still be used."""

    identity: KeyIdentity | None
    revoked_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None


def _when(value: dt.datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class KeyValidator:
    """Validates secrets against the store with a bounded, short-lived in-memory cache.

    A key's spend limit travels with its identity; the spend itself is held and counted in the
    store, request by request (router_core/key_spend.py), so it holds across replicas.
    """

    def __init__(self, sessions: async_sessionmaker, ttl: float = 2.0, max_entries: int = 100_000,
                 guard: StoreGuard | None = None) -> None:
        self._sessions = sessions
        self._guard = guard or StoreGuard()
        self._ttl = ttl
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[_Entry, float]] = OrderedDict()
        self._last_used: dict[str, dt.datetime] = {}
        self._loading: dict[str, asyncio.Future] = {}  # digest -> the one store read in flight

    async def validate(self, secret: str) -> KeyIdentity:
        """The identity behind a secret; raises InvalidApiKey for a missing, unknown, revoked or expired key.

        A revoked or expired key's error carries its identity, so its refusal can be shown to its project.
        """
        if not secret:
            raise InvalidApiKey("You didn't provide an API key. Send it as `Authorization: Bearer <key>`.")
        if len(secret) > MAX_KEY_CHARS or not (secret.isascii() and secret.isprintable()):
            # What the edge refuses too (no key has this shape): neither hashed nor cached.
            raise InvalidApiKey("Incorrect API key provided. Find your keys in the OneKey dashboard.")
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            entry = hit[0]
        else:
            try:
                entry = await self._reload(digest, now)
            except StoreUnavailable:
                if hit is None:
                    raise
                # The store's last word on this key stands while it cannot say another.
                entry = hit[0]
        identity = entry.identity
        if identity is None:
            raise InvalidApiKey("Incorrect API key provided. Find your keys in the OneKey dashboard.")
        if entry.revoked_at is not None:
            raise InvalidApiKey(f"This API key was revoked on {_when(entry.revoked_at)} and no longer works. "
                                "Create a new key in the OneKey dashboard.", code="api_key_revoked",
                                identity=identity)
        if entry.expires_at is not None and _aware(entry.expires_at) <= utcnow():
            raise InvalidApiKey(f"This API key expired on {_when(entry.expires_at)}. Create a new key, or "
                                "extend this one, in the OneKey dashboard.", code="api_key_expired",
                                identity=identity)
        self._last_used[identity.key_id] = utcnow()
        return identity

    def forget(self, secret_hash: str) -> None:
        """Drop one cached entry (after a revoke or a change of limits on this replica)."""
        self._cache.pop(secret_hash, None)
        self._loading.pop(secret_hash, None)  # a read begun before the change is not remembered

    async def _reload(self, digest: str, now: float) -> _Entry:
        """The store's entry for a digest, read once for all the requests that find it missing or
        expired at the same moment (under load an expiry would otherwise send every request in
        flight with that key to the store at once). A caller that is cancelled leaves the read
        running for the others."""
        pending = self._loading.get(digest)
        if pending is None:
            pending = self._loading[digest] = asyncio.ensure_future(self._load(digest))

            def done(read: asyncio.Future) -> None:
                if self._loading.get(digest) is read:  # not forgotten meanwhile
                    del self._loading[digest]
                    if not read.cancelled() and read.exception() is None:
                        self._remember(digest, read.result(), now)

            pending.add_done_callback(done)
        return await asyncio.shield(pending)

    def take_last_used(self) -> dict[str, dt.datetime]:
        """Hand over and reset the keys used since the last call, for a batched write."""
        used, self._last_used = self._last_used, {}
        return used

    async def _load(self, digest: str) -> _Entry:
        async def read():
            async with self._sessions() as session:
                return await KeyRepository(session).by_hash(digest)

        found = await self._guard.call(read, KEY_UNCHECKED)
        if found is None or not hmac.compare_digest(found[0].secret_hash, digest):
            return _Entry(None)
        row, project_rpm = found
        identity = KeyIdentity(project_id=row.project_id, key_id=row.id, key_rpm=row.rate_limit_rpm,
                               project_rpm=project_rpm, spend_limit=row.spend_limit_micro_usd)
        return _Entry(identity, row.revoked_at, row.expires_at)

    def _remember(self, digest: str, entry: _Entry, now: float) -> None:
        # Unknown keys are remembered for a shorter time so a fresh key is never refused long.
        ttl = self._ttl if entry.identity is not None else min(self._ttl, 1.0)
        self._cache[digest] = (entry, now + ttl)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
