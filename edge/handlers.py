"""The edge's request handlers: each OpenAI call becomes one Forward RPC to the core."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from contextlib import aclosing

import grpc
from aiohttp import web

from edge.body import BodyError, read_body
from edge.core import CoreCallError
from edge.errors import error_response, from_rpc_error
from edge.keys import CORE, CORE_DEADLINES, METRICS, SETTINGS
from onekey.v1 import common_pb2, router_pb2

logger = logging.getLogger(__name__)

# Client headers that may travel to the provider. Everything else stays here: notably
# Authorization, x-api-key, x-goog-api-key, cookies and forwarding headers.
FORWARDED_HEADERS = ("openai-beta", "anthropic-beta", "anthropic-version", "user-agent", "idempotency-key")
STATUS_CLASSES = tuple(f"{n}xx" for n in range(10))  # a metric label per status // 100
STREAM_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
                  "X-Accel-Buffering": "no"}


def _request_id() -> str:
    # 128 random bits, as uuid4().hex gives, without building a UUID object per request.
    return f"req_{os.urandom(16).hex()}"


# Longer than any key OneKey issues by far; a longer "key" is refused without a core call.
MAX_KEY_CHARS = 512


def clean_key(value: str) -> str | None:
    """A key as sent, or None when it cannot be one: not printable ASCII, or far too long.

    aiohttp hands non-UTF-8 header bytes over as surrogates, which no RPC can carry: such a
    key is refused here with a 401 rather than failing later."""
    if len(value) > MAX_KEY_CHARS or not value.isascii() or not value.isprintable():
        return None
    return value


def bearer_token(request: web.Request) -> str | None:
    """The Bearer key; "" when none was sent, None when what was sent cannot be a key."""
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return "" if not value else None
    return clean_key(token.strip()) if token.strip() else ""


def _encodable(value: str) -> bool:
    """True when value can travel in a protobuf string (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _id_headers(request_id: str) -> dict[str, str]:
    return {"x-onekey-request-id": request_id, "x-request-id": request_id}


def _no_key(request_id: str, key: str | None = "") -> web.Response:
    if key is None:
        logger.info("refused: request_id=%s code=invalid_api_key (malformed key)", request_id)
        return error_response(401, "Incorrect API key provided: it is not a OneKey key. Send it as "
                              "`Authorization: Bearer <key>`.", "invalid_request_error", "invalid_api_key",
                              headers=_id_headers(request_id))
    logger.info("refused: request_id=%s code=invalid_api_key (no key sent)", request_id)
    return error_response(401, "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
                          "invalid_request_error", "invalid_api_key", headers=_id_headers(request_id))


class OpenAIShape:
    """How an OpenAI route takes its key and words the edge's own errors."""

    def key(self, request: web.Request) -> str | None:
        """The key sent; "" when none, None when what was sent cannot be a key."""
        return bearer_token(request)

    def no_key(self, request_id: str, key: str | None) -> web.Response:
        return _no_key(request_id, key)

    def body_error(self, exc: BodyError, ids: dict[str, str]) -> web.Response:
        return error_response(exc.status, exc.message, "invalid_request_error", exc.code, headers=ids)

    def rpc_error(self, err: CoreCallError, ids: dict[str, str]) -> web.Response:
        return from_rpc_error(err, ids)

    def empty_answer(self, ids: dict[str, str]) -> web.Response:
        return error_response(502, "The routing core ended the call without an answer.", "api_error",
                              "empty_answer", headers=ids)

    def stream_broken(self) -> bytes:
        # An event the OpenAI SDKs raise on: a `data:` whose JSON has an `error` key.
        return b"data: " + json.dumps({"error": {
            "message": "The stream was interrupted.", "type": "api_error", "param": None,
            "code": "stream_interrupted"}}).encode() + b"\n\n"


OPENAI = OpenAIShape()


async def forward(request: web.Request, endpoint: str, method: str = "POST",
                  label: str | None = None, shape: OpenAIShape = OPENAI) -> web.StreamResponse:
    """POST /v1/{endpoint}: one Forward call, the answer written as it arrives.

    `label` names the endpoint in metrics where the path holds an id (never a label value);
    `shape` says how the route takes its key and words the edge's own errors."""
    started = time.perf_counter()
    app = request.app
    metrics = app[METRICS]
    label = label or endpoint
    request_id = _request_id()
    ids = _id_headers(request_id)
    status = 0
    metrics.in_flight += 1
    try:
        response = await _forward(request, app, endpoint, label, request_id, ids, started, method, shape)
        status = response.status
        return response
    finally:
        metrics.in_flight -= 1
        metrics.answered(label, STATUS_CLASSES[status // 100] if status else "aborted", time.perf_counter() - started)
        if app[SETTINGS].access_log:
            logger.info("request: id=%s endpoint=%s status=%d ms=%.1f", ids["x-onekey-request-id"], label, status,
                        (time.perf_counter() - started) * 1000)


async def _forward(request: web.Request, app: web.Application, endpoint: str, label: str, request_id: str,
                   ids: dict[str, str], started: float, method: str, shape: OpenAIShape) -> web.StreamResponse:
    settings = app[SETTINGS]
    key = shape.key(request)
    if not key:
        return shape.no_key(request_id, key)
    try:
        body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    except BodyError as exc:
        logger.info("refused: request_id=%s code=%s", request_id, exc.code)
        response = shape.body_error(exc, ids)
        response.force_close()  # what is left of the body is not read: the connection cannot go on
        return response
    call = router_pb2.ForwardRequest(api_key=key, endpoint=endpoint, body=body, request_id=request_id, method=method)
    _add_forwarded_headers(call, request.headers)
    attempt = 1
    while True:
        try:
            return await _relay(request, app, call, label, ids, started, shape)
        except _CoreGone as gone:
            if attempt >= settings.core_attempts:
                return shape.rpc_error(gone.error, ids)
            attempt += 1
            # Nothing reached the client: another core replica can take the call. A fresh
            # request id keeps the retried call's usage event apart from the lost one's.
            logger.warning("core call failed before an answer, retrying on another core: id=%s code=%s",
                           call.request_id, gone.error.code().name)
            call.request_id = _request_id()
            ids.update(_id_headers(call.request_id))


def _add_forwarded_headers(call: router_pb2.ForwardRequest, sent) -> None:
    for name in FORWARDED_HEADERS:
        value = sent.get(name)
        # A header value that is not UTF-8 (aiohttp keeps such bytes as surrogates) stays here.
        if value is not None and _encodable(value):
            call.headers.add(name=name, value=value)


class _CoreGone(Exception):
    """The core connection failed before any message of the answer arrived."""

    def __init__(self, error: CoreCallError) -> None:
        super().__init__(error.code().name)
        self.error = error


def _core_unreachable(err: CoreCallError) -> bool:
    """UNAVAILABLE from the transport (core down, connection reset), not a verdict of the core."""
    if err.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    return not any(k == "onekey-error-code" for k, _ in (err.trailing_metadata() or ()))


async def _relay(request: web.Request, app: web.Application, call: router_pb2.ForwardRequest, label: str,
                 ids: dict[str, str], started: float, shape: OpenAIShape) -> web.StreamResponse:
    """One Forward call, its answer written to the client as it arrives."""
    response: web.StreamResponse | None = None
    try:
        # The whole call, reasoning models included, within core_timeout: enforced here, so it
        # holds whichever way the core is reached.
        with app[CORE_DEADLINES].scope():
            async with aclosing(app[CORE].forward(call, app[SETTINGS].core_timeout)) as messages:
                async for msg in messages:  # a message may carry a head, a chunk and a trailer, in that order
                    if msg.HasField("head"):
                        app[METRICS].head_sent(label, time.perf_counter() - started)
                        response = await _start_answer(request, msg.head, ids)
                    chunk = msg.chunk
                    if chunk:
                        await response.write(chunk)
        if response is None:
            return shape.empty_answer(ids)
        if not isinstance(response, web.Response):
            await response.write_eof()
        return response
    except (CoreCallError, TimeoutError) as exc:
        err = exc if isinstance(exc, CoreCallError) else CoreCallError(
            grpc.StatusCode.DEADLINE_EXCEEDED, "The call took longer than the edge's core_timeout.")
        # A whole answer is held here until the call ends (the core ends it once the charge
        # is written): until then nothing has reached the client, and another core may serve it.
        if (response is None or isinstance(response, web.Response)) and _core_unreachable(err):
            raise _CoreGone(err) from None
        if response is None or isinstance(response, web.Response):
            told = dict(err.trailing_metadata() or ()).get("onekey-header-x-onekey-request-id")
            if told:  # the core's id for the refused request, as its usage event has it
                ids.update(_id_headers(told))
            return shape.rpc_error(err, ids)
        # Mid-stream: the head is gone, so end the stream with an error event the SDKs raise on.
        logger.warning("stream broke: id=%s code=%s", ids["x-onekey-request-id"], err.code().name)
        return await _end_stream(response, shape)
    except ConnectionError:
        raise  # the client left: closing the answer's iterator has cancelled the core call
    except Exception as exc:
        # Never leave a client hanging on an unexpected failure: before the head the middleware
        # answers 500; after it, the stream ends with an error event.
        if response is None or isinstance(response, web.Response):
            raise
        logger.error("stream failed: id=%s error=%s", ids["x-onekey-request-id"], type(exc).__name__)
        return await _end_stream(response, shape)


async def _start_answer(request: web.Request, head: router_pb2.ResponseHead,
                        ids: dict[str, str]) -> web.StreamResponse:
    """The client's response for the answer's head: whole (sent when the call ends) or a stream."""
    if head.request_id:
        # The core makes each request's id (it keys the usage event): the client sees that one.
        ids.update(_id_headers(head.request_id))
    headers = {h.name: h.value for h in head.headers}
    headers.update(ids)
    if head.HasField("body"):
        return web.Response(status=head.status, body=head.body, headers=headers)
    headers.pop("content-type", None)
    headers.update(STREAM_HEADERS)
    response = _EventStream(status=head.status, headers=headers)
    await response.prepare(request)
    return response


# How long a stream's head waits for its first chunk to travel with it.
HEAD_WAIT_S = 0.005


class _EventStream(web.StreamResponse):
    """A streamed answer whose head is written with its first chunk, usually there already:
    one write, one segment to the client, rather than the head on its own at prepare().
    (aiohttp's web.Response buffers its head the same way.) A model that thinks before its
    first chunk still has its head sent HEAD_WAIT_S after prepare()."""

    _send_headers_immediately = False
    _flush: asyncio.TimerHandle | None = None

    async def prepare(self, request: web.BaseRequest):
        writer = await super().prepare(request)
        if writer is not None and self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(HEAD_WAIT_S, self._send_head, writer)
        return writer

    @staticmethod
    def _send_head(writer) -> None:
        try:
            writer.send_headers()
        except ConnectionError:
            pass  # the client left meanwhile: the handler learns it at its next write

    def _head_goes_now(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self._head_goes_now()
        await super().write(data)

    async def write_eof(self, data: bytes = b"") -> None:
        self._head_goes_now()
        await super().write_eof(data)


async def _end_stream(response: web.StreamResponse, shape: OpenAIShape) -> web.StreamResponse:
    await response.write(shape.stream_broken())
    await response.write_eof()
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await forward(request, "chat/completions")


async def responses(request: web.Request) -> web.StreamResponse:
    return await forward(request, "responses")


async def stored_response(request: web.Request) -> web.StreamResponse:
    """GET or DELETE /v1/responses/{id}: only the project that created the response may."""
    if not _encodable(request.match_info["response_id"]):
        return error_response(404, "No response with that id.", "invalid_request_error", "not_found")
    return await forward(request, f"responses/{request.match_info['response_id']}", request.method,
                         label="responses/{id}")


def _model_json(m: common_pb2.Model) -> dict:
    def usd(micro: int) -> str:
        whole, frac = divmod(micro, 1_000_000)  # integer arithmetic: money never passes through a float
        return f"{whole}.{frac:06d}".rstrip("0").rstrip(".")

    return {
        "id": m.id, "object": "model", "created": m.created, "owned_by": m.provider,
        "provider": m.provider, "upstream_id": m.upstream_id, "name": m.display_name,
        "context_window": m.context_window, "status": m.status, "status_note": m.status_note or None,
        "test_model": m.test_model, "price_source": m.price_source or None,
        "endpoints": [f"/v1/{e}" for e in m.endpoints],
        # Every route the model answers on, and how: natively, or translated to a native one.
        "routes": {**{f"/v1/{e}": "translated" for e in m.translated_endpoints},
                   **{f"/v1/{e}": "native" for e in m.endpoints}},
        "pricing": {
            "currency": "USD", "per": "1M tokens", "input": usd(m.input_price), "output": usd(m.output_price),
            "cached_input": usd(m.cached_input_price or m.input_price),
            "input_micro_usd": m.input_price, "output_micro_usd": m.output_price,
            "cached_input_micro_usd": m.cached_input_price or m.input_price,
            "cache_write_input": usd(m.cache_write_input_price or m.input_price),
            "cache_write_input_micro_usd": m.cache_write_input_price or m.input_price,
        },
    }


async def _authorized(request: web.Request, request_id: str) -> web.Response | None:
    key = bearer_token(request)
    if not key:
        return _no_key(request_id, key)
    try:
        await request.app[CORE].validate_key(router_pb2.ValidateKeyRequest(api_key=key), timeout=10)
    except CoreCallError as err:
        return from_rpc_error(err, _id_headers(request_id))
    return None


async def list_models(request: web.Request) -> web.Response:
    request_id = _request_id()
    refused = await _authorized(request, request_id)
    if refused is not None:
        return refused
    try:
        listing = await request.app[CORE].list_models(router_pb2.ListModelsRequest(), timeout=10)
    except CoreCallError as err:
        return from_rpc_error(err, _id_headers(request_id))
    return web.json_response({"object": "list", "data": [_model_json(m) for m in listing.models]},
                             headers=_id_headers(request_id))


async def get_model(request: web.Request) -> web.Response:
    request_id = _request_id()
    refused = await _authorized(request, request_id)
    if refused is not None:
        return refused
    model_id = request.match_info["model_id"]
    if not _encodable(model_id):
        return error_response(404, "The model does not exist.", "invalid_request_error", "model_not_found",
                              "model", headers=_id_headers(request_id))
    try:
        resolved = await request.app[CORE].resolve_model(router_pb2.ResolveModelRequest(model=model_id), timeout=10)
    except CoreCallError as err:
        return from_rpc_error(err, _id_headers(request_id))
    return web.json_response(_model_json(resolved.model), headers=_id_headers(request_id))


async def healthz(request: web.Request) -> web.Response:
    """200 when the core is reachable, 503 otherwise (waits up to a second to connect)."""
    state = await request.app[CORE].ready(1.0)
    ready = state == "ready"
    return web.json_response({"status": "ok" if ready else "degraded", "core": state},
                             status=200 if ready else 503)


async def readyz(request: web.Request) -> web.Response:
    """200 when the core and its store answer; 503 naming what does not (the core, or its store
    with the usage backlog waiting for it). /healthz stays the liveness check."""
    try:
        state = await request.app[CORE].readiness(2.0)
    except CoreCallError:
        return web.json_response({"status": "unavailable", "core": "unreachable"}, status=503)
    body = {"status": "ready" if state.ready else "degraded", "core": "ready", "store": state.store,
            "store_down_seconds": state.store_down_seconds, "usage_backlog": state.usage_backlog,
            "journal_bytes": state.journal_bytes, "rate_limit_store": state.rate_limit_store}
    return web.json_response(body, status=200 if state.ready else 503)


async def not_found(request: web.Request) -> web.Response:
    return error_response(404, f"Unknown request URL: {request.method} {request.path}.",
                          "invalid_request_error", "unknown_url")
