"""Prometheus metrics of the edge, in a registry owned by the app (no globals)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
