"""The load generator: keep-alive HTTP/1.1 connections on a bare asyncio protocol.

The same client measures the upstream directly and through the gateway, so its own cost is in
both figures and drops out of the difference. Each connection carries one request at a time;
a run of concurrency N keeps N connections busy. Times are taken with perf_counter_ns just
before the request is written and in the callback that sees the bytes arrive.
"""
from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field


class HttpError(Exception):
    """An answer the benchmark did not expect (status, framing, closed connection)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go and the exact bytes of each one."""

    name: str
    host: str
    port: int
    request: bytes          # the whole non-stream request, head and body
    stream_request: bytes   # the same asking for a stream
    long_stream_request: bytes = b""  # a stream of LONG_EVENTS content events (asks that many tokens)
    stream_end: bytes = b"data: [DONE]"  # what the last event of a whole stream holds


# The long stream: the fake upstream answers a stream asking for this many tokens (or more) with
# this many content events (bench/upstream.py's LONG_CONTENT_EVENTS).
LONG_EVENTS = 50


def build_request(host: str, port: int, path: str, key: str, body: dict,
                  headers: dict[str, str] | None = None) -> bytes:
    raw = json.dumps(body, separators=(",", ":")).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json\r\nUser-Agent: onekey-bench/1\r\n"
            f"{extra}Content-Length: {len(raw)}\r\n\r\n").encode() + raw


