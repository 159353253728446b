"""The provider HTTP client's wire contract, against raw loopback servers that send crafted bytes.

Each server here is a few lines of asyncio streams, so a case controls the bytes exactly (framing,
splits across TCP writes, early closes, garbage) and counts its connections where reuse matters.
Any implementation of HttpClient / HttpResponse must pass these; the stream timeouts have their own
module (test_http_client.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import hashlib
import ipaddress
import os
import random
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from router_core.providers.base import UpstreamError
from router_core.providers.http import HttpClient, HttpResponse
from router_core.settings import Timeouts

TIMEOUTS = Timeouts(connect=2.0, first_byte=3.0, idle=3.0)
MiB = 1024 * 1024


# --- the raw server -------------------------------------------------------------------------


@dataclass
class Request:
    """One request as the server read it off the wire."""

    conn: int    # the index of the connection it came on (0 for the first accepted)
    method: str
    target: str
    head: bytes  # the request line and header lines exactly as received
    headers: list[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Conn:
    """One accepted connection, as a handler sees it."""

    def __init__(self, wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        self.wire = wire
        self.reader = reader
        self.writer = writer
        self.index = index

    async def request(self) -> Request | None:
        """The next request on this connection, or None once the client closed or broke it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head[:-4].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:])]
            req = Request(self.index, method, target, head, headers, b"")
            if any("chunked" in v.lower() for v in req.values("transfer-encoding")):
                req.body = await self._chunked_body()
            elif lengths := req.values("content-length"):
                req.body = await self.reader.readexactly(int(lengths[0]))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        self.wire.requests.append(req)
        return req

    async def _chunked_body(self) -> bytes:
        body = b""
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await self.reader.readexactly(size + 2))[:-2]
        while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return body

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def dribble(self, data: bytes) -> None:
        """Send one byte per TCP write, so the client's parser meets every possible split."""
        for i in range(len(data)):
            self.writer.write(data[i:i + 1])
            await asyncio.sleep(0.001)

    async def closed_by_client(self, timeout: float = 2.0) -> float | None:
        """When (loop time) the client closed or reset the connection; None if not within timeout."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except ConnectionError:
            pass
        except TimeoutError:
            return None
        return asyncio.get_running_loop().time()


Handler = Callable[[Conn], Awaitable[None]]


class Wire:
    """A raw server on 127.0.0.1: each accepted connection runs `handler`, then is closed."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None) -> None:
        self.handler = handler
        self.tls = tls
        self.accepted = 0
        self.requests: list[Request] = []
        self.tls_failures: list[Exception] = []
        self.errors: list[Exception] = []  # a handler's own failure: the test is wrong, not the client
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.accepted
        self.accepted += 1
        self._writers.append(writer)
        self._tasks.add(asyncio.current_task())
        try:
            if self.tls is not None:
                try:
                    await writer.start_tls(self.tls)
                except (ssl.SSLError, OSError) as exc:
                    self.tls_failures.append(exc)
                    return
            await self.handler(Conn(self, reader, writer, index))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:
            self.errors.append(exc)
        finally:
            writer.close()

    async def stop(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture
async def serve():
    """Start raw servers: `wire = await serve(handler)`; stopped after the test."""
    wires: list[Wire] = []

    async def start(handler: Handler, tls: ssl.SSLContext | None = None) -> Wire:
        wire = Wire(handler, tls)
        await wire.start()
        wires.append(wire)
        return wire

    yield start
    for wire in wires:
        await wire.stop()
    for wire in wires:
        for exc in wire.errors:
            raise exc


@contextlib.asynccontextmanager
async def open_client(timeouts: Timeouts = TIMEOUTS, **kwargs):
    client = HttpClient(timeouts, **kwargs)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def client():
    async with open_client() as client:
        yield client


# --- what servers send ---------------------------------------------------------------------


def head(status: str = "200 OK", headers: tuple[tuple[str, str], ...] = (), version: str = "HTTP/1.1") -> bytes:
    lines = [f"{version} {status}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response(body: bytes = b"", status: str = "200 OK", headers: tuple[tuple[str, str], ...] = (),
             version: str = "HTTP/1.1") -> bytes:
    """A whole response framed by Content-Length."""
    return head(status, (*headers, ("Content-Length", str(len(body)))), version) + body


def chunked_head(status: str = "200 OK", headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    return head(status, (*headers, ("Transfer-Encoding", "chunked")))


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


def answering(make: Callable[[Request], bytes]) -> Handler:
    """A keep-alive server: each request on a connection is answered with make(request)."""

    async def handler(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            conn.send(make(req))

    return handler


async def consume(resp: HttpResponse, how: str) -> bytes:
    if how == "read":
        return await resp.read()
    return b"".join([data async for data in resp.chunks()])


async def fetch(client: HttpClient, url: str, method: str = "POST", body: bytes | None = b"{}",
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One whole exchange, released the way the core releases a response (close in finally)."""
    resp = await client.request(method, url, body, headers or {})
    try:
        return resp.status, await resp.read()
    finally:
        resp.close()


BOTH_WAYS = pytest.mark.parametrize("how", ["read", "chunks"])


# --- 1. framing: Content-Length, chunked, streams ----------------------------------------------


@BOTH_WAYS
async def test_a_content_length_body(serve, client, how):
    wire = await serve(answering(lambda req: response(b"hello world", headers=(("Content-Type", "text/plain"),))))
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert resp.status == 200
        assert await consume(resp, how) == b"hello world"
    finally:
        resp.close()


CHUNKED_PARTS = (b"hello ", b"x" * 300, b"world")
# A chunk extension on the second chunk and a trailer after the last: both legal, both to be skipped.
CHUNKED_BODY = (chunk(CHUNKED_PARTS[0]) + b"12c;note=ext\r\n" + CHUNKED_PARTS[1] + b"\r\n"
                + chunk(CHUNKED_PARTS[2]) + b"0\r\nX-Trailer: t\r\n\r\n")


@BOTH_WAYS
async def test_a_chunked_body_and_the_connection_after_it(serve, client, how):
    wire = await serve(answering(lambda req: chunked_head() + CHUNKED_BODY))
    for _ in range(2):  # the second answer parses only if the first one's framing was consumed exactly
        resp = await client.request("POST", wire.url(), b"{}", {})
        try:
            assert resp.status == 200
            assert await consume(resp, how) == b"".join(CHUNKED_PARTS)
        finally:
            resp.close()
    assert wire.accepted == 1


@BOTH_WAYS
async def test_a_chunked_answer_sent_one_byte_per_tcp_write(serve, client, how):
    parts = (b"hello ", b"y" * 26, b"world")  # 26 = "1a": a two-digit size line, split too

    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.dribble(chunked_head(headers=(("Content-Type", "text/plain"),))
                           + b"".join(chunk(p) for p in parts) + LAST_CHUNK)

    wire = await serve(handler)
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert resp.status == 200 and resp.headers.get("content-type") == "text/plain"
        assert await consume(resp, how) == b"".join(parts)
    finally:
        resp.close()


async def next_until(stream, complete: Callable[[bytes], bool], timeout: float = 2.0) -> bytes:
    """Data from the stream until `complete` holds for what came (a client may split an event)."""
    got = b""
    async with asyncio.timeout(timeout):
        while not complete(got):
            got += await anext(stream)
    return got


async def test_chunks_yields_each_sse_event_as_it_comes(serve, client):
    first = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    second = b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n'
    go_on = asyncio.Event()

    async def handler(conn: Conn) -> None:
        await conn.request()
        conn.send(chunked_head(headers=(("Content-Type", "text/event-stream"),)) + chunk(first))
        await go_on.wait()  # the second event only once the client has the first
        conn.send(chunk(second) + chunk(b"data: [DONE]\n\n") + LAST_CHUNK)
        await conn.closed_by_client()

    wire = await serve(handler)
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert resp.headers.get("Content-Type") == "text/event-stream"
        stream = resp.chunks()
        assert await next_until(stream, lambda got: len(got) >= len(first)) == first
        go_on.set()
        rest = b"".join([data async for data in stream])
        assert rest == second + b"data: [DONE]\n\n"
    finally:
        resp.close()


async def test_request_returns_with_the_head_before_the_body_is_sent(serve, client):
    go_on = asyncio.Event()

    async def handler(conn: Conn) -> None:
        await conn.request()
        conn.send(head(headers=(("Content-Length", "5"),)))
        await go_on.wait()
        conn.send(b"later")
        await conn.closed_by_client()

    wire = await serve(handler)
    async with asyncio.timeout(2.0):
        resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert resp.status == 200
        go_on.set()
        assert await resp.read() == b"later"
    finally:
        resp.close()


# --- 2. a body delimited by the close of the connection ----------------------------------------


@BOTH_WAYS
async def test_a_close_delimited_body_is_read_in_full(serve, client, how):
    async def handler(conn: Conn) -> None:
        if await conn.request() is None:
            return
        conn.send(head(headers=(("Connection", "close"), ("Content-Type", "text/plain"))) + b"first part, ")
        await asyncio.sleep(0.02)
        conn.send(b"second part")
        # returning closes the connection: the end of the body

    wire = await serve(handler)
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert resp.status == 200
        assert await consume(resp, how) == b"first part, second part"
    finally:
        resp.close()
    assert await fetch(client, wire.url()) == (200, b"first part, second part")  # on a new connection
    assert wire.accepted == 2


# --- 3. keep-alive and the pool ------------------------------------------------------------------


@BOTH_WAYS
async def test_a_fully_read_body_leaves_its_connection_for_the_next_request(serve, client, how):
    wire = await serve(answering(lambda req: response(f"answer {len(wire.requests)}".encode())))
    for n in (1, 2, 3):
        resp = await client.request("POST", wire.url(), b"{}", {})
        try:
            assert await consume(resp, how) == f"answer {n}".encode()
        finally:
            resp.close()
    assert wire.accepted == 1
    assert [req.conn for req in wire.requests] == [0, 0, 0]


async def test_closing_a_response_mid_body_then_the_next_request_works_on_a_new_connection(serve, client):
    async def handler(conn: Conn) -> None:
        if conn.index == 0:
            await conn.request()
            conn.send(head(headers=(("Content-Length", "1000"),)) + b"0123456789")
            await conn.closed_by_client()
        else:
            await answering(lambda req: response(b"fresh"))(conn)

    wire = await serve(handler)
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert await next_until(resp.chunks(), lambda got: len(got) >= 10) == b"0123456789"
    finally:
        resp.close()
    assert await fetch(client, wire.url()) == (200, b"fresh")
    assert wire.accepted == 2


@pytest.mark.parametrize("version, headers", [("HTTP/1.1", (("Connection", "close"),)), ("HTTP/1.0", ())],
                         ids=["connection-close", "http-1.0"])
async def test_an_answer_that_ends_its_connection_is_not_reused(serve, client, version, headers):
    # The server keeps the socket open and would answer on it: only the header says not to reuse.
    async def handler(conn: Conn) -> None:
        if conn.index == 0:
            await conn.request()
            conn.send(response(b"first", headers=headers, version=version))
            await answering(lambda req: response(b"stale"))(conn)
        else:
            await answering(lambda req: response(b"fresh"))(conn)

    wire = await serve(handler)
    assert await fetch(client, wire.url()) == (200, b"first")
    assert await fetch(client, wire.url()) == (200, b"fresh")
    assert wire.accepted == 2


async def test_a_server_that_closes_its_idle_connection_right_after_answering(serve, client):
    async def handler(conn: Conn) -> None:
        if await conn.request() is not None:
            conn.send(response(b"ok"))  # keep-alive by default, then closed at once

    wire = await serve(handler)
    for _ in range(3):
        assert await fetch(client, wire.url()) == (200, b"ok")
    assert wire.accepted == 3


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_reused_connection_that_fails_before_any_answer_byte_is_retried_once(serve, client, method, how):
    # Deterministic form of the race where a kept-alive connection is closed by the server just
    # as the client sends on it: the server reads the second request, then drops the connection.
    async def handler(conn: Conn) -> None:
        if conn.index == 0:
            await conn.request()
            conn.send(response(b"first"))
            await conn.request()
            if how == "reset":
                conn.writer.transport.abort()
        else:
            await answering(lambda req: response(b"fresh"))(conn)

    wire = await serve(handler)
    body = None if method == "GET" else b'{"n":1}'
    assert await fetch(client, wire.url(), method, body) == (200, b"first")
    assert await fetch(client, wire.url(), method, body) == (200, b"fresh")
    assert wire.accepted == 2
    assert [req.conn for req in wire.requests] == [0, 0, 1]
    assert [req.body for req in wire.requests] == [body or b""] * 3  # the retry resends the whole body


async def test_a_reused_connection_that_broke_mid_answer_is_not_retried(serve, client):
    async def handler(conn: Conn) -> None:
        await conn.request()
        conn.send(response(b"first"))
        if await conn.request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Le")  # then closed: the provider had begun answering

    wire = await serve(handler)
    assert await fetch(client, wire.url()) == (200, b"first")
    with pytest.raises(UpstreamError) as info:
        await fetch(client, wire.url())
    assert info.value.status == 502
    assert wire.accepted == 1


async def test_the_retry_on_a_fresh_connection_is_the_last_one(serve, client):
    async def handler(conn: Conn) -> None:
        await conn.request()
        if conn.index == 0:
            conn.send(response(b"first"))
            await conn.request()
        # then closed without an answer, on every connection

    wire = await serve(handler)
    assert await fetch(client, wire.url()) == (200, b"first")
    with pytest.raises(UpstreamError) as info:
        await fetch(client, wire.url())
    assert info.value.status == 502
    assert wire.accepted <= 2


# --- 4. no answer, a closed connection, nobody listening -----------------------------------------


async def test_a_server_that_never_answers_is_an_upstream_timeout_after_first_byte(serve):
    async def handler(conn: Conn) -> None:
        await conn.request()
        await conn.closed_by_client(timeout=10.0)

    wire = await serve(handler)
    async with open_client(Timeouts(connect=2.0, first_byte=0.3, idle=5.0)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as info:
            await client.request("POST", wire.url(), b"{}", {})
        elapsed = time.monotonic() - started
    assert (info.value.status, info.value.code) == (504, "upstream_timeout")
    assert 0.25 <= elapsed < 2.0
    assert len(wire.requests) == 1  # it did send the request


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_fresh_connection_closed_after_the_request_is_a_502(serve, client, how):
    async def handler(conn: Conn) -> None:
        await conn.request()
        if how == "reset":
            conn.writer.transport.abort()

    wire = await serve(handler)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await client.request("POST", wire.url(), b"{}", {})
    assert info.value.status == 502
    assert time.monotonic() - started < 2.0  # not the first-byte limit (3 s)


async def test_nobody_listening_is_upstream_unreachable(client):
    with socket.socket() as sock:  # bound, not listening: the port is ours and refuses
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(UpstreamError) as info:
            await client.request("POST", f"http://127.0.0.1:{port}/v1/chat/completions", b"{}", {})
    assert (info.value.status, info.value.code) == (502, "upstream_unreachable")


# --- 5. statuses and headers --------------------------------------------------------------------


@pytest.mark.parametrize("status", ["400 Bad Request", "429 Too Many Requests", "500 Internal Server Error"])
async def test_error_statuses_are_answers_not_exceptions(serve, client, status):
    body = b'{"error":{"message":"no","type":"x"}}'
    wire = await serve(answering(lambda req: response(body, status, (("Content-Type", "application/json"),))))
    assert await fetch(client, wire.url()) == (int(status[:3]), body)


async def test_a_redirect_is_an_answer_not_followed(serve, client):
    wire = await serve(answering(lambda req: response(b"moved", "307 Temporary Redirect",
                                                      (("Location", "/elsewhere"),))))
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert (resp.status, resp.headers.get("location")) == (307, "/elsewhere")
        assert await resp.read() == b"moved"
    finally:
        resp.close()
    assert [req.target for req in wire.requests] == ["/v1/chat/completions"]


async def test_headers_are_case_insensitive_and_repeated_ones_all_kept(serve, client):
    wire = await serve(answering(lambda req: response(b"{}", headers=(
        ("content-TYPE", "application/json"), ("X-Request-Id", "req_1"),
        ("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Retry-After", "7")))))
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert resp.headers.get("Content-Type") == "application/json"
        assert resp.headers.get("content-type") == "application/json"
        assert resp.headers.get("x-request-id") == resp.headers.get("X-REQUEST-ID") == "req_1"
        assert resp.headers.get("retry-after") == "7"
        assert resp.headers.get("x-absent") is None
        items = [(k.lower(), v) for k, v in resp.headers.items()]
        assert [v for k, v in items if k == "set-cookie"] == ["a=1", "b=2"]
        assert ("x-request-id", "req_1") in items
    finally:
        resp.close()


async def test_interim_1xx_answers_are_skipped(serve, client):
    wire = await serve(answering(lambda req: (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        + head("103 Early Hints", (("Link", "</style.css>; rel=preload"),))
        + response(b"final", headers=(("X-Final", "yes"),)))))
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert resp.status == 200
        assert resp.headers.get("x-final") == "yes" and resp.headers.get("link") is None
        assert await resp.read() == b"final"
    finally:
        resp.close()
    assert await fetch(client, wire.url()) == (200, b"final")  # the framing after them held
    assert wire.accepted == 1


async def test_a_204_has_no_body_and_keeps_its_connection(serve, client):
    # No Content-Length and no close: a 204 must not be read as a close-delimited body.
    wire = await serve(answering(lambda req: head("204 No Content")))
    async with asyncio.timeout(2.0):
        assert await fetch(client, wire.url(), "DELETE", None) == (204, b"")
        assert await fetch(client, wire.url(), "DELETE", None) == (204, b"")
    assert wire.accepted == 1


# --- 6. broken answers ---------------------------------------------------------------------------


def truncated(framing: str) -> tuple[bytes, bytes]:
    """(bytes to send before closing, the body bytes among them)."""
    sent = bytes(range(50))
    if framing == "content-length":
        return head(headers=(("Content-Length", "100"),)) + sent, sent
    return chunked_head() + chunk(sent) + b"32\r\n", sent  # a second chunk announced, never sent


async def truncated_answer(serve, client, framing: str):
    """A response whose body the server cuts short, and the body bytes that did come."""
    raw, sent = truncated(framing)

    async def handler(conn: Conn) -> None:
        await conn.request()
        conn.send(raw)

    wire = await serve(handler)
    return await client.request("POST", wire.url(), b"{}", {}), sent


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_truncated_body_fails_read_with_a_502(serve, client, framing):
    resp, _ = await truncated_answer(serve, client, framing)
    try:
        with pytest.raises(UpstreamError) as info:
            await resp.read()
    finally:
        resp.close()
    assert info.value.status == 502


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_truncated_body_yields_what_came_then_fails(serve, client, framing):
    resp, sent = await truncated_answer(serve, client, framing)
    got = []
    try:
        with pytest.raises(UpstreamError) as info:
            async for data in resp.chunks():
                got.append(data)
    finally:
        resp.close()
    assert b"".join(got) == sent
    assert info.value.status == 502


@pytest.mark.parametrize("garbage", [
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    b"\x16\x03\x01\x00\x2a\x02\x00\x00\x26\x03\x03" + bytes(32),  # a TLS server hello to a plain client
], ids=["ssh-banner", "bad-status-code", "tls-bytes"])
async def test_garbage_instead_of_a_status_line_is_a_502(serve, client, garbage):
    async def handler(conn: Conn) -> None:
        await conn.request()
        conn.send(garbage)
        await conn.closed_by_client(timeout=5.0)  # the connection stays open: the client must give up by itself

    wire = await serve(handler)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await client.request("POST", wire.url(), b"{}", {})
    assert info.value.status == 502
    assert time.monotonic() - started < 2.0  # not the first-byte limit (3 s)


async def test_endless_response_headers_are_refused_early(serve, client):
    broke_off = asyncio.get_running_loop().create_future()

    async def handler(conn: Conn) -> None:
        await conn.request()
        conn.send(b"HTTP/1.1 200 OK\r\n")
        block = (b"X-Filler: " + b"f" * 88 + b"\r\n") * 655  # 655 header lines of 100 bytes, 64 KiB
        try:
            for _ in range(64 * MiB // len(block)):  # far beyond any sane bound, never ending the head
                conn.send(block)
                await conn.writer.drain()
        except ConnectionError:
            broke_off.set_result(True)  # the client closed: it stopped taking headers
        else:
            broke_off.set_result(False)

    wire = await serve(handler)
    with pytest.raises(UpstreamError) as info:
        await client.request("POST", wire.url(), b"{}", {})
    assert info.value.status == 502  # refused for size, not timed out after buffering it all
    assert await asyncio.wait_for(broke_off, 5.0) is True


# --- 7. compressed bodies ------------------------------------------------------------------------

PLAIN = b'{"choices":[{"message":{"content":"compressible compressible compressible"}}]}\n' * 200


@pytest.mark.parametrize("encoding, compress", [("gzip", gzip.compress), ("deflate", zlib.compress)],
                         ids=["gzip", "deflate"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@BOTH_WAYS
async def test_a_compressed_body_comes_out_decompressed(serve, client, encoding, compress, framing, how):
    packed = compress(PLAIN)
    headers = (("Content-Encoding", encoding), ("Content-Type", "application/json"))
    if framing == "content-length":
        raw = response(packed, headers=headers)
    else:  # the compressed stream cut at arbitrary points across chunks
        cuts = [0, 7, len(packed) // 2, len(packed)]
        raw = chunked_head(headers=headers) + b"".join(chunk(packed[a:b]) for a, b in zip(cuts, cuts[1:])) + LAST_CHUNK
    wire = await serve(answering(lambda req: raw))
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        assert resp.status == 200
        assert await consume(resp, how) == PLAIN
    finally:
        resp.close()


# --- 8. what the server receives -----------------------------------------------------------------


async def test_the_request_on_the_wire(serve, client):
    wire = await serve(answering(lambda req: response(b"ok")))
    body = '{"model":"m","input":"héllo"}'.encode()
    headers = {"Authorization": "Bearer sk-test", "Content-Type": "application/json",
               "anthropic-version": "2023-06-01"}
    # Escapes whose meaning differs from the character they stand for must reach the server as sent.
    target = "/v1beta/models/m:streamGenerateContent?alt=sse&key=a%2Bb%26c%3Dd%20e+f"
    resp = await client.post(wire.url(target), body, headers)
    try:
        assert await resp.read() == b"ok"
    finally:
        resp.close()
    [req] = wire.requests
    assert (req.method, req.target) == ("POST", target)
    assert req.head.startswith(f"POST {target} HTTP/1.1\r\n".encode())
    assert req.values("host") == [f"127.0.0.1:{wire.port}"]
    assert req.values("content-length") == [str(len(body))]
    assert req.values("transfer-encoding") == []
    for name, value in headers.items():
        assert req.values(name) == [value]
    assert req.body == body


async def test_a_large_request_body_arrives_whole(serve, client):
    body = os.urandom(4 * MiB)  # a long conversation: more than any socket buffer takes at once

    async def handler(conn: Conn) -> None:
        await asyncio.sleep(0.05)  # a server slow to start reading: the client must wait, not drop
        while (req := await conn.request()) is not None:
            conn.send(response(hashlib.sha256(req.body).hexdigest().encode()))

    wire = await serve(handler)
    assert await fetch(client, wire.url(), body=body) == (200, hashlib.sha256(body).hexdigest().encode())
    [req] = wire.requests
    assert req.values("content-length") == [str(len(body))]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_a_request_without_a_body_sends_none(serve, client, method):
    trailing = []

    async def handler(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            try:  # anything the client sends after the head before our answer would be a body
                trailing.append(await asyncio.wait_for(conn.reader.read(1), 0.1))
            except TimeoutError:
                pass
            conn.send(response(b"{}"))

    wire = await serve(handler)
    assert await fetch(client, wire.url("/v1/responses/resp_1"), method, None) == (200, b"{}")
    [req] = wire.requests
    assert (req.method, req.target) == (method, "/v1/responses/resp_1")
    assert req.values("content-length") in ([], ["0"])
    assert req.values("transfer-encoding") == []
    assert req.body == b"" and trailing == []


@pytest.mark.parametrize("headers", [
    {"X-Evil": "a\r\nX-Injected: 1"},
    {"X-Evil": "a\nX-Injected: 1"},
    {"X-Evil": "a\rX-Injected: 1"},
    {"X-Evil\r\nX-Injected": "1"},
], ids=["crlf-in-value", "lf-in-value", "cr-in-value", "crlf-in-name"])
async def test_a_header_with_cr_or_lf_never_injects_a_header_line(serve, client, headers):
    wire = await serve(answering(lambda req: response(b"ok")))
    try:
        await fetch(client, wire.url(), headers=headers)
    except (UpstreamError, ValueError):
        pass  # refusing the call is fine; sending the injected line is not
    for req in wire.requests:
        lines = req.head.replace(b"\r\n", b"\n").replace(b"\r", b"\n").lower().split(b"\n")
        assert not any(line.startswith(b"x-injected") for line in lines), req.head
    assert await fetch(client, wire.url()) == (200, b"ok")  # and the client still works


# --- 9. closing mid-stream ------------------------------------------------------------------------


@pytest.mark.parametrize("after_first_chunk", [True, False], ids=["after-a-chunk", "before-reading"])
async def test_closing_a_response_mid_stream_closes_the_connection_at_once(serve, client, after_first_chunk):
    seen = asyncio.get_running_loop().create_future()

    async def handler(conn: Conn) -> None:
        await conn.request()
        conn.send(chunked_head(headers=(("Content-Type", "text/event-stream"),)) + chunk(b"data: 1\n\n"))
        seen.set_result(await conn.closed_by_client(timeout=3.0))

    wire = await serve(handler)
    resp = await client.request("POST", wire.url(), b"{}", {})
    if after_first_chunk:
        await next_until(resp.chunks(), lambda got: len(got) >= 9)
    resp.close()
    closed_at = asyncio.get_running_loop().time()
    eof_at = await seen
    assert eof_at is not None, "the server never saw the connection closed"
    assert eof_at - closed_at < 0.5


# --- 10. concurrency ------------------------------------------------------------------------------


async def test_concurrent_requests_each_get_their_own_answer_and_connections_are_reused(serve, client):
    delays = random.Random(7)

    async def handler(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            ident = req.values("x-id")[0]
            await asyncio.sleep(delays.random() * 0.01)  # answers finish out of order
            conn.send(response(ident.encode() * (int(ident) % 7 + 1), headers=(("X-Echo", ident),)))

    wire = await serve(handler)

    async def one(ident: int) -> None:
        resp = await client.request("POST", wire.url(), f'{{"id":{ident}}}'.encode(), {"X-Id": str(ident)})
        try:
            assert resp.headers.get("x-echo") == str(ident)
            assert await resp.read() == str(ident).encode() * (ident % 7 + 1)
        finally:
            resp.close()

    await asyncio.gather(*(one(i) for i in range(50)))
    first_batch = wire.accepted
    assert 1 <= first_batch <= 50
    assert sorted(int(req.values("x-id")[0]) for req in wire.requests) == list(range(50))
    assert all(req.body == f'{{"id":{req.values("x-id")[0]}}}'.encode() for req in wire.requests)
    for i in range(50, 60):
        await one(i)
    assert wire.accepted == first_batch  # sequential requests find an idle connection
    await asyncio.gather(*(one(i) for i in range(60, 110)))
    assert wire.accepted - first_batch < 50  # a second burst reuses pooled connections


# --- 11. TLS ---------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_pem: str
    good: ssl.SSLContext         # a server certificate for 127.0.0.1 and localhost
    wrong_name: ssl.SSLContext   # signed by the same CA, for another name

    def trusting(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _server_context(tmp, tag, ca_key, ca_cert, sans: list[x509.GeneralName]) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(f"onekey test server {tag}")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = tmp / f"{tag}.crt", tmp / f"{tag}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    """A throwaway CA and server certificates it signed, made for this module only."""
    tmp = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert = (x509.CertificateBuilder()
               .subject_name(_name("onekey test CA")).issuer_name(_name("onekey test CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    good = _server_context(tmp, "good", ca_key, ca_cert,
                           [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    wrong = _server_context(tmp, "wrong", ca_key, ca_cert, [x509.DNSName("provider.invalid")])
    return Pki(ca_cert.public_bytes(serialization.Encoding.PEM).decode(), good, wrong)


async def test_https_with_a_context_trusting_the_server_s_ca(serve, pki):
    wire = await serve(answering(lambda req: response(b'{"tls":true}')), tls=pki.good)
    async with open_client(ssl_context=pki.trusting()) as client:
        assert await fetch(client, wire.url()) == (200, b'{"tls":true}')
        assert await fetch(client, wire.url()) == (200, b'{"tls":true}')
    assert wire.accepted == 1 and wire.tls_failures == []
    assert len(wire.requests) == 2 and wire.requests[0].body == b"{}"


async def wait_for_tls_failure(wire: Wire) -> None:
    async with asyncio.timeout(2.0):
        while not wire.tls_failures:
            await asyncio.sleep(0.01)


async def test_https_with_default_verification_refuses_an_unknown_ca(serve, client, pki):
    wire = await serve(answering(lambda req: response(b"secret")), tls=pki.good)
    with pytest.raises(UpstreamError) as info:
        await client.request("POST", wire.url(), b"{}", {})
    assert info.value.status == 502
    await wait_for_tls_failure(wire)
    assert wire.requests == []


async def test_https_refuses_a_trusted_certificate_for_another_name(serve, pki):
    wire = await serve(answering(lambda req: response(b"secret")), tls=pki.wrong_name)
    async with open_client(ssl_context=pki.trusting()) as client:
        with pytest.raises(UpstreamError) as info:
            await client.request("POST", wire.url(), b"{}", {})
    assert info.value.status == 502
    await wait_for_tls_failure(wire)
    assert wire.requests == []


# --- 12. large bodies --------------------------------------------------------------------------------

BIG = os.urandom(8 * MiB)  # random: a reordered or repeated piece would not go unnoticed


def big_answer(framing: str) -> bytes:
    if framing == "content-length":
        return response(BIG, headers=(("Content-Type", "application/octet-stream"),))
    step = 64 * 1024 + 3  # chunk boundaries that never line up with read sizes
    return chunked_head() + b"".join(chunk(BIG[i:i + step]) for i in range(0, len(BIG), step)) + LAST_CHUNK


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_large_body_read_whole(serve, client, framing):
    raw = big_answer(framing)
    wire = await serve(answering(lambda req: raw))
    status, body = await fetch(client, wire.url())
    assert status == 200 and len(body) == len(BIG)
    assert hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_large_body_through_a_slow_consumer(serve, client, framing):
    raw = big_answer(framing)
    wire = await serve(answering(lambda req: raw))
    resp = await client.request("POST", wire.url(), b"{}", {})
    got, since_pause = bytearray(), 0
    try:
        async for data in resp.chunks():
            got += data
            since_pause += len(data)
            if since_pause >= MiB:  # the consumer stops now and then: the sender must wait, not lose data
                since_pause = 0
                await asyncio.sleep(0.02)
    finally:
        resp.close()
    assert len(got) == len(BIG)
    assert hashlib.sha256(got).digest() == hashlib.sha256(BIG).digest()


async def test_a_consumer_that_does_not_read_holds_the_sender_back(serve, client):
    # Flow control: while nobody reads the body, the client must stop taking it off the socket
    # rather than buffer a whole (here 32 MiB) answer in memory.
    size, block = 32 * MiB, os.urandom(256 * 1024)
    sent = [0]
    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)

    async def handler(conn: Conn) -> None:
        await conn.request()
        conn.send(head(headers=(("Content-Length", str(size)),)))
        for _ in range(size // len(block)):
            conn.send(block)
            await conn.writer.drain()
            sent[0] += len(block)
        await conn.closed_by_client()

    wire = await serve(handler)
    resp = await client.request("POST", wire.url(), b"{}", {})
    try:
        await asyncio.sleep(0.3)
        assert sent[0] < size // 2, f"{sent[0]} bytes were taken with nobody reading"
        got = hashlib.sha256()
        total = 0
        async for data in resp.chunks():
            got.update(data)
            total += len(data)
    finally:
        resp.close()
    assert total == size and got.digest() == digest.digest()
