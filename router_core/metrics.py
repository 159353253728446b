"""The core's Prometheus endpoint: channel health, read from the breakers at scrape time,
rate-limit refusals, the credit this replica took back from leases of stopped replicas, and the
usage events the store refused (set aside so that the others are written).

It lives in the core because the breakers do (the edge holds no business state). Values are
computed when Prometheus scrapes, so the hot path pays nothing for them. Labels are channel
and provider names or a limit's scope only: never a key, a project or any content.

prometheus_client is imported only when the endpoint is configured ([core] metrics_listen):
the collectors need nothing of it but its metric families, made at scrape time.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

from aiohttp import web

from router_core.breaker import CLOSED, HALF_OPEN, OPEN
from router_core.channels import ChannelPool
from router_core.credits import Credits
from router_core.key_spend import KeySpend
from router_core.metering import UsageRecorder
from router_core.ratelimit import RateLimiter
from router_core.readiness import Readiness

STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class ChannelCollector:
    """Breaker state, error rate, latency and counters of every channel."""

    def __init__(self, pool: ChannelPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = ["channel", "provider"]
        state = GaugeMetricFamily("onekey_channel_state", "Circuit state: 0 closed, 1 half-open, 2 open", labels=labels)
        rate = GaugeMetricFamily("onekey_channel_error_rate", "Share of failed attempts in the breaker window",
                                 labels=labels)
        p50 = GaugeMetricFamily("onekey_channel_latency_p50_seconds",
                                "Median time to the provider's response head (recent successes)", labels=labels)
        requests = CounterMetricFamily("onekey_channel_attempts", "Attempts sent to the channel", labels=labels)
        failures = CounterMetricFamily("onekey_channel_failures", "Attempts that failed (provider trouble)",
                                       labels=labels)
        opened = CounterMetricFamily("onekey_channel_opened", "Times the circuit opened", labels=labels)
        for channel in self._pool.channels:
            b = self._pool.health(channel)
            values = [channel.name, channel.provider]
            state.add_metric(values, STATE_VALUE[b.status()])
            rate.add_metric(values, b.error_rate())
            p50.add_metric(values, b.latency_p50())
            requests.add_metric(values, b.requests)
            failures.add_metric(values, b.failures)
            opened.add_metric(values, b.opened)
        yield from (state, rate, p50, requests, failures, opened)


class RateLimitCollector:
    """Requests refused by a rate limit (by the limit's scope), and shared-store fallbacks."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily

        refused = CounterMetricFamily("onekey_rate_limited_requests", "Requests refused by a rate limit",
                                      labels=["scope"])
        for scope, count in self._limiter.refused.items():
            refused.add_metric([scope], count)
        fallbacks = CounterMetricFamily(
            "onekey_rate_limit_store_fallbacks",
            "Requests counted in this replica's memory because Redis could not be reached")
        fallbacks.add_metric([], self._limiter.fallbacks)
        yield from (refused, fallbacks)


class LeaseCollector:
    """Leases of stopped replicas this replica reclaimed, and the unsettled credit they held."""

    def __init__(self, credits: Credits) -> None:
        self._credits = credits

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily("onekey_core_leases_reclaimed", "Leases of stopped core replicas reclaimed here",
                                  value=self._credits.reclaimed_leases)
        yield CounterMetricFamily(
            "onekey_core_leases_reclaimed_micro_usd",
            "Credit those leases held unsettled (requests in flight and unwritten charges of the stopped replica)",
            value=self._credits.reclaimed_micro_usd)


class SpendHoldCollector:
    """Holds on keys' spend limits of stopped replicas this replica let go of."""

    def __init__(self, spend: KeySpend) -> None:
        self._spend = spend

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily("onekey_core_spend_holds_reclaimed",
                                  "Spend-limit holds of stopped core replicas reclaimed here",
                                  value=self._spend.reclaimed_holds)
        yield CounterMetricFamily("onekey_core_spend_holds_reclaimed_micro_usd",
                                  "What those holds held (estimates of requests in flight and unwritten charges)",
                                  value=self._spend.reclaimed_micro_usd)


class UsageWriteCollector:
    """Usage events the store refused for what they held, set aside so the others are written."""

    def __init__(self, recorder: UsageRecorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily("onekey_core_usage_events_set_aside",
                                  "Usage events the store refused and that were set aside (logged by id)",
                                  value=self._recorder.set_aside)


class StoreCollector:
    """Whether the routing store answers, how long it has not, and what waits for it."""

    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        state = self._readiness.state()
        yield GaugeMetricFamily("onekey_core_store_up", "1 when the routing store answers, 0 when it is down",
                                value=1 if state.store == "up" else 0)
        yield GaugeMetricFamily("onekey_core_store_down_seconds", "How long the routing store has been down",
                                value=state.store_down_seconds)
        yield CounterMetricFamily("onekey_core_store_outages", "Times the routing store went down, since start",
                                  value=state.store_outages)
        yield CounterMetricFamily("onekey_core_store_refused_calls",
                                  "Store calls refused at once because the store was known down", value=state.store_refused_calls)
        yield GaugeMetricFamily("onekey_core_usage_backlog_events",
                                "Usage events not yet in the store (in memory and the journal)",
                                value=state.usage_backlog)
        yield GaugeMetricFamily("onekey_core_usage_journal_bytes", "Bytes of usage journal not yet in the store",
                                value=state.journal_bytes)
        yield GaugeMetricFamily("onekey_rate_limit_store_up",
                                "1 when rate limits are shared through Redis, 0 when counted locally (Redis "
                                "down); absent value -1: no Redis configured",
                                value={"shared": 1, "local": 0}.get(state.rate_limit_store, -1))


def create_metrics_app(pool: ChannelPool, limiter: RateLimiter | None = None,
                       credits: Credits | None = None, recorder: UsageRecorder | None = None,
                       spend: KeySpend | None = None, readiness: Readiness | None = None) -> web.Application:
    """A tiny app serving GET /metrics for the given pool (and rate limiter, and lease reclaims),
    and GET /readyz: 200 while the store answers, 503 with the store's state and backlog if not."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(ChannelCollector(pool))
    if limiter is not None:
        registry.register(RateLimitCollector(limiter))
    if credits is not None:
        registry.register(LeaseCollector(credits))
    if recorder is not None:
        registry.register(UsageWriteCollector(recorder))
    if spend is not None:
        registry.register(SpendHoldCollector(spend))
    if readiness is not None:
        registry.register(StoreCollector(readiness))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def readyz(request: web.Request) -> web.Response:
        if readiness is None:
            return web.json_response({"status": "ready"})
        state = readiness.state()
        return web.json_response({"status": "ready" if state.ready else "degraded", **asdict(state)},
                                 status=200 if state.ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/readyz", readyz)
    return app


async def start_metrics(pool: ChannelPool, listen: str, limiter: RateLimiter | None = None,
                        credits: Credits | None = None, recorder: UsageRecorder | None = None,
                        spend: KeySpend | None = None, readiness: Readiness | None = None) -> tuple[web.AppRunner, int]:
    """Serve /metrics and /readyz on listen (host:port; port 0 picks one); returns the runner and port."""
    runner = web.AppRunner(create_metrics_app(pool, limiter, credits, recorder, spend, readiness),
                           access_log=None)
    await runner.setup()
    host, _, port = listen.rpartition(":")
    site = web.TCPSite(runner, host or "127.0.0.1", int(port))
    await site.start()
    return runner, runner.addresses[0][1]
