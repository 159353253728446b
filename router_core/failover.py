"""Opening the upstream call: channels in order until one answers, with breakers and retry-after.

Only what happens *before the first byte reaches the client* lives here; once a channel has
answered with a success head, the forwarder streams it and no failover is possible.

Per attempt:
- a channel whose breaker is open is skipped (a half-open one gets a single probe);
- connect errors, timeouts, 429, 5xx, a refused channel key, an exhausted provider account and
  unreadable (HTML) answers are the provider's trouble: the breaker learns a failure and the
  next channel is tried;
- a 4xx that judges the request (400, 404, 422, ...) goes back to the client at once: it would
  fail the same way everywhere, and the channel counts as healthy;
- `retry-after` (or `retry-after-ms`) on a failure pauses that channel; when it is the last one
  and the wait is within `max_retry_wait`, the wait is spent and the channel tried once more.
When every attempt fails the answer says `x-should-retry: false`: the SDKs would otherwise
multiply the load by their own retries of what OneKey already retried.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from router_core.availability import degraded_note
from router_core.channels import ChannelPool
from router_core.providers.base import (Provider, UpstreamCall, UpstreamError, UpstreamFailure,
                                        UpstreamResponse, openai_error)
from router_core.providers.openai_compat import PREVIEW_NOTE, with_note
from router_core.settings import ChannelSettings

logger = logging.getLogger(__name__)

MAX_ERROR_BODY = 64 * 1024


@dataclass(slots=True)
class Opened:
    """The outcome: a success response to stream, or the failure the client gets."""

    resp: UpstreamResponse | None
    channel: ChannelSettings | None
    failure: UpstreamFailure | None = None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asked to wait, from `retry-after-ms` or `retry-after` (seconds)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue  # an HTTP date: not worth parsing for a bounded wait
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _final(failure: UpstreamFailure, wait: float | None) -> UpstreamFailure:
    headers = [("content-type", "application/json"), ("x-should-retry", "false")]
    if wait is not None:
        headers.append(("retry-after", str(max(1, math.ceil(wait)))))
    return UpstreamFailure(failure.status, failure.body, failure.retryable, headers)


async def open_upstream(provider: Provider, pool: ChannelPool, channels: list[ChannelSettings],
                        http: object, call: UpstreamCall, *, max_attempts: int, max_retry_wait: float,
                        request_id: str = "") -> Opened:
    """Try channels in order until one answers with a success head or a client error."""
    queue = list(channels)
    attempts = 0
    failure: UpstreamFailure | None = None
    wait: float | None = None
    last: ChannelSettings | None = None
    retried_last = False
    while queue and attempts < max_attempts:
        channel = queue.pop(0)
        breaker = pool.health(channel)
        forced = retried_last and channel is last
        if not forced and not breaker.allow():
            continue
        attempts += 1
        last = channel
        started = time.monotonic()
        try:
            resp = await provider.send(http, channel, call)
            latency = time.monotonic() - started
            if resp.status < 400 and _looks_right(resp, call.stream):
                if not call.stream:
                    # A whole answer is read here: a provider that sent its head and then stalls
                    # (or breaks) on the body has sent the client nothing yet, so the next
                    # channel may still serve the request.
                    resp = await _whole(resp)
                breaker.success(latency)
                return Opened(resp, channel)
            try:
                raw = await _read_bounded(resp)
            finally:
                resp.close()
        except UpstreamError as exc:
            breaker.failure()
            _log(request_id, channel, provider, exc.code, attempts)
            failure, wait = UpstreamFailure(exc.status, openai_error(exc.message, "api_error", exc.code), True), None
            continue
        except asyncio.CancelledError:
            breaker.release()  # the client left mid-attempt: no verdict, let another probe go
            raise
        if resp.status < 400:  # a 200 with an HTML page: a proxy, not the provider's API
            verdict = UpstreamFailure(502, openai_error(
                "The provider returned an unreadable answer.", "api_error", "bad_upstream_response"), True)
        else:
            verdict = provider.error(resp.status, raw, channel, call.model)
        if not verdict.retryable:
            breaker.success(latency)
            headers = [("content-type", "application/json")]
            headers += [(k, v) for k, v in resp.headers.items() if k.lower() in ("retry-after", "retry-after-ms")]
            return Opened(None, channel, UpstreamFailure(verdict.status, verdict.body, False, headers))
        breaker.failure()
        _log(request_id, channel, provider, f"http_{resp.status}", attempts)
        failure, wait = verdict, retry_after(resp.headers)
        if wait is not None and not queue and attempts < max_attempts and wait <= max_retry_wait and not retried_last:
            # The last channel asked for a short pause: spend it and ask once more.
            await asyncio.sleep(wait)
            retried_last = True
            queue.append(channel)
        elif wait is not None:
            breaker.cool_down(min(wait, pool.health(channel).settings.max_cooldown))
    if failure is None:
        # No attempt at all: every channel's circuit is open.
        soonest = min((pool.health(c).retry_in() for c in channels), default=1.0)
        note = PREVIEW_NOTE if call.model.status == "preview" else ""
        # The words of the model's `degraded` status note in /v1/models.
        failure = UpstreamFailure(503, openai_error(
            f"The model `{call.model.id}` is degraded. {degraded_note(call.model, soonest)}{note}",
            "api_error", "provider_unavailable"), True)
        wait = soonest
    elif call.model.status == "preview" and b"preview" not in failure.body:
        failure = UpstreamFailure(failure.status, with_note(failure.body, PREVIEW_NOTE), True)
    return Opened(None, last, _final(failure, wait))


def _looks_right(resp: UpstreamResponse, stream: bool) -> bool:
    """A success head whose body is the kind asked for (an HTML page is a proxy's, not an API's)."""
    ctype = resp.headers.get("content-type", resp.headers.get("Content-Type", "")).lower()
    if stream:
        return "event-stream" in ctype
    return "html" not in ctype


def _log(request_id: str, channel: ChannelSettings, provider: Provider, what: str, attempt: int) -> None:
    logger.warning("upstream failed: request_id=%s channel=%s provider=%s code=%s attempt=%d",
                   request_id, channel.name, provider.name, what, attempt)


class WholeResponse:
    """A success answer already read in full: what the forwarder reads of a non-stream call."""

    __slots__ = ("status", "headers", "_body")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self._body = body

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body

    async def read(self) -> bytes:
        return self._body

    def close(self) -> None:
        pass


async def _whole(resp: UpstreamResponse) -> WholeResponse:
    """The answer read to its end (UpstreamError when its body stalls past the limit or breaks)."""
    try:
        body = await resp.read()
    finally:
        resp.close()
    return WholeResponse(resp.status, resp.headers, body)


async def _read_bounded(resp: UpstreamResponse) -> bytes:
    try:
        data = await resp.read()
    except UpstreamError:
        return b""
    return data[:MAX_ERROR_BODY]
