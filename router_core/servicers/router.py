"""RouterService: key validation, model resolution and listing, and the Forward stream."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

import grpc

from onekey.v1 import common_pb2, router_pb2, router_pb2_grpc
from router_core.availability import Availability, availability
from router_core.catalog import Catalog, ModelInfo
from router_core.channels import ChannelPool
from router_core.errors import CoreError, InvalidRequest, Overloaded, StoreUnavailable
from router_core.forward import Forwarder, ForwardInput, Head, Trailer, new_request_id
from router_core.keys import KeyValidator
from router_core.readiness import Readiness
from router_core.requests import ENDPOINTS
from router_core.servicers.common import abort_with, unary, where
from router_core.store_guard import DOWN_MESSAGE as STORE_DOWN, unreachable
from router_core.stored_responses import StoredResponses, response_id_of
from router_core.translate import translated_endpoints, upstream_for

logger = logging.getLogger(__name__)


def model_proto(m: ModelInfo, state: Availability) -> common_pb2.Model:
    return common_pb2.Model(
        id=m.id, provider=m.provider, upstream_id=m.upstream_id, display_name=m.display_name,
        input_price=m.input_price, output_price=m.output_price,
        cached_input_price=m.cached_input_price, context_window=m.context_window,
        status=state.status, status_note=state.note, channels=sorted(state.channels), test_model=m.is_test,
        endpoints=sorted(m.endpoints), created=m.created, cache_write_input_price=m.cache_write_input_price,
        price_source=m.price_source,
        translated_endpoints=translated_endpoints(m.endpoints),
    )


def _id_headers(request_id: str) -> list[tuple[str, str]]:
    """The request id a refused call's answer carries (the edge sends these headers on)."""
    return [("x-onekey-request-id", request_id), ("x-request-id", request_id)]


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    def __init__(self, forwarder: Forwarder, catalog: Catalog, keys: KeyValidator, pool: ChannelPool,
                 stored: StoredResponses | None = None, max_in_flight: int = 1024,
                 readiness: Readiness | None = None) -> None:
        self._forwarder = forwarder
        self._readiness = readiness
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._refused = 0
        self._refusals_logged = 0.0
        self._stored = stored
        self._catalog = catalog
        self._keys = keys
        self._pool = pool

    @unary
    async def ValidateKey(self, request, context):
        identity = await self._keys.validate(request.api_key)
        return router_pb2.ValidateKeyResponse(project_id=identity.project_id, key_id=identity.key_id)

    @unary
    async def Readiness(self, request, context):
        if self._readiness is None:  # a servicer without a store to watch (never in a server)
            return router_pb2.ReadinessResponse(ready=True, store="up", rate_limit_store="memory")
        state = self._readiness.state()
        return router_pb2.ReadinessResponse(
            ready=state.ready, store=state.store, store_down_seconds=state.store_down_seconds,
            usage_backlog=state.usage_backlog, journal_bytes=state.journal_bytes,
            rate_limit_store=state.rate_limit_store)

    @unary
    async def ResolveModel(self, request, context):
        model = self._catalog.resolve(request.model)
        endpoint = request.endpoint  # served natively, translated, or (count_tokens) counted here
        if endpoint and endpoint != "messages/count_tokens" and upstream_for(endpoint, model.endpoints) is None:
            self._catalog.resolve(request.model, endpoint)  # the native check, and its refusal
        return router_pb2.ResolveModelResponse(model=model_proto(model, availability(model, self._pool)))

    async def ListModels(self, request, context):
        # Statuses follow the breakers, so the list is made per call (a few dozen small protos).
        # The catalog is live (model lists, reloads): read it per call. The sandbox's models are
        # listed only where the sandbox is on.
        return router_pb2.ListModelsResponse(models=[
            model_proto(m, availability(m, self._pool)) for m in self._catalog.all()
            if not m.is_test or self._pool.has_provider(m.provider)])

    async def Forward(self, request, context):
        # Written with context.write from a coroutine, not yielded from a generator: when a
        # write fails (the client left while the stream was held back by flow control),
        # gRPC abandons a servicer generator unclosed, and the upstream call would run on
        # until garbage collection. Here the failure reaches us and aclosing closes every
        # generator in the chain, the upstream response with them.
        async with aclosing(self.answer(request, context)) as messages:
            async for message in messages:
                try:
                    await context.write(message)
                except Exception as exc:  # the call is gone: nobody is left to answer
                    logger.info("stream write failed (client gone): error=%s", type(exc).__name__)
                    return

    async def answer(self, request: router_pb2.ForwardRequest, context, coalesce: bool = True
                     ) -> AsyncIterator[router_pb2.ForwardResponse]:
        """Forward's messages, for the gRPC method and for an edge in this process alike.

        `context` needs only set_trailing_metadata and abort (which raises). `coalesce` packs
        a stream's head with its first chunk into one message, which saves a gRPC message; an
        edge in this process gains nothing from it and gets each item as it comes."""
        if self._in_flight >= self._max_in_flight:
            # Refused before the key, the body or the credits are touched: nothing is billed.
            self._refused += 1
            now = time.monotonic()
            if now - self._refusals_logged >= 5.0:  # one line per period, not one per refusal
                logger.warning("overloaded: refused=%d in_flight=%d bound=%d", self._refused, self._in_flight,
                               self._max_in_flight)
                self._refused, self._refusals_logged = 0, now
            await abort_with(context, Overloaded(
                "OneKey is serving as many requests as it can; retry shortly."))
        self._in_flight += 1
        # Made here, never taken from the caller: a request id keys its usage event, and one a
        # caller chose could be one already used. The caller learns it from the head, or from
        # an error's trailing metadata.
        request_id = new_request_id()
        try:
            if request.method not in ("", "POST"):
                async for message in self._stored_response(request, context, request_id):
                    yield message
                return
            # One generator from here to the Forwarder's: every layer would cost each message a hop.
            items = self._forwarder.forward(ForwardInput(
                api_key=request.api_key, endpoint=request.endpoint, body=request.body,
                headers=[(h.name, h.value) for h in request.headers], request_id=request_id,
            ))
            try:
                if coalesce:
                    async with aclosing(_coalesce(items)) as messages:
                        async for message in messages:
                            yield message
                else:
                    async for item in items:
                        yield _message(item)
            except CoreError as exc:
                # Metadata only: the code says what was wrong, never the body that was.
                logger.info("refused: request_id=%s endpoint=%s code=%s", request_id,
                            request.endpoint if request.endpoint in ENDPOINTS else "?", exc.code)
                await abort_with(context, exc, _id_headers(request_id))
            except Exception as exc:
                if unreachable(exc):  # a store call outside the guard: still the store's trouble
                    logger.warning("refused: request_id=%s routing store unreachable (%s)", request_id,
                                   type(exc).__name__)
                    await abort_with(context, StoreUnavailable(STORE_DOWN), _id_headers(request_id))
                logger.error("forward failed: request_id=%s error=%s at %s", request_id,
                             type(exc).__name__, where(exc))
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                await items.aclose()  # the call ended or was abandoned: so does the provider's response
        finally:
            self._in_flight -= 1

    async def _stored_response(self, request, context, request_id: str):
        """GET/DELETE /v1/responses/{id}: one head with the whole answer."""
        response_id = response_id_of(request.endpoint)
        try:
            if self._stored is None or response_id is None:
                raise InvalidRequest(f"{request.method} is not supported on /v1/{request.endpoint.split('/')[0]}.",
                                     code="method_not_allowed")
            status, body, channel, headers = await self._stored.call(request.api_key, request.method, response_id,
                                                                     request_id)
        except CoreError as exc:
            await abort_with(context, exc, _id_headers(request_id))
            return
        except Exception as exc:
            if unreachable(exc):
                await abort_with(context, StoreUnavailable(STORE_DOWN), _id_headers(request_id))
                return
            logger.error("stored response failed: request_id=%s error=%s at %s", request_id,
                         type(exc).__name__, where(exc))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            return
        yield router_pb2.ForwardResponse(head=router_pb2.ResponseHead(
            status=status, headers=[common_pb2.Header(name=n, value=v)
                                    for n, v in [("content-type", "application/json"), *headers]],
            request_id=request_id, channel=channel, body=body))


