"""Typed keys of what the edge's app holds (aiohttp AppKey, no module globals)."""
from __future__ import annotations

from aiohttp import web

from edge.core import Core
from edge.deadlines import Deadlines
from edge.metrics import EdgeMetrics, MetricsServer
from edge.settings import EdgeSettings

SETTINGS = web.AppKey("settings", EdgeSettings)
CORE = web.AppKey("core", Core)  # gRPC or in-process: the edge cannot tell
METRICS = web.AppKey("metrics", EdgeMetrics)
CORE_DEADLINES = web.AppKey("core_deadlines", Deadlines)  # every core call within [edge].core_timeout
METRICS_SERVER = web.AppKey("metrics_server", MetricsServer)  # only when [edge].metrics_listen is set
