"""The pooled HTTP/1.1 client the core uses for every provider, with per-phase timeouts.

A provider call is one request with a body already encoded and one answer read once, as a whole
or as it streams. A general-purpose client's per-request machinery (tracing signals, cookie jar,
redirects, URL objects, a connector's bookkeeping) cost as much CPU as the rest of the core's
work on a request, so this client is only what that call needs, on asyncio protocols and
httptools' parser (llhttp, the parser Node.js uses): keep-alive pooling per origin, TLS with
certificate verification, Content-Length, chunked and close-delimited bodies, gzip and deflate,
interim 1xx answers skipped, flow control towards a slow reader, and the connect, first-byte and
idle limits (one timer per request, see _ReadWatch).
"""
from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict

from router_core.providers.base import UpstreamError
from router_core.settings import Timeouts

# How long an idle pooled connection is kept; providers' load balancers close theirs later.
KEEPALIVE_S = 60.0
# A head larger than this is not a provider's: the answer is refused rather than held.
MAX_HEAD_BYTES = 256 * 1024
MAX_HEADERS = 256
# Reading from the provider pauses while this much of its answer waits for the reader.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
# Bodies up to this size are written with the head in one piece (one system call).
JOIN_BODY_BELOW = 64 * 1024
_TARGETS_KEPT = 1024


class _ReadTimeout(Exception):
    """A read waited longer than its limit (raised in the read by _ReadWatch)."""


class _Stale(Exception):
    """A kept-alive connection closed before any byte of the answer: the request may go again."""


class _ReadWatch:
    """The time limit of each read of an answer, with one timer per request instead of one per read.

    A read in progress (the head, then each read of the body) fails with _ReadTimeout once it has
    waited `limit` seconds; time between reads (the consumer busy elsewhere) is not counted, as
    with a timeout around each read. The timer is re-armed only when it fires during a later read
    than the one it was armed for, so a stream of many short reads costs a clock read per chunk
    rather than a timer.
    """

    __slots__ = ("_loop", "_target", "limit", "_since", "_deadline", "_handle")

    def __init__(self, target: _Exchange, limit: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._target = target
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
            self._target.fail(_ReadTimeout())


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a URL's request goes: its origin (the pool's key) and the request line's target."""

    origin: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    path: bytes
    host_header: bytes


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError("The provider's URL is not an http(s) URL.", 502, "upstream_unreachable")
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise UpstreamError("The provider's URL has no valid port.", 502, "upstream_unreachable") from None
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    if port != (443 if tls else 80):
        shown = f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target((parts.scheme, host, port), host, port, tls, path.encode("ascii", "strict"),
                   shown.encode("idna"))


def _safe(value: str) -> bool:
    return "\r" not in value and "\n" not in value and "\0" not in value


def _request_bytes(method: str, target: _Target, body: bytes | None, headers: Mapping[str, str]) -> bytes:
    """The request's head: a header that cannot travel (CR, LF or NUL in it) is left out."""
    lines = [f"{method} ".encode("ascii"), target.path, b" HTTP/1.1\r\nHost: ", target.host_header, b"\r\n"]
    given = set()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in ("host", "content-length", "transfer-encoding", "connection") or not (
                _safe(name) and _safe(value)) or ":" in name:
            continue
        given.add(lowered)
        lines.append(f"{name}: {value}\r\n".encode("utf-8", "replace"))
    if "accept-encoding" not in given:
        lines.append(b"Accept-Encoding: gzip, deflate\r\n")
    if "user-agent" not in given:
        lines.append(b"User-Agent: OneKey\r\n")
    if body is not None:
        lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    return b"".join(lines)