# How long a head waits for a first chunk to travel with it. Upstreams usually send their
# headers and first event together; a reasoning model that thinks first gets its head at once.
HEAD_WAIT_S = 0.005


async def _coalesce(items: AsyncIterator[Head | bytes | Trailer]) -> AsyncIterator[router_pb2.ForwardResponse]:
    """Forward's items as messages, a head packed with what follows it at once."""
    pending: asyncio.Future | None = None
    try:
        async for item in items:
            if not isinstance(item, Head):
                yield _message(item)
                continue
            message = _message(item)
            # Whole answer: its trailer follows with no wait. Stream: wait a moment for data.
            pending = asyncio.ensure_future(anext(items, None))
            done, _ = await asyncio.wait({pending}, timeout=None if item.body is not None else HEAD_WAIT_S)
            if not done:
                yield message
                message = router_pb2.ForwardResponse()
            follower, pending = await pending, None
            if isinstance(follower, bytes):
                message.chunk = follower
            elif isinstance(follower, Trailer):
                _fill_trailer(message.trailer, follower)
            if message.ByteSize():
                yield message
    finally:
        if pending is not None:  # the call was cancelled while a read was in flight
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await items.aclose()


def _message(item: Head | bytes | Trailer) -> router_pb2.ForwardResponse:
    """One of Forward's items as a message (each filled in place: a sub-message made apart
    and handed to a constructor would be copied)."""
    if isinstance(item, bytes):
        return router_pb2.ForwardResponse(chunk=item)
    message = router_pb2.ForwardResponse()
    if isinstance(item, Head):
        head = message.head
        head.status = item.status
        for name, value in item.headers:
            head.headers.add(name=name, value=value)
        head.request_id, head.model, head.provider, head.channel = (
            item.request_id, item.model, item.provider, item.channel)
        if item.body is not None:  # presence says "whole answer, no chunks follow"
            head.body = item.body
    else:
        _fill_trailer(message.trailer, item)
    return message


def _fill_trailer(proto: router_pb2.ResponseTrailer, item: Trailer) -> None:
    usage, proto_usage = item.usage, proto.usage
    proto_usage.input_tokens = usage.input_tokens
    proto_usage.output_tokens = usage.output_tokens
    proto_usage.cached_input_tokens = usage.cached_input_tokens
    proto_usage.reasoning_tokens = usage.reasoning_tokens
    proto_usage.estimated = usage.estimated
    proto_usage.cache_write_tokens = usage.cache_write_tokens
    proto.cost_micro_usd = item.cost_micro_usd
    proto.request_id = item.request_id
