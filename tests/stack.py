"""The real core and edge (and fake providers) on loopback ports, in a thread of their own.

Synchronous tests — the OpenAI SDK's sync client above all — talk to it over real sockets
while its event loop runs beside them.

ONEKEY_TEST_SHAPE picks how the edge reaches the core, as the two deployment shapes do:
`one-process` (the default, what `onekey up` runs: the edge calls the core in-process) or
`grpc` (separate components: the edge calls the core over gRPC on loopback). `make test` runs
the suite in the first shape, then every test module that talked to an edge again in the second.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import grpc

from edge.app import create_app
from edge.app import start as start_edge
from edge.settings import EdgeSettings
from onekey.v1 import admin_pb2, admin_pb2_grpc, metering_pb2, metering_pb2_grpc
from onekey_cli.inprocess import InProcessCore
from router_core.server import CoreServer, create_server
from router_core.settings import CoreSettings, Secret

SERVICE_TOKEN = "test-service-token"
SHAPES = ("one-process", "grpc")


def shape() -> str:
    """The deployment shape this run tests (ONEKEY_TEST_SHAPE)."""
    chosen = os.environ.get("ONEKEY_TEST_SHAPE", "one-process")
    if chosen not in SHAPES:
        raise RuntimeError(f"ONEKEY_TEST_SHAPE must be one of {', '.join(SHAPES)}, not {chosen!r}")
    return chosen


def note_edge_used() -> None:
    """Record the running test's module in $ONEKEY_TEST_EDGE_MODULES when it talks to an edge
    (asks for its address): `make test` runs those modules again in the other shape. A test
    that uses a stack only for its core does not depend on the shape."""
    path, current = os.environ.get("ONEKEY_TEST_EDGE_MODULES"), os.environ.get("PYTEST_CURRENT_TEST")
    if path and current:
        with open(path, "a") as f:
            f.write(current.split("::", 1)[0] + "\n")


class LoopThread:
    """An asyncio loop in a daemon thread; run(coro) waits for a result from it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class Stack:
    """Core + edge on port 0 with the given core settings; fakes started by the caller."""

    def __init__(self, core_settings: CoreSettings, edge_settings: EdgeSettings | None = None,
                 loop: LoopThread | None = None, **core_kwargs: Any) -> None:
        self.loop = loop or LoopThread()
        self._own_loop = loop is None
        settings = replace(core_settings, listen="127.0.0.1:0", service_token=Secret(SERVICE_TOKEN))
        self.core: CoreServer = self.loop.run(create_server(settings, **core_kwargs))
        edge = replace(edge_settings or EdgeSettings(), listen="127.0.0.1:0", core=f"127.0.0.1:{self.core.port}")
        self.shape = shape()
        in_process = InProcessCore(self.core.router) if self.shape == "one-process" else None
        self.edge_runner, self._edge_port = self.loop.run(self._start_edge(edge, in_process))
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.core.port}")
        self.metadata = (("authorization", f"Bearer {SERVICE_TOKEN}"),)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.metering = metering_pb2_grpc.MeteringServiceStub(self.channel)

    @staticmethod
    async def _start_edge(settings: EdgeSettings, core: InProcessCore | None):
        return await start_edge(settings, create_app(settings, core=core))  # the app is made in the loop

    @property
    def edge_port(self) -> int:
        note_edge_used()
        return self._edge_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}/v1"

    @property
    def shown_base_url(self) -> str:
        """The base URL as text to show (the account app's Quick start), for a test that does
        not call the edge: it does not count as using the edge."""
        return f"http://127.0.0.1:{self._edge_port}/v1"

    def new_key(self, credit_micro_usd: int = 10_000_000, free_requests: int = 0) -> tuple[str, str]:
        """A fresh project with credit, and a key of it: (project_id, secret)."""
        project = self.admin.CreateProject(admin_pb2.CreateProjectRequest(
            name="test", credit_micro_usd=credit_micro_usd, free_requests=free_requests), metadata=self.metadata)
        key = self.admin.CreateKey(admin_pb2.CreateKeyRequest(project_id=project.id, name="k"),
                                   metadata=self.metadata)
        return project.id, key.secret

    def call(self, fn: Callable[[], Coroutine]) -> Any:
        return self.loop.run(fn())

    def stop(self) -> None:
        self.channel.close()
        self.loop.run(self.edge_runner.cleanup())
        self.loop.run(self.core.stop(grace=5))
        if self._own_loop:
            self.loop.close()


def usage_events(services: Any, project_id: str, count: int, timeout: float = 10.0) -> list:
    """A project's usage events, newest first, once `count` are written (they are batched).

    `services` is anything with a `metering` stub and the service `metadata` (a Stack).
    """
    deadline = time.monotonic() + timeout
    while True:
        events = services.metering.ListUsageEvents(
            metering_pb2.ListUsageEventsRequest(project_id=project_id, page_size=500),
            metadata=services.metadata).events
        if len(events) >= count or time.monotonic() > deadline:
            return list(events)
        time.sleep(0.05)
