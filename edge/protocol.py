"""The edge's HTTP connection handling: OpenAI-shaped answers to requests aiohttp's parser
refuses, and the listening site that uses them.

aiohttp answers a malformed request (a bad header line, a header over the size limit) from
inside its protocol, before any middleware, with a text/plain body that quotes the offending
line — which may hold a key, and then sits in the logs of every proxy in between. The edge's
protocol answers with an OpenAI-shaped JSON error instead that names the fault, never the bytes.
"""
from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from edge.errors import error_body

logger = logging.getLogger(__name__)

# aiohttp's parser quotes the refused line as b'Name: value': a credential header is told
# apart by its name (and then answered like any bad key), never echoed.
_CREDENTIAL_LINE = re.compile(r"""b['"](?:authorization|x-api-key)\s*:""", re.IGNORECASE)


class EdgeRequestHandler(web.RequestHandler):
    """aiohttp's connection handler with the edge's answer to a request it cannot parse."""

    __slots__ = ()

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer has begun: nothing more can be said
            raise ConnectionError("response already started")
        if isinstance(exc, LineTooLong):
            status, text, code = 431, "A request header or the request line is too large.", "header_too_large"
        elif isinstance(exc, BadHttpMessage) and _CREDENTIAL_LINE.search(exc.message or ""):
            status, text, code = 401, "Incorrect API key provided: it is not a OneKey key.", "invalid_api_key"
        elif isinstance(exc, BadHttpMessage) or 400 <= status < 500:
            status, text, code = 400, "The HTTP request is malformed and was not read.", "malformed_request"
        else:
            status, text, code = 500, "internal error", "internal_error"
        # The type only: the exception's text quotes the raw line.
        logger.info("malformed HTTP request refused: status=%d error=%s", status,
                    type(exc).__name__ if exc is not None else "none")
        resp = web.Response(status=status, body=error_body(text, "invalid_request_error" if status < 500
                                                           else "api_error", code),
                            content_type="application/json")
        resp.force_close()
        return resp


# Connections the kernel completes before the edge accepts them. asyncio's default (100) drops
# the SYNs of a burst beyond it, and each dropped client waits a second or more to retry (200
# clients connecting at once timed out their connect under load); the kernel caps the value
# at net.core.somaxconn.
BACKLOG = 1024


class EdgeSite(web.BaseSite):
    """A TCP site whose connections use EdgeRequestHandler."""

    __slots__ = ("_host", "_port", "_handler_kwargs")

    def __init__(self, runner: web.AppRunner, host: str, port: int, **handler_kwargs) -> None:
        super().__init__(runner)
        self._host, self._port, self._handler_kwargs = host, port, handler_kwargs

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: EdgeRequestHandler(server, loop=loop, **self._handler_kwargs),
            self._host, self._port, reuse_address=True, backlog=BACKLOG)