class _Exchange:
    """One request's answer as it arrives: its head, then its body, buffered for the reader."""

    __slots__ = ("head", "status", "headers", "_head_bytes", "_chunks", "_buffered", "_waiter", "eof",
                 "error", "_inflate", "conn", "received")

    def __init__(self, conn: _Connection) -> None:
        self.conn: _Connection | None = conn
        self.head: asyncio.Future = conn.loop.create_future()
        self.status = 0
        self.headers: CIMultiDict[str] = CIMultiDict()
        self._head_bytes = 0
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future | None = None
        self.eof = False
        self.error: BaseException | None = None
        self._inflate = None
        self.received = False  # any byte of the answer came

    # The parser's side.
    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES or len(self.headers) >= MAX_HEADERS:
            raise ValueError("the answer's head is too large")
        self.headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_head(self, status: int) -> None:
        self.status = status
        encoding = self.headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflate = _Deflate()
        elif encoding not in ("", "identity"):
            raise ValueError("the answer is in an encoding that was not asked for")
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, data: bytes) -> None:
        if self._inflate is not None:
            data = self._inflate.decompress(data)
        if data:
            self._push(data)

    def on_end(self) -> None:
        if self._inflate is not None:
            rest, self._inflate = self._inflate.flush(), None
            if rest:
                self._push(rest)
        self.eof = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self.eof or self.error is not None:
            return
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved here: a head nobody waits for any more logs nothing
        self._wake()

    def _push(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and self.conn is not None:
            self.conn.pause()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # The reader's side.
    async def read_some(self) -> bytes:
        """What has arrived since the last read, waiting for some; b"" at the end."""
        while not self._chunks:
            if self.error is not None:
                raise self.error
            if self.eof:
                return b""
            self._waiter = self.head.get_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self.conn is not None:
            self.conn.resume()
        return data


class _Deflate:
    """`Content-Encoding: deflate`, as servers send it: zlib-wrapped, or now and then raw."""

    __slots__ = ("_z", "_first")

    def __init__(self) -> None:
        self._z = zlib.decompressobj()
        self._first = True

    def decompress(self, data: bytes) -> bytes:
        if self._first and data:
            self._first = False
            try:
                return self._z.decompress(data)
            except zlib.error:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._z.decompress(data)

    def flush(self) -> bytes:
        return self._z.flush()


class _Connection(asyncio.Protocol):
    """One connection to a provider: one request at a time, kept alive between them."""

    def __init__(self, pool: list[_Connection], loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False
        self.idle_since = 0.0
        self._paused = False
        self._keep_alive = False
        self._until_eof = False
        self._interim = False

    # asyncio's side.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        exchange.received = True
        try:
            self._parser.feed_data(data)
        except Exception:
            exchange.fail(UpstreamError("The provider's answer was not valid HTTP.", 502, "upstream_error"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange, self.exchange = self.exchange, None
        if exchange is None:
            return
        if exchange.head.done() and self._until_eof and not exchange.error:
            exchange.on_end()  # a body that ends with the connection
        elif not exchange.received:
            exchange.fail(_Stale())
        else:
            exchange.fail(UpstreamError("The provider's connection broke mid-answer.", 502, "upstream_error"))

    # The parser's side (httptools calls these from feed_data).
    def on_message_begin(self) -> None:
        self._interim = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.exchange.on_header(name, value)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue, 103 Early Hints: the answer follows
            self._interim = True
            self.exchange.headers.clear()
            return
        self._keep_alive = self._parser.should_keep_alive()
        headers = self.exchange.headers
        self._until_eof = ("content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", "").lower() and status not in (204, 304))
        self.exchange.on_head(status)

    def on_body(self, body: bytes) -> None:
        self.exchange.on_body(body)

    def on_message_complete(self) -> None:
        if self._interim:
            return
        exchange, self.exchange = self.exchange, None
        exchange.conn = None
        exchange.on_end()
        self.resume()
        if self._keep_alive and not self.closed:
            self.idle_since = self.loop.time()
            self._pool.append(self)
        else:
            self.close()

    # The client's side.
    def send(self, data: bytes, body: bytes | None) -> _Exchange:
        self.exchange = exchange = _Exchange(self)
        if body and len(body) >= JOIN_BODY_BELOW:
            self.transport.writelines((data, body))
        else:
            self.transport.write(data + body if body else data)
        return exchange

    def pause(self) -> None:
        if not self._paused and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpResponse:
    """A provider's answer, read under the first-byte and idle limits."""

    __slots__ = ("_exchange", "status", "headers", "_timeouts", "_watch")

    def __init__(self, exchange: _Exchange, watch: _ReadWatch, timeouts: Timeouts) -> None:
        self._exchange = exchange
        self.status = exchange.status
        self.headers = exchange.headers
        self._timeouts = timeouts
        self._watch = watch

    async def chunks(self) -> AsyncIterator[bytes]:
        exchange = self._exchange
        idle = self._timeouts.idle
        watch = self._watch
        watch.limit = self._timeouts.first_byte
        try:
            while True:
                watch.start()
                try:
                    data = await exchange.read_some()
                except _ReadTimeout:
                    raise UpstreamError("The provider stopped sending data.", 504, "upstream_timeout") from None
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
        exchange, watch = self._exchange, self._watch
        watch.limit = self._timeouts.first_byte
        watch.start()
        parts = []
        try:
            while data := await exchange.read_some():
                parts.append(data)
        except _ReadTimeout:
            raise UpstreamError("The provider did not finish its answer in time.", 504, "upstream_timeout") from None
        finally:
            watch.cancel()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        self._watch.cancel()
        conn = self._exchange.conn
        if conn is not None:  # the answer is not over: its connection cannot carry another
            self._exchange.conn = None
            conn.close()


class HttpClient:
    """Connections to providers, kept alive and shared by every request of the core."""

    def __init__(self, timeouts: Timeouts, ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeouts = timeouts
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        self._started = False
        for pool in self._pools.values():
            for conn in pool:
                conn.close()
        self._pools.clear()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """POST and wait for the status line and headers; UpstreamError if none came."""
        return await self.request("POST", url, body, headers)

    async def request(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> HttpResponse:
        """Send and wait for the status line and headers; UpstreamError if none came.

        A kept-alive connection that turns out closed before any byte of the answer (the
        provider let it go while it was idle here) is replaced once by a new one.
        """
        assert self._started, "HttpClient.start() was not awaited"
        target = self._targets.get(url)
        if target is None:
            target = _target(url)
            if len(self._targets) >= _TARGETS_KEPT:
                self._targets.clear()
            self._targets[url] = target
        data = _request_bytes(method, target, body, headers)
        loop = asyncio.get_running_loop()
        conn = self._pooled(target.origin, loop)
        if conn is not None:
            try:
                return await self._send_on(conn, data, body)
            except _Stale:
                pass  # once more, on a new connection
        try:
            return await self._send_on(await self._connect(target, loop), data, body)
        except _Stale:
            raise UpstreamError("The provider closed the connection without answering.", 502,
                                "upstream_error") from None

    async def _send_on(self, conn: _Connection, data: bytes, body: bytes | None) -> HttpResponse:
        """Send on `conn` and wait for the answer's head (_Stale: the connection was already gone)."""
        exchange = conn.send(data, body)
        watch = _ReadWatch(exchange, self.timeouts.first_byte)
        watch.start()
        try:
            await exchange.head
        except _Stale:
            watch.cancel()
            raise
        except BaseException as exc:
            watch.cancel()
            conn.close()  # timed out, broken, or the client left mid-answer: it carries nothing more
            if isinstance(exc, _ReadTimeout):
                raise UpstreamError("The provider did not answer in time.", 504, "upstream_timeout") from None
            raise
        watch.stop()
        return HttpResponse(exchange, watch, self.timeouts)

    def _pooled(self, origin: tuple[str, str, int], loop: asyncio.AbstractEventLoop) -> _Connection | None:
        pool = self._pools.get(origin)
        if not pool:
            return None
        now = loop.time()
        while pool:
            conn = pool.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_S:
                return conn
            conn.close()
        return None

    async def _connect(self, target: _Target, loop: asyncio.AbstractEventLoop) -> _Connection:
        pool = self._pools.setdefault(target.origin, [])
        context = None
        if target.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()  # the system's CAs, hostnames checked
            context = self._ssl
        try:
            async with asyncio.timeout(self.timeouts.connect):
                _, conn = await loop.create_connection(
                    lambda: _Connection(pool, loop), target.host, target.port, ssl=context,
                    server_hostname=target.host if context else None)
        except TimeoutError:
            raise UpstreamError("The provider did not answer in time.", 504, "upstream_timeout") from None
        except OSError:  # refused, unreachable, no such host, a certificate that does not verify
            raise UpstreamError("Could not connect to the provider.", 502, "upstream_unreachable") from None
        return conn

