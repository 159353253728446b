"""Typed keys of what the edge's app holds (aiohttp AppKey, no module globals)."""
from __future__ import annotations

import grpc
from aiohttp import web

from edge.metrics import EdgeMetrics, MetricsServer
from edge.settings import EdgeSettings
from onekey.v1 import router_pb2_grpc

SETTINGS = web.AppKey("settings", EdgeSettings)
CHANNEL = web.AppKey("channel", grpc.aio.Channel)
CORE = web.AppKey("core", router_pb2_grpc.RouterServiceStub)
METRICS = web.AppKey("metrics", EdgeMetrics)
METRICS_SERVER = web.AppKey("metrics_server", MetricsServer)  # only when [edge].metrics_listen is set
