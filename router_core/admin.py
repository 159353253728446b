"""Projects, keys and credits: the domain behind AdminService. Each call is one transaction."""
from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import async_sessionmaker

from router_core import tables
from router_core.errors import AlreadyExists, InvalidRequest, NotFound, ProjectClosed
from router_core.keys import KeyValidator, mint_key
from router_core.key_spend import month_start
from router_core.repositories import CreditRepository, KeyRepository, KeySpendRepository, ProjectRepository
from router_core.tables import utcnow

MAX_CREDIT_MICRO_USD = 1_000_000 * 1_000_000  # $1M in one operation
MAX_RATE_LIMIT_RPM = 1_000_000_000  # fits the 32-bit column; far beyond any real limit


class AdminService:
    def __init__(self, sessions: async_sessionmaker, keys: KeyValidator) -> None:
        self._sessions = sessions
        self._keys = keys

    async def create_project(self, name: str, credit_micro_usd: int, free_requests: int,
                             rate_limit_rpm: int | None = None) -> tables.Project:
        if credit_micro_usd < 0 or free_requests < 0:
            raise InvalidRequest("credit and free requests cannot be negative")
        _check_amount(credit_micro_usd)
        rpm = _project_rpm(rate_limit_rpm)
        async with self._sessions() as session, session.begin():
            project = await ProjectRepository(session).create(name, free_requests, rpm)
            if credit_micro_usd:
                await CreditRepository(session).apply(
                    project.id, credit_micro_usd, f"initial:{project.id}", "initial credit")
            return await ProjectRepository(session).get(project.id)

    async def get_project(self, project_id: str) -> tables.Project:
        async with self._sessions() as session:
            return await ProjectRepository(session).get(project_id)

    async def rename_project(self, project_id: str, name: str) -> tables.Project:
        async with self._sessions() as session, session.begin():
            return await ProjectRepository(session).rename(project_id, name)

    async def create_key(self, project_id: str, name: str, rate_limit_rpm: int | None = None,
                         spend_limit_micro_usd: int | None = None, expires_at: dt.datetime | None = None
                         ) -> tuple[tables.ApiKey, str]:
        """A new key and its secret (the only time the secret exists outside the client).

        Names are unique among the project's active keys; with no name, the next free "key N".
        """
        _check_rpm(rate_limit_rpm)
        _check_limits(spend_limit_micro_usd, expires_at)
        secret, prefix, digest = mint_key()
        name = name.strip()
        async with self._sessions() as session, session.begin():
            projects = ProjectRepository(session)
            if not await projects.lock_open(project_id):
                await projects.get(project_id)  # NotFound for an unknown project
                raise ProjectClosed("This project is closed (its account was deleted): no key can be made in it.",
                                    param="project_id")
            keys = KeyRepository(session)
            taken = await keys.active_names(project_id)
            if not name:
                name = next(n for n in (f"key {i}" for i in range(1, len(taken) + 2)) if n not in taken)
            elif name in taken:
                raise AlreadyExists(f"A key named “{name}” already exists in this project; choose another name.",
                                    param="name", code="key_name_taken")
            key = await keys.add(project_id, name, prefix, digest, rate_limit_rpm, spend_limit_micro_usd,
                                 expires_at)
        return key, secret

    async def close_project(self, project_id: str) -> tuple[tables.Project, int]:
        """Close a project for good: its keys revoked, none created after (see lock_open)."""
        async with self._sessions() as session, session.begin():
            project, hashes = await ProjectRepository(session).close(project_id)
        for digest in hashes:
            self._keys.forget(digest)  # this replica at once; the others within the cache ttl
        return project, len(hashes)

    async def update_key(self, key_id: str, project_id: str, *, spend_limit_micro_usd: int | None = None,
                         clear_spend_limit: bool = False, expires_at: dt.datetime | None = None,
                         clear_expiry: bool = False) -> tables.ApiKey:
        """Set or clear a key's monthly spend limit and expiry; every replica sees it within the cache TTL."""
        _check_limits(spend_limit_micro_usd, expires_at)
        async with self._sessions() as session, session.begin():
            key = await KeyRepository(session).get(key_id)
            if project_id and key.project_id != project_id:
                raise NotFound(f"key {key_id} not found", param="key_id")
            if clear_spend_limit:
                key.spend_limit_micro_usd = None
            elif spend_limit_micro_usd is not None:
                if key.spend_limit_micro_usd is None:
                    # Only limited keys' spend is counted on their row: start from their events.
                    now = utcnow()
                    await KeySpendRepository(session).recount(key_id, now.strftime("%Y-%m"), month_start(now))
                key.spend_limit_micro_usd = spend_limit_micro_usd
            if clear_expiry:
                key.expires_at = None
            elif expires_at is not None:
                key.expires_at = expires_at
            await session.flush()
        self._keys.forget(key.secret_hash)
        return key

    async def set_project_rate_limit(self, project_id: str, rpm: int | None) -> tables.Project:
        """Requests per minute of the project's keys together; None or 0 removes the limit."""
        rpm = _project_rpm(rpm)
        async with self._sessions() as session, session.begin():
            return await ProjectRepository(session).set_rate_limit(project_id, rpm)

    async def set_key_rate_limit(self, key_id: str, rpm: int | None) -> tables.ApiKey:
        """Requests per minute of one key; None: the configured default, 0: no limit."""
        _check_rpm(rpm)
        async with self._sessions() as session, session.begin():
            key = await KeyRepository(session).set_rate_limit(key_id, rpm)
        self._keys.forget(key.secret_hash)  # this replica at once; the others within the cache ttl
        return key

    async def list_keys(self, project_id: str) -> list[tables.ApiKey]:
        async with self._sessions() as session:
            await ProjectRepository(session).get(project_id)
            return await KeyRepository(session).list(project_id)

    async def revoke_key(self, key_id: str, project_id: str = "") -> tables.ApiKey:
        async with self._sessions() as session, session.begin():
            repo = KeyRepository(session)
            key = await repo.get(key_id)
            if project_id and key.project_id != project_id:
                raise NotFound(f"key {key_id} not found", param="key_id")
            key = await repo.revoke(key_id)
        self._keys.forget(key.secret_hash)
        return key

    async def add_credit(self, project_id: str, amount: int, idempotency_key: str, reason: str
                         ) -> tuple[tables.Project, bool]:
        """Credit (or debit) once per idempotency key; returns the project and whether it applied."""
        if not idempotency_key:
            raise InvalidRequest("an idempotency key is required", param="idempotency_key")
        if amount == 0:
            raise InvalidRequest("the amount must not be zero", param="amount_micro_usd")
        _check_amount(abs(amount))
        async with self._sessions() as session, session.begin():
            projects = ProjectRepository(session)
            await projects.get(project_id)
            applied = await CreditRepository(session).apply(project_id, amount, idempotency_key, reason)
            return await projects.get(project_id), applied

    async def add_free_requests(self, project_id: str, count: int) -> tables.Project:
        async with self._sessions() as session, session.begin():
            projects = ProjectRepository(session)
            await projects.add_free_requests(project_id, count)
            return await projects.get(project_id)


def _check_rpm(rpm: int | None) -> None:
    if rpm is not None and not 0 <= rpm <= MAX_RATE_LIMIT_RPM:
        raise InvalidRequest(f"a rate limit is 0 (none) to {MAX_RATE_LIMIT_RPM} requests per minute",
                             param="rate_limit_rpm")


def _project_rpm(rpm: int | None) -> int | None:
    """A project's limit as stored: 0 and unset both mean none (NULL)."""
    _check_rpm(rpm)
    return rpm or None


def _check_limits(spend_limit_micro_usd: int | None, expires_at: dt.datetime | None) -> None:
    if spend_limit_micro_usd is not None:
        if spend_limit_micro_usd <= 0:
            raise InvalidRequest("a spend limit must be more than zero", param="spend_limit_micro_usd")
        _check_amount(spend_limit_micro_usd)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("the expiry must be in the future", param="expires_at")


def _check_amount(amount: int) -> None:
    if amount > MAX_CREDIT_MICRO_USD:
        raise InvalidRequest("the amount is over the limit of one operation", param="amount_micro_usd")
