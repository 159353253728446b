"""The pooled HTTP client the core uses for every provider, with per-phase timeouts."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import aiohttp

from router_core.providers.base import UpstreamError
from router_core.settings import Timeouts


class _ReadTimeout(Exception):
    """A stream read waited longer than its limit (raised in the read by _ReadWatch)."""


class _ReadWatch:
    """The time limit of each read of a stream, with one timer per stream instead of one per read.

    A read in progress fails with _ReadTimeout once it has waited `limit` seconds; time between
    reads (the consumer busy elsewhere) is not counted, as with a timeout around each read. The
    timer is re-armed only when it fires during a later read than the one it was armed for, so a
    stream of many short reads costs a clock read per chunk rather than a timer.
    """

    __slots__ = ("_loop", "_content", "limit", "_since", "_deadline", "_handle")

    def __init__(self, content: aiohttp.StreamReader, limit: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._content = content
        self.limit = limit
        self._since: float | None = None  # when the read in progress began
        self._deadline = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._since = now = self._loop.time()
        deadline = now + self.limit
        if self._handle is None or self._deadline > deadline:  # none yet, or the limit got shorter
            self._arm(deadline)

    def stop(self) -> None:
        self._since = None

    def cancel(self) -> None:
        self._since = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, deadline: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._deadline = deadline
        self._handle = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self._since is None:
            return  # no read in progress: the next one arms the timer again
        deadline = self._since + self.limit
        if deadline > self._deadline:
            self._arm(deadline)  # this read began after the timer was armed: its own limit
        else:
            self._content.set_exception(_ReadTimeout())


class HttpResponse:
    """An aiohttp response read under the first-byte and idle timeouts."""

    __slots__ = ("_resp", "status", "headers", "_timeouts", "_watch")

    def __init__(self, resp: aiohttp.ClientResponse, timeouts: Timeouts) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._timeouts = timeouts
        self._watch: _ReadWatch | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        idle = self._timeouts.idle
        watch = self._watch = _ReadWatch(content, self._timeouts.first_byte)
        try:
            while True:
                watch.start()
                try:
                    data = await content.readany()
                except _ReadTimeout:
                    raise UpstreamError("The provider stopped sending data.", 504, "upstream_timeout") from None
                except (aiohttp.ClientError, OSError):
                    raise UpstreamError("The provider's connection broke mid-answer.", 502, "upstream_error") from None
                finally:
                    watch.stop()
                if not data:
                    return
                # A reasoning model may open its stream at once (headers, `response.created`) and
                # then think for minutes: the first-byte budget lasts until output flows (the first
                # `delta`), and only then does the shorter idle limit between chunks apply.
                if watch.limit != idle and b'"delta"' in data:
                    watch.limit = idle
                yield data
        finally:
            watch.cancel()

    async def read(self) -> bytes:
        # The whole body within the first-byte limit: one read as far as the watch is concerned.
        watch = self._watch = _ReadWatch(self._resp.content, self._timeouts.first_byte)
        watch.start()
        try:
            return await self._resp.read()
        except _ReadTimeout:
            raise UpstreamError("The provider did not finish its answer in time.", 504, "upstream_timeout") from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamError("The provider's connection broke mid-answer.", 502, "upstream_error") from None
        finally:
            watch.cancel()

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._resp.close()


class HttpClient:
    """One aiohttp ClientSession shared by every request of the core (connection pooling)."""

    def __init__(self, timeouts: Timeouts, session: aiohttp.ClientSession | None = None) -> None:
        self.timeouts = timeouts
        self._session = session

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
            # total=None: a reasoning model may think for many minutes; the phases are bounded
            # one by one (connect here, first byte and idle in HttpResponse).
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect, connect=self.timeouts.connect)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST and wait for the status line and headers; UpstreamError if none came."""
        return await self.request("POST", url, body, headers)

    async def request(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> HttpResponse:
        """Send and wait for the status line and headers; UpstreamError if none came."""
        assert self._session is not None, "HttpClient.start() was not awaited"
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                resp = await self._session.request(method, url, data=body, headers=headers, allow_redirects=False)
        except TimeoutError:
            raise UpstreamError("The provider did not answer in time.", 504, "upstream_timeout") from None
        except aiohttp.ClientConnectorError:
            raise UpstreamError("Could not connect to the provider.", 502, "upstream_unreachable") from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamError("The connection to the provider failed.", 502, "upstream_error") from None
        return HttpResponse(resp, self.timeouts)
