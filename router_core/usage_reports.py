"""The read side of metering: balances, summaries and events, for MeteringService."""
from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy.ext.asyncio import async_sessionmaker

from router_core import tables
from router_core.errors import InvalidRequest, NotFound
from router_core.metering import UsageRecorder
from router_core.repositories import CreditRepository, ProjectRepository, UsageRepository

MAX_PAGE = 500


class UsageReports:
    def __init__(self, sessions: async_sessionmaker, recorder: UsageRecorder) -> None:
        self._sessions = sessions
        self._recorder = recorder

    async def balance(self, project_id: str) -> tables.Project:
        async with self._sessions() as session:
            return await ProjectRepository(session).get(project_id)

    async def summary(self, project_id: str, start: dt.datetime | None, end: dt.datetime | None,
                      group: str) -> list[tuple]:
        start, end = _range(start, end)
        async with self._sessions() as session:
            await ProjectRepository(session).get(project_id)
            return await UsageRepository(session).summary(project_id, start, end, group)

    async def events(self, project_id: str, start: dt.datetime | None, end: dt.datetime | None,
                     page_size: int, page_token: str, status: str = "", model: str = "",
                     key_id: str = "") -> tuple[list[tables.UsageEvent], str]:
        start, end = _range(start, end)
        if status not in ("", "ok", "error") and not (status.isdigit() and 100 <= int(status) <= 599):
            raise InvalidRequest('the status filter is "ok", "error" or an HTTP status', param="status")
        size = min(max(page_size or 50, 1), MAX_PAGE)
        before = _decode_token(page_token) if page_token else None
        async with self._sessions() as session:
            await ProjectRepository(session).get(project_id)
            rows = await UsageRepository(session).page(project_id, start, end, size + 1, before,
                                                       status, model, key_id)
        token = _encode_token(rows[size - 1]) if len(rows) > size else ""
        return rows[:size], token

    async def credits(self, project_id: str, limit: int) -> list[tables.CreditEntry]:
        """The project's ledger entries, newest first."""
        async with self._sessions() as session:
            await ProjectRepository(session).get(project_id)
            return await CreditRepository(session).recent(project_id, min(max(limit or 100, 1), MAX_PAGE))

    async def request(self, request_id: str, project_id: str = "") -> tables.UsageEvent:
        async with self._sessions() as session:
            row = await UsageRepository(session).get(request_id)
        if row is None:
            # It may still be waiting in the batch: write the batch and look once more.
            await self._recorder.flush()
            async with self._sessions() as session:
                row = await UsageRepository(session).get(request_id)
        if row is None or (project_id and row.project_id != project_id):
            raise NotFound(f"no usage recorded for request {request_id}", param="request_id")
        return row


def _range(start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    end = end or dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    start = start or end - dt.timedelta(days=30)
    if start >= end:
        raise InvalidRequest("the range is empty: start must come before end", param="start")
    return start, end


def _encode_token(row: tables.UsageEvent) -> str:
    t = row.time if row.time.tzinfo else row.time.replace(tzinfo=dt.timezone.utc)
    return base64.urlsafe_b64encode(f"{t.isoformat()}|{row.request_id}".encode()).decode()


def _decode_token(token: str) -> tuple[dt.datetime, str]:
    try:
        when, request_id = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        return dt.datetime.fromisoformat(when), request_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the page token is not valid", param="page_token") from None
