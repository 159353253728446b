"""Reading a request body: size limits, a deadline, and Content-Encoding, all in one place.

aiohttp would decompress a coded body itself (and, on a malformed one, fail with a 500). The
edge turns that off (`auto_decompress=False`) and decodes here instead: `gzip` and `deflate`
are accepted, streamed through zlib with the body limit applied to the *decoded* bytes, so a
small bomb is refused with 413 without its output ever being held; a corrupt or truncated
coded body is a 400 and any other coding a 415. The JSON inside is parsed by the core.
"""
from __future__ import annotations

import asyncio
import zlib

from aiohttp import StreamReader, web

# zlib window bits per coding: 16+ reads a gzip wrapper, plain MAX_WBITS a zlib one (RFC 9110's
# "deflate"). "identity" means no coding.
CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
READ_CHUNK = 64 * 1024


class BodyError(Exception):
    """A body the edge refuses; status and code say why (never the body's bytes)."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _too_large(limit: int, decoded: bool = False) -> BodyError:
    what = "decoded request body" if decoded else "request body"
    return BodyError(413, f"The {what} is larger than the limit of {limit} bytes.", "request_too_large")


def _decoder(header: str | None):
    """A zlib decompressor for the Content-Encoding header, None for identity."""
    codings = [c.strip().lower() for c in (header or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in CODINGS:
        raise BodyError(415, "Unsupported Content-Encoding: send the body as is, or with gzip or deflate.",
                        "unsupported_content_encoding")
    return zlib.decompressobj(CODINGS[codings[0]])


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The body, decoded; raises BodyError (413, 400, 415, 408) and nothing else of its own."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    decoder = _decoder(request.headers.get("Content-Encoding"))
    content = request.content
    try:
        if content.is_eof():
            # The whole body came with the head (the usual case): nothing to wait for, no deadline.
            return _whole(content.read_nowait(), limit, decoder)
        try:
            async with asyncio.timeout(timeout):
                return await _read(content, limit, decoder)
        except TimeoutError:
            raise BodyError(408, f"The request body did not arrive within {timeout:g} seconds.",
                            "request_timeout") from None
    except zlib.error:
        raise BodyError(400, "The request body does not match its Content-Encoding.",
                        "invalid_content_encoding") from None
    except web.RequestPayloadError:
        # Framing gone wrong (a bad chunk size, fewer bytes than Content-Length said).
        raise BodyError(400, "The request body is malformed or ended early.", "invalid_body") from None


def _whole(data: bytes, limit: int, decoder) -> bytes:
    if len(data) > limit:
        raise _too_large(limit)
    if decoder is None:
        return data
    out = bytearray()
    _inflate(out, data, limit, decoder)
    return _flushed(out, limit, decoder)


async def _read(content: StreamReader, limit: int, decoder) -> bytes:
    raw = 0
    out = bytearray()
    async for chunk in content.iter_chunked(READ_CHUNK):
        raw += len(chunk)
        if raw > limit:
            raise _too_large(limit)
        if decoder is None:
            out += chunk
        else:
            _inflate(out, chunk, limit, decoder)
    return bytes(out) if decoder is None else _flushed(out, limit, decoder)


def _inflate(out: bytearray, chunk: bytes, limit: int, decoder) -> None:
    # max_length: never inflate more than one byte past the limit from any chunk.
    out += decoder.decompress(chunk, limit - len(out) + 1)
    if len(out) > limit or decoder.unconsumed_tail:
        raise _too_large(limit, decoded=True)


def _flushed(out: bytearray, limit: int, decoder) -> bytes:
    out += decoder.flush(limit - len(out) + 1)
    if len(out) > limit:
        raise _too_large(limit, decoded=True)
    if not decoder.eof or decoder.unused_data:
        raise BodyError(400, "The coded request body is truncated or has bytes after its end.",
                        "invalid_content_encoding")
    return bytes(out)
