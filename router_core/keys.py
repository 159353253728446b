"""API keys: minted once, stored only as a SHA-256 hash, validated through a short-lived cache.

Keys carry 256 bits of randomness, so a plain SHA-256 is the right hash (a slow password hash
would only slow the hot path). The hash is the lookup index; the final comparison is constant
time. The cache bounds staleness: a revoked key stops working within `ttl` seconds on every
replica, because each replica re-reads the row once its entry expires (and so does a changed
rate limit, which the cache carries along).
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

from router_core.errors import InvalidApiKey, SpendLimitReached
from router_core.repositories import KeyRepository, UsageRepository
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


@dataclass(slots=True)
class _Entry:
    """What the cache knows of one secret: who it is, and whether it may still be used."""

    identity: KeyIdentity | None
    revoked_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None


@dataclass(slots=True)
class _Spend:
    """A limited key's spend this month: the store's sum at load, plus what was settled here since."""

    limit: int
    month: str
    spent: int


def month_start(now: dt.datetime) -> dt.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _when(value: dt.datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _usd(micro: int) -> str:
    whole, frac = divmod(micro, 1_000_000)
    return f"${whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else f"${whole}.00"


class KeyValidator:
    """Validates secrets against the store with a bounded, short-lived in-memory cache.

    It also keeps the month's spend of keys with a spend limit. Each replica counts what it
    settles and re-reads the store's total when the cache entry expires, so a limit holds across
    replicas within the cache's staleness (and, like credit, by one request in flight). Usage is
    written in batches, so a re-read adds what this replica settled but may not have written yet:
    `_settled` and `_written` only grow, and their difference (read before the store is) can
    only over-count, never let a limit slip.
    """

    def __init__(self, sessions: async_sessionmaker, ttl: float = 2.0, max_entries: int = 100_000) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[_Entry, float]] = OrderedDict()
        self._spend: dict[str, _Spend] = {}
        self._settled: dict[str, int] = {}  # per limited key: charges settled here, ever
        self._written: dict[str, int] = {}  # of those, the ones the usage writer has committed
        self._last_used: dict[str, dt.datetime] = {}
        self._loading: dict[str, asyncio.Future] = {}  # digest -> the one store read in flight

    async def validate(self, secret: str) -> KeyIdentity:
        """The identity behind a secret; raises InvalidApiKey for a missing, unknown, revoked or expired key.

        A revoked or expired key's error carries its identity, so its refusal can be shown to its project.
        """
        if not secret:
            raise InvalidApiKey("You didn't provide an API key. Send it as `Authorization: Bearer <key>`.")
        digest = hash_key(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            entry = hit[0]
        else:
            entry = await self._reload(digest, now)
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

    def check_spend(self, identity: KeyIdentity) -> None:
        """Raise SpendLimitReached when the key has spent its monthly limit."""
        spend = self._spend.get(identity.key_id)
        if spend is None or spend.month != utcnow().strftime("%Y-%m"):
            return
        if spend.spent >= spend.limit:
            raise SpendLimitReached(
                f"This API key has reached its monthly spend limit of {_usd(spend.limit)} "
                f"({_usd(spend.spent)} spent since the 1st, UTC). Raise the limit in the OneKey dashboard, "
                "or use another key.", code="key_spend_limit_reached")

    def add_spend(self, key_id: str, charged: int) -> None:
        """Count a settled charge against the key's monthly limit on this replica."""
        spend = self._spend.get(key_id)
        if spend is not None and charged:
            spend.spent += charged
            self._settled[key_id] = self._settled.get(key_id, 0) + charged

    def spend_written(self, events: list[dict]) -> None:
        """The usage writer committed these events: their charges are in the store now."""
        for event in events:
            key_id, charged = event["key_id"], event["charged_micro_usd"]
            if charged and key_id in self._settled:
                self._written[key_id] = self._written.get(key_id, 0) + charged

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
        now = utcnow()
        async with self._sessions() as session:
            found = await KeyRepository(session).by_hash(digest)
            if found is None or not hmac.compare_digest(found[0].secret_hash, digest):
                return _Entry(None)
            row, project_rpm = found
            if row.spend_limit_micro_usd is not None:
                spent = await self._month_spend(session, row.id, month_start(now))
                self._spend[row.id] = _Spend(row.spend_limit_micro_usd, now.strftime("%Y-%m"), spent)
                self._settled.setdefault(row.id, 0)
            else:
                self._drop_spend(row.id)
        identity = KeyIdentity(project_id=row.project_id, key_id=row.id, key_rpm=row.rate_limit_rpm,
                               project_rpm=project_rpm)
        return _Entry(identity, row.revoked_at, row.expires_at)

    async def _month_spend(self, session, key_id: str, since: dt.datetime) -> int:
        """The store's sum plus what this replica settled and has not written yet.

        A batch committed while the store was read would be counted twice: read again then
        (the last try keeps the over-count, which refuses early rather than late).
        """
        for _ in range(3):
            written_before = self._written.get(key_id, 0)
            stored = await UsageRepository(session).key_spend(key_id, since)
            if self._written.get(key_id, 0) == written_before:
                break
        return stored + max(self._settled.get(key_id, 0) - written_before, 0)

    def _remember(self, digest: str, entry: _Entry, now: float) -> None:
        # Unknown keys are remembered for a shorter time so a fresh key is never refused long.
        ttl = self._ttl if entry.identity is not None else min(self._ttl, 1.0)
        self._cache[digest] = (entry, now + ttl)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max:
            _, (gone, _) = self._cache.popitem(last=False)
            if gone.identity is not None:
                self._drop_spend(gone.identity.key_id)

    def _drop_spend(self, key_id: str) -> None:
        self._spend.pop(key_id, None)
        self._settled.pop(key_id, None)
        self._written.pop(key_id, None)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
