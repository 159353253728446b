"""Responses API state stays inside its project.

OpenAI and xAI store Responses API objects (store defaults to true) under the channel's
provider key, and every project shares that key. So a `previous_response_id` is forwarded only
when the response was created through OneKey by the same project (and the same provider);
anything else is a 404, exactly as for an id that never existed, so nothing leaks about other
projects' ids. Request fields that would reach provider-side state by other handles
(`background`, `item_reference` input items) are refused with a clear 400, and a `conversation` —
never created through OneKey, so never the project's — is a 404.

Design, for the hot path budget:
- Chat completions never come here. For /v1/responses, a check without `previous_response_id`
  costs a few dict lookups.
- Ownership is looked up in a bounded in-memory map first, then (on a miss: another replica
  made it, or this one restarted) in the routing store. Misses are never cached: a negative
  entry could deny an owner whose row was written a moment later elsewhere.
- A new response id must be durable before the client can present it anywhere, since the next
  turn may land on another replica. The id reaches the client inside the answer (the body, or
  the stream's `response.created` event), so that piece is held back until the row is
  committed. Writes are group-committed: concurrent requests share one transaction, so the
  cost is about one commit per batch, paid once per response (not per chunk), and only by
  Responses API calls with `store` on. If the store is down, the answer goes out once the
  store guard's bound passes (at once while it is known down: the owner works on this replica
  from memory), and the row is kept and written when the store is back (at most
  MAX_UNWRITTEN rows; beyond them the oldest are dropped and logged: ownership fails closed on
  other replicas). A lookup the store cannot answer is a 503, never a 404 nor a pass.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker

from router_core.errors import InvalidRequest, NotFound
from router_core.repositories import ResponseOwnerRepository
from router_core.store_guard import StoreGuard
from router_core.tables import utcnow

logger = logging.getLogger(__name__)

# Stop looking for the id after this many bytes of a stream (it is in the first event).
_SCAN_LIMIT = 256 * 1024
MAX_UNWRITTEN = 100_000  # owner rows kept for a store that is down
UNCHECKED = "OneKey could not look up `previous_response_id` just now (its store is not answering); retry shortly."


@dataclass(frozen=True, slots=True)
class Owner:
    project_id: str
    provider: str
    channel: str


class ResponseOwners:
    """Records and checks which project created which stored response."""

    def __init__(self, sessions: async_sessionmaker, cache_size: int = 200_000,
                 guard: StoreGuard | None = None) -> None:
        self._sessions = sessions
        self._guard = guard or StoreGuard()
        self._unwritten: list[dict] = []  # rows a store that was down did not take yet
        self._cache: OrderedDict[str, Owner] = OrderedDict()
        self._cache_size = cache_size
        self._pending: list[tuple[dict, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="response-owners")

    async def stop(self) -> None:
        """Write what is pending, then stop the writer."""
        if self._task is not None:
            await self._commit()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def check(self, project_id: str, provider: str, body: dict) -> str | None:
        """Refuse what would cross projects; the channel that made the previous response, if any."""
        conversation = body.get("conversation")
        if conversation is not None:
            # Conversations are provider state that no project created through OneKey, so none
            # is this project's: the same 404 as for a foreign previous_response_id.
            cid = conversation.get("id") if isinstance(conversation, dict) else conversation
            raise NotFound(f"Conversation with id '{str(cid)[:100]}' not found; OneKey carries a conversation "
                           "forward with `previous_response_id`.", param="conversation",
                           code="conversation_not_found")
        if body.get("background"):
            raise InvalidRequest("`background` responses are not supported through OneKey.",
                                 param="background", code="unsupported_parameter")
        items = body.get("input")
        if isinstance(items, list) and any(isinstance(i, dict) and i.get("type") == "item_reference" for i in items):
            raise InvalidRequest("`item_reference` input items are not supported through OneKey; send the item "
                                 "itself or use `previous_response_id`.", param="input", code="unsupported_parameter")
        previous = body.get("previous_response_id")
        if previous is None:
            return None
        if not isinstance(previous, str) or not previous:
            raise InvalidRequest("`previous_response_id` must be a response id.", param="previous_response_id",
                                 code="invalid_type")
        owner = await self.owner(previous)
        if owner is None or owner.project_id != project_id or owner.provider != provider:
            raise NotFound(f"Previous response with id '{previous[:100]}' not found.",
                           param="previous_response_id", code="previous_response_not_found")
        return owner.channel

    async def owner(self, response_id: str) -> Owner | None:
        """Who created this response: memory first, then the routing store."""
        owner = self._cache.get(response_id)
        if owner is not None:
            self._cache.move_to_end(response_id)
            return owner
        async def read():
            async with self._sessions() as session:
                return await ResponseOwnerRepository(session).get(response_id)

        row = await self._guard.call(read, UNCHECKED)
        if row is None:
            return None
        owner = Owner(row.project_id, row.provider, row.channel)
        self._remember_locally(response_id, owner)
        return owner

    async def record(self, response_id: str, owner: Owner) -> bool:
        """Make the ownership durable; returns once committed (False if the write failed)."""
        self._remember_locally(response_id, owner)
        future = asyncio.get_running_loop().create_future()
        self._pending.append(({"response_id": response_id, "project_id": owner.project_id,
                               "provider": owner.provider, "channel": owner.channel,
                               "created_at": utcnow()}, future))
        self._wake.set()
        if self._task is None:  # not started (a unit test): commit inline
            await self._commit()
        return await future

    async def bind(self, items: AsyncIterator, project_id: str, provider: str) -> AsyncIterator:
        """Pass the forwarder's items on, recording the response id before it reaches the client."""
        channel = ""
        looking = True
        scanned = 0
        buffer = b""
        async for item in items:
            if looking and isinstance(item, bytes):
                buffer += item
                scanned += len(item)
                response_id = _id_of_stream(buffer)
                if response_id:
                    await self.record(response_id, Owner(project_id, provider, channel))
                if response_id or scanned > _SCAN_LIMIT:
                    looking, buffer = False, b""
            elif looking and hasattr(item, "status") and hasattr(item, "body"):  # the head
                channel = item.channel
                if item.status >= 300:
                    looking = False
                elif item.body is not None:
                    looking = False
                    response_id = _id_of_body(item.body)
                    if response_id:
                        await self.record(response_id, Owner(project_id, provider, channel))
            yield item

    def _remember_locally(self, response_id: str, owner: Owner) -> None:
        self._cache[response_id] = owner
        self._cache.move_to_end(response_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), 1.0 if self._unwritten else None)
            except TimeoutError:
                pass  # rows a store that was down did not take: try again
            self._wake.clear()
            await self._commit()

    async def _commit(self) -> None:
        batch, self._pending = self._pending, []
        rows = self._unwritten + [row for row, _ in batch]
        if not rows:
            return
        self._unwritten = []

        async def write():
            async with self._sessions() as session, session.begin():
                await ResponseOwnerRepository(session).add_many(rows)  # an id already there stays as it was

        ok = True
        try:
            await self._guard.call(write)
        except Exception as exc:  # the store may be down: serve this answer, keep the rows
            ok = False
            self._unwritten = rows[-MAX_UNWRITTEN:]
            if len(rows) > MAX_UNWRITTEN:
                logger.error("response owners dropped, the store is down too long: count=%d",
                             len(rows) - MAX_UNWRITTEN)
            logger.error("recording response owners failed: %s count=%d (kept for retry)", type(exc).__name__,
                         len(self._unwritten))
        for _, future in batch:
            if not future.done():
                future.set_result(ok)


def _id_of_body(body: bytes) -> str | None:
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) and rid else None


def _id_of_stream(buffer: bytes) -> str | None:
    """The response id from the first event that carries a `response` object."""
    for line in buffer.splitlines():
        if not line.startswith(b"data:") or b'"response"' not in line:
            continue
        try:
            obj = json.loads(line[5:])
        except (ValueError, UnicodeDecodeError):
            continue  # a line cut by a read: wait for the rest
        response = obj.get("response") if isinstance(obj, dict) else None
        rid = response.get("id") if isinstance(response, dict) else None
        if isinstance(rid, str) and rid:
            return rid
    return None
