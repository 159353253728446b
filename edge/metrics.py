"""Prometheus metrics of the edge, in a registry owned by the app (no globals)."""
from __future__ import annotations

from aiohttp import web, web_response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

SERVER_NAME = "onekey"  # the Server header of every answer: no software names, no versions


async def hide_server_version(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: aiohttp would announce `Python/3.x aiohttp/3.x`."""
    response.headers["Server"] = SERVER_NAME


def hide_protocol_server_version() -> None:
    """The same for answers aiohttp's HTTP layer makes itself (a malformed request line or
    header gets its 400 below the app, where no signal reaches). aiohttp has no setting for
    that Server header, only this constant of its response module; the client side keeps its own."""
    web_response.SERVER_SOFTWARE = SERVER_NAME


class EdgeMetrics:
    """Counters by endpoint and status class: labels never carry content, keys or ids."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("onekey_edge_requests_total", "Requests answered by the edge",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("onekey_edge_request_seconds", "Time to the end of the answer",
                                 ["endpoint"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.first_byte = Histogram("onekey_edge_first_byte_seconds", "Time to the response head",
                                    ["endpoint"], registry=self.registry,
                                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.in_flight = Gauge("onekey_edge_in_flight", "Requests being answered", registry=self.registry)
        self._children: dict[tuple[int, tuple[str, ...]], object] = {}

    def child(self, metric: Counter | Histogram, *values: str):
        """metric.labels(*values), kept: labels() takes a lock and checks its values on every call.

        The label values are a handful of endpoints and status classes, so this stays small.
        """
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found


def create_metrics_app(metrics: EdgeMetrics) -> web.Application:
    """A tiny app serving GET /metrics for the edge, meant for an address of its own."""

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

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
