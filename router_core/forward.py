"""The hot path: one client request in, one provider call out, bytes streamed back, metered.

Steps: validate the key (cached), admit it under its rate limits, decode the body, resolve the
model, rewrite only `model` (and, for chat streams, ask for usage), try channels in order until
one answers, pass the answer back as it arrives, and record one usage event (metadata only)
off the hot path.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from router_core.availability import availability, refuse_unservable
from router_core.catalog import Catalog, ModelInfo
from router_core.channels import ChannelPool
from router_core.credits import Credits, Reservation
from router_core.errors import CoreError, InvalidApiKey, InvalidRequest, ModelNotFound, StoreUnavailable
from router_core.failover import open_upstream
from router_core.key_spend import KeySpend, SpendHold
from router_core.keys import KeyIdentity, KeyValidator
from router_core.metering import UsageRecorder
from router_core.providers import REGISTRY, Provider, UpstreamCall, UpstreamError, UpstreamResponse
from router_core.providers.anthropic_messages import COUNT_TOKENS, COUNT_TOKENS_WIRE, MESSAGES, MESSAGES_WIRE
from router_core.providers.base import OPENAI_WIRE, UpstreamFailure, Wire, ends_stream, openai_error
from router_core.response_owners import ResponseOwners
from router_core.ratelimit import RateLimiter
from router_core.requests import ENDPOINTS, ClientRequest, decode, with_model
from router_core.settings import ChannelSettings
from router_core.tables import utcnow
from router_core.tokens import TokenCounter
from router_core.translate import TranslationError, Translator, translator_for
from router_core.translate.wire import TranslatedWire
from router_core.usage import Usage, cost_micro_usd, reservation_usage

logger = logging.getLogger(__name__)

# Headers of the provider's answer that the client may see.
PASSED_RESPONSE_HEADERS = ("content-type", "retry-after", "retry-after-ms")
# Client headers that may travel to a provider: the edge's allowlist (edge/handlers.py), held
# here too, since the core also serves remote edges and internal gRPC clients. Everything else
# stays here: keys, cookies, forwarding headers, and `OpenAI-Organization` / `OpenAI-Project`,
# which would let a customer pick the operator's organization or project at the provider.
FORWARDED_CLIENT_HEADERS = frozenset({"openai-beta", "anthropic-beta", "anthropic-version", "user-agent",
                                      "idempotency-key"})
MAX_CLIENT_HEADERS = 32          # far more than the allowlist: a caller sending more is broken
MAX_HEADER_BYTES = 8190          # the edge's default max_header_bytes, for a whole header line
# RFC 9110: a field name is a token; a value is visible characters (obs-text too), spaces and
# tabs, neither first nor last. No CR, LF, NUL or other control character, ever.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"(?:[!-~\x80-\U0010ffff](?:[ \t!-~\x80-\U0010ffff]*[!-~\x80-\U0010ffff])?)?")


def new_request_id() -> str:
    """A request id made here: the core never takes one from its caller (ids key usage events)."""
    return f"req_{uuid.uuid4().hex}"


@dataclass(slots=True)
class Head:
    status: int
    headers: list[tuple[str, str]]
    request_id: str
    model: str = ""
    provider: str = ""
    channel: str = ""
    body: bytes | None = None


@dataclass(slots=True)
class Trailer:
    usage: Usage
    cost_micro_usd: int
    request_id: str


@dataclass(slots=True)
class ForwardInput:
    api_key: str
    endpoint: str
    body: bytes
    headers: Sequence[tuple[str, str]] = ()
    request_id: str = ""


@dataclass(slots=True)
class _Meter:
    """What one request has produced so far, for its usage event."""

    identity: KeyIdentity
    model: ModelInfo
    endpoint: str
    stream: bool
    body: dict
    reservation: Reservation
    started: float
    wire: Wire = OPENAI_WIRE  # the client API's shape: where usage is, how errors look
    hold: SpendHold = field(default_factory=SpendHold)  # what the request holds of its key's spend limit
    status: int = 0
    channel: str = ""
    ttfb: float = 0.0
    error_code: str = ""
    requested_model: str = ""
    usage: Usage | None = None
    rate_headers: list[tuple[str, str]] = field(default_factory=list)  # x-ratelimit-* of the answer
    partial: Usage | None = None  # the input side, known before a stream's end (Anthropic)
    answered: bool = False  # a successful head went to the client: output may have been produced
    delivered: bool = False  # every byte of a stream was passed on: only its trailer was left
    cancelled: bool = False
    seq: int = 0  # the usage event's sequence number, once recorded (recorded once, see _record)
    # The answer's bytes, kept in memory only while the request runs, for a token estimate
    # when the provider's usage never arrives. Never logged, never written anywhere.
    output: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class _Refusal:
    """What is known of a request while it is being admitted, for the event of a refusal."""

    endpoint: str
    started: float
    identity: KeyIdentity | None = None
    model: ModelInfo | None = None
    requested_model: str = ""
    stream: bool = False


_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def error_code_of(body: bytes | None) -> str:
    """The `error.code` of an OpenAI-shaped error body, if it is a plain code (never free text)."""
    try:
        code = json.loads(body or b"").get("error", {}).get("code")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return "upstream_error"
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else "upstream_error"


class Forwarder:
    """Carries requests to providers and answers back. Holds no request content after a call."""

    def __init__(self, catalog: Catalog, pool: ChannelPool, keys: KeyValidator, http: object,
                 recorder: UsageRecorder, credits: Credits, tokens: TokenCounter,
                 providers: Mapping[str, Provider] = REGISTRY, max_attempts: int = 3,
                 *, owners: ResponseOwners | None = None, max_retry_wait: float = 2.0,
                 limiter: RateLimiter | None = None, spend: KeySpend | None = None,
                 durable_charges: bool = False, durable_wait: float = 10.0,
                 on_model_gone: Callable[[ModelInfo, str], None] | None = None) -> None:
        self.catalog = catalog
        self.on_model_gone = on_model_gone
        self.pool = pool
        self.keys = keys
        self.http = http
        self.recorder = recorder
        self.credits = credits
        self.tokens = tokens
        self.providers = providers
        self.max_attempts = max_attempts
        self.max_retry_wait = max_retry_wait
        self.owners = owners
        self.limiter = limiter
        self.spend = spend
        self.durable_charges = durable_charges
        self.durable_wait = durable_wait

    async def forward(self, call: ForwardInput) -> AsyncIterator[Head | bytes | Trailer]:
        """Yield one Head, then body chunks for a stream, then one Trailer.

        A request refused here (bad key, body, model, limit or credit) raises its CoreError and
        leaves a usage event of its own when it can be attributed to a project.
        """
        started = time.monotonic()
        request_id = call.request_id or new_request_id()
        refusal = _Refusal(call.endpoint, started)
        try:
            meter, items = await self._admit(call, request_id, refusal)
        except CoreError as exc:
            self._record_refusal(refusal, exc, request_id)
            raise
        try:
            async for item in items:
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            # The client left: the upstream call is closed on the way out. One that had the whole
            # stream (leaving while the trailer's estimate waited for the tokenizer) cut nothing.
            meter.cancelled = not meter.delivered
            raise
        finally:
            try:
                await items.aclose()  # closes the upstream response now, not when collected
                if not meter.seq and self._estimating(meter):
                    await self.tokens.ready()  # loaded in a thread, off the event loop
            finally:
                if not meter.seq:  # not recorded before the answer's end went out (a failure, a cut)
                    self._record(meter, request_id)
        if self.durable_charges and meter.reservation.kind == "credit" and self.recorder.store_up:
            # The answer ends (the call's status) only once its charge is committed, so a core
            # killed after this point has lost nothing; a store that does not answer within the
            # store's bound (or is known down) keeps the event in the backlog and the journal
            # rather than holding the client.
            if not await self.recorder.written(meter.seq, self.durable_wait):
                logger.warning("charge not yet durable at answer end: request_id=%s", request_id)

    async def _admit(self, call: ForwardInput, request_id: str, refusal: _Refusal
                     ) -> tuple[_Meter, AsyncIterator[Head | bytes | Trailer]]:
        """Check the request and reserve its credit: its meter and the answer to stream."""
        try:
            identity = await self.keys.validate(call.api_key)
        except InvalidApiKey as exc:
            refusal.identity = exc.identity  # a revoked or expired key is still its project's
            raise
        refusal.identity = identity
        # Before anything else is spent on it: a request over its rate limit reaches no provider
        # and reserves no credit.
        rate_headers = await self.limiter.admit(identity, request_id) if self.limiter else []
        client_headers = forwarded_headers(call.headers)
        req = decode(call.endpoint, call.body)
        refusal.stream = req.stream
        model = self.catalog.resolve(req.model_name)
        # Only names the catalog knows are kept: `model` is free text a client controls. Kept
        # before the route check, so a refusal on the route still names the model.
        refusal.model, refusal.requested_model = model, req.model_name[:200]
        translator = None
        if req.catalog_endpoint not in model.endpoints:
            # Not the provider's own format: served through a translator (count_tokens: counted here).
            translator = translator_for(req.catalog_endpoint, model) if call.endpoint != COUNT_TOKENS else None
            if translator is None and call.endpoint != COUNT_TOKENS:
                self.catalog.resolve(req.model_name, req.catalog_endpoint)  # its refusal, in its words
        provider = self.providers.get(model.provider)
        prefer = None
        if call.endpoint == "responses" and self.owners is not None and translator is None:
            # Provider-side state stays in its project; a continued response goes back to the
            # channel (provider account) that holds it.
            prefer = await self.owners.check(identity.project_id, model.provider, req.body)
        channels = self.pool.candidates(model, prefer)
        if provider is None or not channels or model.status == "retired":
            # Retired, or no channel here: not a passing outage (retrying will not help), so
            # 404 rather than 503, in the words of the model's status note in /v1/models.
            refuse_unservable(model, availability(model, self.pool))
            raise ModelNotFound(f"The model `{model.id}` is not available here.", param="model",
                                code="model_not_available")  # no provider module for it
        if req.catalog_endpoint not in model.endpoints:
            return await self._admit_translated(call, req, model, provider, channels, translator, identity,
                                                request_id, refusal, rate_headers, client_headers)
        wire = provider.wire(call.endpoint)
        body = dict(req.body)
        body["model"] = model.upstream_id
        drop_usage_chunk = add_usage = False
        chat_stream = req.stream and call.endpoint == "chat/completions"
        if chat_stream:
            body["stream_options"] = {**(req.body.get("stream_options") or {}), "include_usage": True}
            drop_usage_chunk = add_usage = not req.wants_usage
        prepared = provider.prepare(body, call.endpoint)
        raw = _upstream_body(call.body, req, prepared, body, model.upstream_id, chat_stream, add_usage)
        upstream = UpstreamCall(endpoint=call.endpoint, body=raw, model=model, stream=req.stream,
                                headers=client_headers, parsed=prepared)
        estimate = cost_micro_usd(model, reservation_usage(req.body, len(call.body))) if wire.billable else 0
        hold, reservation = await self._reserve(identity, estimate)
        meter = _Meter(identity, model, call.endpoint, req.stream, req.body, reservation, refusal.started, wire,
                       requested_model=refusal.requested_model, rate_headers=rate_headers, hold=hold)
        items = self._exchange(provider, channels, upstream, meter, request_id, drop_usage_chunk)
        if call.endpoint == "responses" and self.owners is not None and req.body.get("store") is not False:
            items = self.owners.bind(items, identity.project_id, model.provider)
        return meter, items

    async def _admit_translated(self, call: ForwardInput, req: ClientRequest, model: ModelInfo, provider: Provider,
                                channels: list[ChannelSettings], translator: Translator | None,
                                identity: KeyIdentity, request_id: str, refusal: _Refusal, rate_headers: list,
                                client_headers: dict[str, str]) -> tuple[_Meter, AsyncIterator[Head | bytes | Trailer]]:
        """A model whose provider does not speak the client's format: the request translated to
        one it does (or, for count_tokens, counted here), billed from the upstream's usage."""
        if translator is None:  # count_tokens on a model Anthropic does not serve: free, local
            reservation = await self.credits.reserve(identity.project_id, 0)
            meter = _Meter(identity, model, call.endpoint, False, req.body, reservation, refusal.started,
                           COUNT_TOKENS_WIRE, requested_model=refusal.requested_model, rate_headers=rate_headers)
            return meter, self._count_locally(meter, request_id)
        wire, upstream = _translated_call(call, req, model, provider, translator, client_headers)
        estimate = cost_micro_usd(model, reservation_usage(req.body, len(call.body)))
        hold, reservation = await self._reserve(identity, estimate)
        meter = _Meter(identity, model, call.endpoint, req.stream, req.body, reservation, refusal.started, wire,
                       requested_model=refusal.requested_model, rate_headers=rate_headers, hold=hold)
        return meter, self._exchange(provider, channels, upstream, meter, request_id, False)

    async def _reserve(self, identity: KeyIdentity, estimate: int) -> tuple[SpendHold, Reservation]:
        """The estimate held against the key's spend limit (when it has one) and reserved from credit."""
        hold = SpendHold()
        if estimate and self.recorder.backlog_full:
            # Charges wait in memory (and the journal) while the store is down, up to a bound.
            raise StoreUnavailable("OneKey cannot record more charges until its store answers again; "
                                   "retry shortly.")
        if estimate and identity.spend_limit is not None and self.spend is not None:
            # Held in the store until it settles, like credit: free models are never held back.
            hold = await self.spend.hold(identity.key_id, estimate)
        try:
            return hold, await self.credits.reserve(identity.project_id, estimate)
        except BaseException:
            if self.spend is not None:
                self.spend.settle(hold, 0)
            raise

    async def _count_locally(self, meter: _Meter, request_id: str) -> AsyncIterator[Head | bytes | Trailer]:
        """`{"input_tokens": N}` for the text of system, messages and tools, by the local tokenizer."""
        await self.tokens.ready()
        count = sum(self.tokens.count(t) for t in MESSAGES_WIRE.prompt_texts(meter.body))
        meter.status, meter.answered, meter.usage = 200, True, Usage()
        meter.ttfb = time.monotonic()
        yield Head(status=200, headers=[("content-type", "application/json"), *meter.rate_headers],
                   request_id=request_id, model=meter.model.id, provider=meter.model.provider,
                   body=json.dumps({"input_tokens": count}).encode())
        yield Trailer(usage=Usage(), cost_micro_usd=0, request_id=request_id)

    async def _exchange(self, provider: Provider, channels: list[ChannelSettings], upstream: UpstreamCall,
                        meter: _Meter, request_id: str, drop_usage_chunk: bool) -> AsyncIterator[Head | bytes | Trailer]:
        opened = await open_upstream(provider, self.pool, channels, self.http, upstream,
                                     max_attempts=self.max_attempts, max_retry_wait=self.max_retry_wait,
                                     request_id=request_id)
        resp, channel = opened.resp, opened.channel
        meter.channel = channel.name if channel is not None else ""
        head = Head(status=0, headers=[], request_id=request_id, model=meter.model.id,
                    provider=meter.model.provider, channel=meter.channel)
        if resp is None:
            if opened.failure.status == 404 and upstream.method == "POST" and self.on_model_gone is not None:
                # A 404 to a POST on a generation path the provider serves can only be the model:
                # the provider has retired it, or never had it. Stop routing there until a list says so.
                self.on_model_gone(meter.model, f"Retired: `{meter.model.provider}` answered that "
                                                f"`{meter.model.upstream_id}` does not exist (HTTP 404).")
            failure = meter.wire.failure(opened.failure)
            head.status, head.body = failure.status, failure.body
            head.headers = [*failure.headers, *meter.rate_headers]
            meter.status = head.status
            meter.error_code = error_code_of(opened.failure.body)  # OpenAI-shaped inside OneKey
            yield head
            return
        head.headers = [(k.lower(), v) for k, v in resp.headers.items() if k.lower() in PASSED_RESPONSE_HEADERS]
        head.headers += meter.rate_headers
        try:
            head.status = meter.status = resp.status
            if not upstream.stream:
                head.body = await resp.read()
                meter.ttfb = time.monotonic()
                meter.output.append(head.body)
                meter.usage = meter.wire.usage_of_body(head.body)
                if type(meter.wire) is TranslatedWire:
                    _translate_whole(meter.wire, head, meter)
                meter.answered = True
                # On record (journaled) before the answer leaves: a core killed once the client
                # has it has not lost its charge.
                if meter.usage is None and meter.wire.billable:
                    await self.tokens.ready()
                self._record(meter, request_id)
                yield head
            else:
                meter.answered = True
                yield head
                async with aclosing(self._stream(resp, meter, drop_usage_chunk, channel, request_id)) as pieces:
                    async for piece in pieces:
                        yield piece
                meter.delivered = True
        except UpstreamError as exc:
            self.pool.health(channel).failure()
            # Nothing was sent yet for a non-stream answer: a clean error response.
            if head.body is None and not upstream.stream:
                failure = meter.wire.failure(UpstreamFailure(
                    exc.status, openai_error(exc.message, "api_error", exc.code), True,
                    [("content-type", "application/json"), ("x-should-retry", "false")]))
                head.status = meter.status = failure.status
                meter.error_code = exc.code or "upstream_error"
                head.body, head.headers = failure.body, [*failure.headers, *meter.rate_headers]
                yield head
                return
            raise
        finally:
            resp.close()
        if meter.usage is None:
            if meter.wire.billable:
                await self.tokens.ready()
            meter.usage = self._estimate(meter)
        yield Trailer(usage=meter.usage, cost_micro_usd=cost_micro_usd(meter.model, meter.usage),
                      request_id=request_id)

    async def _stream(self, resp: UpstreamResponse, meter: _Meter, drop_usage_chunk: bool,
                      channel: ChannelSettings, request_id: str) -> AsyncIterator[bytes]:
        scanner = meter.wire.scanner(drop_usage_chunk)
        last_event = meter.wire.last_event_lines
        try:
            async for data in resp.chunks():
                if not meter.ttfb:
                    meter.ttfb = time.monotonic()
                meter.output.append(data)
                out = scanner.feed(data)
                if out:
                    if not meter.seq and ends_stream(out, last_event):
                        # The answer's last event: its charge goes on record (journaled) before
                        # the event leaves, so a core killed once the client has it loses nothing.
                        meter.usage, meter.partial = scanner.usage, scanner.partial
                        meter.status = scanner.failure_status or meter.status
                        if meter.usage is None and meter.wire.billable:
                            await self.tokens.ready()
                        self._record(meter, request_id)
                    yield out
            rest = scanner.finish()
            if rest:
                yield rest
            if scanner.failure_status:
                # The provider's own error event ended the answer (passed on as it came):
                # its trouble, so the breaker learns of it and the usage event says so.
                self.pool.health(channel).failure()
                meter.status = scanner.failure_status
        except UpstreamError as exc:
            # After the first byte there is no failover: end the stream with an error event
            # the client's SDK raises on. The breaker still learns of the broken answer.
            self.pool.health(channel).failure()
            meter.status = exc.status
            meter.error_code = exc.code or "upstream_error"
            yield meter.wire.stream_error(exc.message, exc.code)
        finally:
            if not meter.seq:  # recorded at the last event: its usage stands
                meter.usage, meter.partial = scanner.usage, scanner.partial

    def _record(self, meter: _Meter, request_id: str) -> int:
        """Settle the reservation and queue the usage event (metadata only, journaled); once per
        request, whichever comes first: the answer's last bytes, or its end. Its sequence number."""
        if meter.seq:
            return meter.seq
        now = time.monotonic()
        if meter.usage is not None:
            usage = meter.usage
        elif meter.answered:
            usage = meter.usage = self._estimate(meter)  # cut stream, or usage missing or unbelievable
        else:
            usage = Usage()  # refused or failed before anything was produced
        cost = cost_micro_usd(meter.model, usage)
        charged = self.credits.settle(meter.reservation, cost)
        if self.spend is not None:
            self.spend.settle(meter.hold, charged)
        meter.output.clear()
        status = 499 if meter.cancelled else (meter.status or 502)
        error_code = "client_closed" if meter.cancelled else (
            meter.error_code or ("" if status < 400 else "upstream_error"))
        meter.seq = self.recorder.record({
            "request_id": request_id, "time": utcnow(), "project_id": meter.identity.project_id,
            "key_id": meter.identity.key_id, "model": meter.model.id, "provider": meter.model.provider,
            "channel": meter.channel, "endpoint": meter.endpoint, "stream": meter.stream,
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cached_input_tokens": usage.cached_input_tokens, "reasoning_tokens": usage.reasoning_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "estimated": usage.estimated, "cost_micro_usd": cost, "charged_micro_usd": charged,
            "status": status, "latency_ms": int((now - meter.started) * 1000),
            "ttfb_ms": int(((meter.ttfb or now) - meter.started) * 1000),
            "error_code": error_code, "requested_model": meter.requested_model,
        })
        return meter.seq

    def _record_refusal(self, refusal: _Refusal, exc: CoreError, request_id: str) -> None:
        """A usage event for a request refused before any provider was asked, when a project is known.

        A key the store does not know belongs to nobody: its refusal is only logged.
        """
        identity = refusal.identity
        if identity is None:
            return
        model = refusal.model
        self.recorder.record({
            "request_id": request_id, "time": utcnow(), "project_id": identity.project_id,
            "key_id": identity.key_id, "model": model.id if model else "", "provider": model.provider if model else "",
            # Only the API's own endpoints are kept: to a gRPC caller `endpoint` is free text.
            "channel": "", "endpoint": refusal.endpoint if refusal.endpoint in ENDPOINTS else "",
            "stream": refusal.stream,
            "input_tokens": 0, "output_tokens": 0, "cached_input_tokens": 0, "reasoning_tokens": 0,
            "cache_write_tokens": 0, "estimated": False, "cost_micro_usd": 0, "charged_micro_usd": 0, "status": exc.http_status,
            "latency_ms": int((time.monotonic() - refusal.started) * 1000), "ttfb_ms": 0,
            "error_code": exc.code[:64], "requested_model": refusal.requested_model,
        })

    @staticmethod
    def _estimating(meter: _Meter) -> bool:
        """Whether _record will count tokens: an answer began, the provider's usage never came."""
        return meter.usage is None and meter.answered and meter.wire.billable

    def _estimate(self, meter: _Meter) -> Usage:
        """Usage by local token count, flagged as estimated: never free, never a crash.

        The input side the provider already reported (a cut Anthropic stream) is kept."""
        if not meter.wire.billable:
            return Usage()
        output = self.tokens.count("".join(meter.wire.output_texts(meter.output, meter.stream)))
        if meter.partial is not None:
            return replace(meter.partial, output_tokens=output, estimated=True)
        prompt = sum(self.tokens.count(t) + 4 for t in meter.wire.prompt_texts(meter.body))
        return Usage(input_tokens=max(prompt, 1), output_tokens=output, estimated=True)


