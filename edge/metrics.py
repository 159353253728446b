"""Prometheus metrics of the edge, owned by the app (no globals).

Counted as plain numbers on the hot path and turned into Prometheus samples when scraped, as
the core's are; prometheus_client is imported only when the endpoint is configured
([edge].metrics_listen).
"""
from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from aiohttp import web, web_response

SERVER_NAME = "onekey"  # the Server header of every answer: no software names, no versions


async def hide_server_version(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: aiohttp would announce `Python/3.x aiohttp/3.x`."""
    response.headers["Server"] = SERVER_NAME


def hide_protocol_server_version() -> None:
    """The same for answers aiohttp's HTTP layer makes itself (a malformed request line or
    header gets its 400 below the app, where no signal reaches). aiohttp has no setting for
    that Server header, only this constant of its response module; the client side keeps its own."""
    web_response.SERVER_SOFTWARE = SERVER_NAME


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))


class EdgeMetrics:
    """Counters by endpoint and status class: labels never carry content, keys or ids.

    Kept as plain numbers, turned into Prometheus samples when scraped: prometheus_client's
    own metrics take a lock and look a child up on every count, a cost every request paid.
    The edge counts and is scraped in one event loop, so no lock is needed.
    """

    def __init__(self) -> None:
        self.in_flight = 0  # requests being answered
        self._requests: dict[tuple[str, str], _Count] = {}
        self._latency: dict[str, _Histogram] = {}
        self._first_byte: dict[str, _Histogram] = {}

    def answered(self, endpoint: str, status: str, seconds: float) -> None:
        """One request answered (status is a class: 2xx, 4xx, ... or aborted), in `seconds`."""
        count = self._requests.get((endpoint, status))
        if count is None:
            count = self._requests[(endpoint, status)] = _Count()
        count.value += 1
        _observe(self._latency, endpoint, seconds)

    def head_sent(self, endpoint: str, seconds: float) -> None:
        """The answer's head was ready `seconds` after the request came."""
        _observe(self._first_byte, endpoint, seconds)


class _Count:
    __slots__ = ("value", "created")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()


class _Histogram:
    __slots__ = ("buckets", "sum", "created")

    def __init__(self) -> None:
        self.buckets = [0] * len(LATENCY_BUCKETS)  # per bucket, not cumulative
        self.sum = 0.0
        self.created = time.time()


def _observe(by_endpoint: dict[str, _Histogram], endpoint: str, seconds: float) -> None:
    histogram = by_endpoint.get(endpoint)
    if histogram is None:
        histogram = by_endpoint[endpoint] = _Histogram()
    histogram.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # a bucket holds values <= its bound
    histogram.sum += seconds


class EdgeCollector:
    """EdgeMetrics as the samples prometheus_client's Counter, Histogram and Gauge would give."""

    def __init__(self, metrics: EdgeMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = self._metrics
        requests = CounterMetricFamily("onekey_edge_requests_total", "Requests answered by the edge",
                                       labels=["endpoint", "status"])
        for (endpoint, status), count in m._requests.items():
            requests.add_metric([endpoint, status], count.value, created=count.created)
        yield requests
        yield _histogram("onekey_edge_request_seconds", "Time to the end of the answer", m._latency)
        yield _histogram("onekey_edge_first_byte_seconds", "Time to the response head", m._first_byte)
        yield GaugeMetricFamily("onekey_edge_in_flight", "Requests being answered", value=m.in_flight)


def _histogram(name: str, documentation: str, by_endpoint: dict[str, _Histogram]):
    from prometheus_client.core import HistogramMetricFamily
    from prometheus_client.samples import Sample
    from prometheus_client.utils import floatToGoString

    family = HistogramMetricFamily(name, documentation, labels=["endpoint"])
    bounds = [floatToGoString(b) for b in LATENCY_BUCKETS]
    for endpoint, histogram in by_endpoint.items():
        family.add_metric([endpoint], list(zip(bounds, accumulate(histogram.buckets))), histogram.sum)
        family.samples.append(Sample(name + "_created", {"endpoint": endpoint}, histogram.created))
    return family


def create_metrics_app(metrics: EdgeMetrics) -> web.Application:
    """A tiny app serving GET /metrics for the edge, meant for an address of its own."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(EdgeCollector(metrics))

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.on_response_prepare.append(hide_server_version)
    app.router.add_get("/metrics", scrape)
    return app


class MetricsServer:
    """The edge's Prometheus endpoint on its own listen address, off the public API port."""

    def __init__(self, metrics: EdgeMetrics, listen: str) -> None:
        self._metrics = metrics
        self._listen = listen
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on the address (port 0 picks one; the real one is then in .port)."""
        hide_protocol_server_version()
        self._runner = web.AppRunner(create_metrics_app(self._metrics), access_log=None)
        await self._runner.setup()
        host, _, port = self._listen.rpartition(":")
        await web.TCPSite(self._runner, host.strip("[]") or "127.0.0.1", int(port)).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
