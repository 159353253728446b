"""The edge's app factory and its run loop."""
from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web

from edge import anthropic, handlers
from edge.errors import error_response
from edge.core import Core, GrpcCore
from edge.deadlines import Deadlines
from edge.keys import CORE, CORE_DEADLINES, METRICS, METRICS_SERVER, SETTINGS
from edge.metrics import EdgeMetrics, MetricsServer, hide_protocol_server_version, hide_server_version
from edge.overload import InFlight, in_flight_bound
from edge.protocol import EdgeSite
from edge.settings import EdgeSettings

logger = logging.getLogger(__name__)


@web.middleware
async def openai_errors(request: web.Request, handler):
    """Every answer is OpenAI-shaped, even for unknown URLs and unexpected failures."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"{exc.reason}: {request.method} {request.path}"
        if anthropic.is_anthropic_path(request.path):
            return anthropic.error_response(exc.status, anthropic.error_type(exc.status), message)
        code = {404: "unknown_url", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status)
        return error_response(exc.status, message, "invalid_request_error", code)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as exc:
        logger.error("unexpected error: path=%s error=%s", request.path, type(exc).__name__)
        if anthropic.is_anthropic_path(request.path):
            return anthropic.error_response(500, "api_error", "internal error")
        return error_response(500, "internal error", "api_error", "internal_error")


# Every API route is served under /v1 and under the bare path: OneKey's documents give the
# base URL as the bare host, and tools that take a "custom OpenAI endpoint" are set up both ways.
API_PREFIXES = ("/v1", "")
LINGER_S = 1.0


def add_api_route(app: web.Application, method: str, path: str, handler) -> None:
    """Register an API route once; it answers at /v1{path} and at {path} alike."""
    for prefix in API_PREFIXES:
        app.router.add_route(method, prefix + path, handler)


def create_app(settings: EdgeSettings, core: Core | None = None) -> web.Application:
    """The edge app. It reaches the core replicas at settings.core over gRPC, unless the
    launcher gives it a `core` to call (one sharing this process), which it then does not close."""
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[openai_errors, in_flight_bound(InFlight(settings.max_in_flight))])
    app[SETTINGS] = settings
    app[METRICS] = EdgeMetrics()
    app[CORE_DEADLINES] = Deadlines(settings.core_timeout)
    app.on_cleanup.append(_stop_deadlines)
    app.on_response_prepare.append(hide_server_version)

    async def grpc_core(app: web.Application):
        own = GrpcCore(settings.core, settings.max_body_bytes)  # made inside the running loop
        app[CORE] = own
        yield
        await own.close()

    if core is None:
        app.cleanup_ctx.append(grpc_core)
    else:
        app[CORE] = core
    if settings.metrics_listen:
        app[METRICS_SERVER] = MetricsServer(app[METRICS], settings.metrics_listen)
        app.cleanup_ctx.append(_metrics_server)
    add_api_route(app, "POST", "/chat/completions", handlers.chat_completions)
    add_api_route(app, "POST", "/responses", handlers.responses)
    add_api_route(app, "GET", "/responses/{response_id}", handlers.stored_response)
    add_api_route(app, "DELETE", "/responses/{response_id}", handlers.stored_response)
    add_api_route(app, "POST", "/messages", anthropic.messages)  # Anthropic's Messages API
    add_api_route(app, "POST", "/messages/count_tokens", anthropic.count_tokens)
    # Anthropic's clients append /v1/messages to their base URL themselves, so one given the
    # OpenAI-style base URL (ending in /v1) asks /v1/v1/messages: answer it rather than 404.
    app.router.add_post("/v1/v1/messages", anthropic.messages)
    app.router.add_post("/v1/v1/messages/count_tokens", anthropic.count_tokens)
    add_api_route(app, "GET", "/models", handlers.list_models)
    add_api_route(app, "GET", "/models/{model_id:.+}", handlers.get_model)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    return app


async def _stop_deadlines(app: web.Application) -> None:
    app[CORE_DEADLINES].close()


async def _metrics_server(app: web.Application):
    """/metrics on [edge].metrics_listen, never on the API port, for as long as the app runs."""
    server = app[METRICS_SERVER]
    await server.start()
    logger.info("edge metrics listening: port=%d", server.port)
    yield
    await server.stop()


def handler_options(settings: EdgeSettings) -> dict[str, object]:
    """Per-connection limits of aiohttp's protocol.

    keepalive_timeout also runs from the moment a connection opens until its first request's
    headers are complete, so it is both the idle keep-alive limit and the header deadline
    (slowloris). The body is decoded by the edge itself (edge.body), not by aiohttp. After an
    answer given before the body was read (413, 408), the rest of it is read and dropped for
    LINGER_S at most, so the client can read the answer, then the connection is closed.
    """
    return {"access_log": None, "keepalive_timeout": settings.idle_timeout, "auto_decompress": False,
            "max_line_size": settings.max_header_bytes, "max_field_size": settings.max_header_bytes,
            "lingering_time": LINGER_S}


async def start(settings: EdgeSettings, app: web.Application | None = None) -> tuple[web.AppRunner, int]:
    """Start the edge on settings.listen (port 0 picks one); returns the runner and port."""
    app = app or create_app(settings)
    hide_protocol_server_version()
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _RedactParserErrors) for f in server_log.filters):
        server_log.addFilter(_RedactParserErrors())
    options = handler_options(settings)
    # handler_cancellation: a client that leaves cancels its handler at once, which cancels
    # the Forward call and so the provider call (aiohttp's default notices only on a write).
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=settings.shutdown_timeout, **options)
    await runner.setup()
    host, _, port = settings.listen.rpartition(":")
    site = EdgeSite(runner, host or "127.0.0.1", int(port), **options)
    await site.start()
    return runner, runner.addresses[0][1]  # the real port when asked for port 0


class _RedactParserErrors(logging.Filter):
    """aiohttp logs a malformed request with the offending raw bytes, which may hold a key.

    Keep the fact that a bad request was refused; drop the bytes and the traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or record.args:
            record.msg, record.args = "malformed HTTP request refused: %s", (
                type(record.exc_info[1]).__name__ if record.exc_info else "unknown",)
            record.exc_info = record.exc_text = None
        return True


async def serve(settings: EdgeSettings) -> None:
    """Run the edge until SIGTERM or SIGINT, then drain open streams and exit."""
    runner, port = await start(settings)
    # Start-up objects (modules, protos, the app) live as long as the process: keep them
    # out of the collector, or each full collection walks them all while every call waits.
    gc.freeze()
    logger.info("edge listening: port=%d core=%s", port, settings.core)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("edge stopping: draining (up to %.0fs)", settings.shutdown_timeout)
    await runner.cleanup()
    logger.info("edge stopped")