_ABSENT = object()


# Client headers meant for the client's own API only: not sent to an upstream of another format.
_FORMAT_HEADERS = ("anthropic-", "openai-")


def _translated_call(call: ForwardInput, req: ClientRequest, model: ModelInfo, provider: Provider,
                     translator: Translator, client_headers: dict[str, str]) -> tuple[TranslatedWire, UpstreamCall]:
    """The translated request's Wire and upstream call; InvalidRequest naming what cannot go."""
    try:
        body = translator.request(req.body, model.upstream_id)
    except TranslationError as exc:
        message = exc.message if exc.param in exc.message else f"{exc.message} (`{exc.param}`)"
        raise InvalidRequest(message, param=exc.param, code="unsupported_parameter") from None
    except Exception as exc:  # a body the translator cannot read: the client's, most likely
        logger.warning("translation failed: endpoint=%s model=%s error=%s", call.endpoint, model.id,
                       type(exc).__name__)
        raise InvalidRequest(f"The request could not be translated for `{model.id}`; check its fields.",
                             code="untranslatable_request") from None
    body = dict(body)
    body["model"] = model.upstream_id
    upstream_endpoint = translator.upstream
    if req.stream:
        body["stream"] = True
        if upstream_endpoint == "chat/completions":
            # Usage is what the request is billed from: always asked for (the translator drops it).
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream_options", None)
    prepared = provider.prepare(body, upstream_endpoint)
    headers = {k: v for k, v in client_headers.items() if not k.startswith(_FORMAT_HEADERS)}
    upstream = UpstreamCall(endpoint=upstream_endpoint, body=json.dumps(prepared, ensure_ascii=False).encode(),
                            model=model, stream=req.stream, headers=headers, parsed=prepared)
    client_wire = MESSAGES_WIRE if call.endpoint == MESSAGES else OPENAI_WIRE
    return TranslatedWire(translator, req.model_name, client_wire, provider.wire(upstream_endpoint)), upstream


