"""Typed keys of what the edge's app holds (aiohttp AppKey, no module globals)."""
from __future__ import annotations

from aiohttp import web

from edge.core import Core
from edge.metrics import EdgeMetrics, MetricsServer
from edge.settings import EdgeSettings

SETTINGS = web.AppKey("settings", EdgeSettings)
CORE = web.AppKey("core", Core)  # gRPC or in-process: the edge cannot tell
METRICS = web.AppKey("metrics", EdgeMetrics)
METRICS_SERVER = web.AppKey("metrics_server", MetricsServer)  # only when [edge].metrics_listen is set