def target(name: str, host: str, port: int, prefix: str, key: str, model: str,
           headers: dict[str, str] | None = None) -> Target:
    """A chat/completions target at http://host:port{prefix} with a small realistic body.

    `headers` are sent with every request besides the usual ones (a peer gateway's routing).
    """
    body = {"model": model, "max_tokens": 32, "temperature": 0.2,
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": "Say hello in one short sentence."}]}
    path = f"{prefix}/chat/completions"

    def build(b: dict) -> bytes:
        return build_request(host, port, path, key, b, headers)

    return Target(name, host, port, build(body), build({**body, "stream": True}),
                  build({**body, "stream": True, "max_tokens": LONG_EVENTS}))


def messages_target(name: str, host: str, port: int, key: str, model: str) -> Target:
    """The same question as an Anthropic Messages client asks it (`/v1/messages`): on a model whose
    provider speaks chat completions, OneKey translates it both ways."""
    body = {"model": model, "max_tokens": 32, "temperature": 0.2, "system": "You are a helpful assistant.",
            "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}

    def build(b: dict) -> bytes:
        return build_request(host, port, "/v1/messages", key, b, {"anthropic-version": "2023-06-01"})

    return Target(name, host, port, build(body), build({**body, "stream": True}), stream_end=b"message_stop")


@dataclass(slots=True)
class Sample:
    """One answer: nanoseconds to the first body byte and to the end."""

    first_ns: int
    total_ns: int
    status: int
    body: bytes


_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END = range(5)


class ClientProtocol(asyncio.Protocol):
    """An incremental HTTP/1.1 response parser: Content-Length and chunked bodies."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future | None = None
        self._state = _HEAD
        self._need = 0
        self._status = 0
        self._body: list[bytes] = []
        self._sent = 0
        self._first = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError(f"connection closed mid-answer ({exc or 'EOF'})"))

    def request(self, data: bytes) -> asyncio.Future:
        """Send one request; the future resolves to a Sample."""
        if self.closed or self._transport is None:
            raise HttpError("connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._state, self._status, self._body, self._first = _HEAD, 0, [], 0
        self._sent = time.perf_counter_ns()
        self._transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buf = self._buf
        buf += data
        try:
            self._parse(buf, now)
        except (ValueError, HttpError) as exc:
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(HttpError(f"bad answer: {exc}"))
            self._transport.close()

    def _parse(self, buf: bytearray, now: int) -> None:
        while True:
            if self._state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                del buf[:end + 4]
                self._status = int(head[9:12])
                if b"\r\ntransfer-encoding: chunked" in head:
                    self._state = _CHUNK_SIZE
                else:
                    at = head.find(b"\r\ncontent-length:")
                    if at < 0:
                        raise HttpError("no content-length and not chunked")
                    stop = head.find(b"\r\n", at + 2)
                    self._need = int(head[at + 17: stop if stop >= 0 else None])
                    self._state = _LENGTH
            elif self._state == _LENGTH:
                if self._need and buf and not self._first:
                    self._first = now
                if len(buf) < self._need:
                    return
                self._body.append(bytes(buf[:self._need]))
                del buf[:self._need]
                self._done(now)
                return
            elif self._state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                del buf[:end + 2]
                if size == 0:
                    self._state = _CHUNK_END
                else:
                    self._need = size
                    self._state = _CHUNK_DATA
            elif self._state == _CHUNK_DATA:
                if buf and not self._first:
                    self._first = now
                if len(buf) < self._need + 2:
                    return
                self._body.append(bytes(buf[:self._need]))
                del buf[:self._need + 2]
                self._state = _CHUNK_SIZE
            else:  # _CHUNK_END: no trailers are sent by either server
                if len(buf) < 2:
                    return
                del buf[:2]
                self._done(now)
                return

    def _done(self, now: int) -> None:
        sent = self._sent
        sample = Sample((self._first or now) - sent, now - sent, self._status, b"".join(self._body))
        self._state = _HEAD
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(sample)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for a server about to be started)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def connect(t: Target) -> ClientProtocol:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(ClientProtocol, t.host, t.port)
    return proto


def _check(sample: Sample, stream: bool, events: int = 0, end: bytes = b"data: [DONE]") -> None:
    if sample.status != 200:
        raise HttpError(f"HTTP {sample.status}: {sample.body[:300]!r}")
    if stream:
        if end not in sample.body[-256:]:
            raise HttpError(f"stream did not end with [DONE]: {sample.body[-200:]!r}")
        got = sample.body.count(b'"content":') if events else 0
        if got < events:
            raise HttpError(f"a stream of {got} content events, not {events}")
    elif b'"usage"' not in sample.body:
        raise HttpError(f"answer without usage: {sample.body[:300]!r}")


@dataclass
class RunResult:
    """The samples of one run (nanoseconds, packed: a long run holds millions) and its wall time."""

    first_ns: array = field(default_factory=lambda: array("q"))
    total_ns: array = field(default_factory=lambda: array("q"))
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def count(self) -> int:
        return len(self.total_ns)


async def run(t: Target, *, concurrency: int, requests: int, seconds: float, stream: bool = False,
              long_stream: bool = False, result: RunResult | None = None) -> RunResult:
    """Send up to `requests` requests (and for at most `seconds`) over `concurrency` connections.

    `long_stream` sends the long stream's request (and checks all its content events arrived).
    """
    result = result or RunResult()
    stream = stream or long_stream
    data = t.long_stream_request if long_stream else t.stream_request if stream else t.request
    events = LONG_EVENTS if long_stream else 0
    conns = [await connect(t) for _ in range(concurrency)]
    remaining = requests
    deadline = time.perf_counter() + seconds
    first_error: list[BaseException] = []

    async def worker(conn: ClientProtocol) -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline and not first_error:
            remaining -= 1
            try:
                sample = await conn.request(data)
                _check(sample, stream, events, t.stream_end)
            except HttpError as exc:
                result.errors += 1
                if result.errors > 10:
                    first_error.append(exc)
                if conn.closed:
                    conn = await connect(t)
                continue
            result.first_ns.append(sample.first_ns)
            result.total_ns.append(sample.total_ns)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        result.elapsed_s += time.perf_counter() - started
        for c in conns:
            c.close()
    if first_error:
        raise first_error[0]
    return result


async def get(host: str, port: int, path: str) -> Sample:
    """One GET on a fresh connection (health checks, the upstream's counter)."""
    t = Target("get", host, port, f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode(), b"")
    conn = await connect(t)
    try:
        return await asyncio.wait_for(conn.request(t.request), 10)
    finally:
        conn.close()


async def arrivals(t: Target, timeout: float = 10.0) -> list[tuple[float, int]]:
    """Send the target's stream request on a fresh connection: (ms since sent, SSE events) per read."""
    reader, writer = await asyncio.open_connection(t.host, t.port)
    try:
        started = time.perf_counter()
        writer.write(t.stream_request)
        out, seen = [], b""
        async with asyncio.timeout(timeout):
            while not seen.endswith(b"0\r\n\r\n"):
                data = await reader.read(65536)
                if not data:
                    break
                out.append((round((time.perf_counter() - started) * 1000, 1), data.count(b"data:")))
                seen = seen[-16:] + data
        return out
    finally:
        writer.close()


def percentile(values: Sequence[int], p: float) -> float:
    """The p-th percentile (nearest rank) of nanosecond values, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1] / 1e6