def _translate_whole(wire: TranslatedWire, head: Head, meter: _Meter) -> None:
    """A whole upstream answer in the client's format (its usage was read before)."""
    try:
        head.body = wire.response(head.body or b"")
    except Exception as exc:  # an upstream answer the translator cannot read: the provider's fault
        logger.warning("answer translation failed: model=%s error=%s", meter.model.id, type(exc).__name__)
        failure = wire.failure(UpstreamFailure(502, openai_error(
            "The provider's answer could not be translated.", "api_error", "bad_upstream_response"), False))
        head.status = meter.status = failure.status
        meter.error_code = "bad_upstream_response"
        head.body = failure.body
        head.headers = [("content-type", "application/json"), *meter.rate_headers]


def _upstream_body(raw: bytes, req: ClientRequest, prepared: dict, body: dict, upstream_id: str,
                   chat_stream: bool, add_usage: bool) -> bytes:
    """The body for the provider: the client's bytes with `model` (and the usage request of a
    chat stream) spliced in when nothing else changed, else the prepared body encoded again.

    `body` is what went into the provider's prepare(), `prepared` what came out: prepare()
    returns a new value for any field it changes, so the same values mean nothing else did.
    A chat stream's `stream_options` was set here: the same as the client's unless `add_usage`.
    """
    set_here = ("model", "stream_options") if chat_stream else ("model",)
    if prepared is body and len(body) == len(req.body) + (add_usage and "stream_options" not in req.body) and all(
            body.get(k, _ABSENT) is v for k, v in req.body.items() if k not in set_here):
        spliced = with_model(raw, req.body, req.model_name, upstream_id, add_usage)
        if spliced is not None:
            return spliced
    return json.dumps(prepared, ensure_ascii=False).encode()


def forwarded_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The client headers for the provider: the allowlisted ones, checked as the edge's HTTP
    parser checks them; InvalidRequest for a header no HTTP request could carry."""
    if len(headers) > MAX_CLIENT_HEADERS:
        raise InvalidRequest(f"Too many headers: at most {MAX_CLIENT_HEADERS}.", code="invalid_header")
    kept: dict[str, str] = {}
    for name, value in headers:
        if (not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value)
                or len(name) + len(value.encode("utf-8", "surrogatepass")) + 2 > MAX_HEADER_BYTES):
            # Never quoted back: the name or value is the caller's text.
            raise InvalidRequest("A header name or value is malformed or too large.", code="invalid_header")
        lowered = name.lower()
        if lowered in FORWARDED_CLIENT_HEADERS:
            kept[lowered] = value
    return kept
