"""The edge's app factory and its run loop."""
from __future__ import annotations

import asyncio
import gc
import logging
import signal

import grpc
from aiohttp import web

from edge import anthropic, handlers
from edge.errors import error_response
from edge.keys import CHANNEL, CORE, METRICS, METRICS_SERVER, SETTINGS
from edge.metrics import EdgeMetrics, MetricsServer, hide_protocol_server_version, hide_server_version
from edge.overload import InFlight, in_flight_bound
from edge.protocol import EdgeSite
from edge.settings import EdgeSettings
from onekey.v1 import router_pb2_grpc

logger = logging.getLogger(__name__)


def channel_options(max_body_bytes: int) -> list[tuple[str, object]]:
    """gRPC caps above the 4 MiB default, and round robin over several core replicas."""
    cap = max(max_body_bytes * 2, 64 * 1024 * 1024)
    return [
        ("grpc.max_receive_message_length", cap),
        ("grpc.max_send_message_length", cap),
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 0),   # the edge retries itself, knowing when nothing reached the client
        # A core replica that went away is dialled again within seconds of coming back.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5_000),
        ("grpc.dns_min_time_between_resolutions_ms", 5_000),
    ]


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


def create_app(settings: EdgeSettings, channel: grpc.aio.Channel | None = None) -> web.Application:
    """The edge app; it opens its own channel to settings.core unless one is given."""
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[openai_errors, in_flight_bound(InFlight(settings.max_in_flight))])
    app[SETTINGS] = settings
    app[METRICS] = EdgeMetrics()
    app.on_response_prepare.append(hide_server_version)

    async def core_channel(app: web.Application):
        own = channel is None
        ch = channel or grpc.aio.insecure_channel(settings.core, options=channel_options(settings.max_body_bytes))
        app[CHANNEL] = ch
        app[CORE] = router_pb2_grpc.RouterServiceStub(ch)
        yield
        if own:
            await ch.close()

    app.cleanup_ctx.append(core_channel)
    if settings.metrics_listen:
        app[METRICS_SERVER] = MetricsServer(app[METRICS], settings.metrics_listen)
        app.cleanup_ctx.append(_metrics_server)
    add_api_route(app, "POST", "/chat/completions", handlers.chat_completions)
    add_api_route(app, "POST", "/responses", handlers.responses)
    add_api_route(app, "GET", "/responses/{response_id}", handlers.stored_response)
    add_api_route(app, "DELETE", "/responses/{response_id}", handlers.stored_response)
    add_api_route(app, "POST", "/messages", anthropic.messages)  # Anthropic's Messages API
    add_api_route(app, "POST", "/messages/count_tokens", anthropic.count_tokens)
    add_api_route(app, "GET", "/models", handlers.list_models)
    add_api_route(app, "GET", "/models/{model_id:.+}", handlers.get_model)
    app.router.add_get("/healthz", handlers.healthz)
    return app


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
    logging.getLogger("aiohttp.server").addFilter(_RedactParserErrors())
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
