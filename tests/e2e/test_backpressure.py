"""A client that stops reading a stream: the edge's memory stays flat and the provider is held
back (back-pressure through the edge, the gRPC stream and the core), instead of buffering.
"""
from __future__ import annotations

import json
import socket
import time

import pytest
from aiohttp import web

from tests.procs import Processes

CHUNK = b"data: " + json.dumps({"id": "chatcmpl-x", "object": "chat.completion.chunk", "model": "m", "choices": [
    {"index": 0, "delta": {"content": "lorem ipsum dolor sit amet " * 150}, "finish_reason": None}]}).encode() + b"\n\n"
ENDLESS_LIMIT = 1024 * 1024 * 1024  # what the provider would send if nothing held it back


class EndlessProvider:
    """An OpenAI-style provider whose stream never ends; counts the bytes it got to write."""

    def __init__(self) -> None:
        self.sent = 0
        self.ended = False
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            while self.sent < ENDLESS_LIMIT:
                await resp.write(CHUNK)  # waits while the reader side is full
                self.sent += len(CHUNK)
        finally:
            self.ended = True
        return resp

    async def stop(self) -> None:
        await self.runner.cleanup()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").path.isdir("/proc"), reason="measures RSS through /proc")
def test_a_reader_that_stops_reading_holds_the_provider_back(tmp_path, loop_thread):
    provider = EndlessProvider()
    loop_thread.run(provider.start())
    procs = Processes(tmp_path, f"sqlite:///{tmp_path}/router.db",
                      f'[[channels]]\nname = "endless"\nprovider = "openai"\n'
                      f'base_url = "http://127.0.0.1:{provider.port}/v1"\napi_key = "sk-endless"\n')
    try:
        _, key = procs.new_key()
        edge_before, core_before = rss_mib(procs.edge.pid), rss_mib(procs.core.pid)
        body = json.dumps({"model": "openai/gpt-4.1-mini", "stream": True,
                           "messages": [{"role": "user", "content": "go on forever"}]}).encode()
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            sock.connect(("127.0.0.1", procs.edge_port))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode()
                         + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            assert b" 200 " in sock.recv(4096)
            # Now read nothing: every hop fills up and the provider should stall.
            time.sleep(3)
            stalled_at = provider.sent
            time.sleep(3)
            edge_grew, core_grew = rss_mib(procs.edge.pid) - edge_before, rss_mib(procs.core.pid) - core_before
            sent = provider.sent
            # Reading again lets it flow again.
            sock.settimeout(5)
            deadline = time.monotonic() + 20
            while provider.sent == sent and time.monotonic() < deadline:
                sock.recv(1024 * 1024)
            assert provider.sent > sent
        # The client has gone: the call upstream ends too.
        deadline = time.monotonic() + 10
        while not provider.ended and time.monotonic() < deadline:
            time.sleep(0.05)
        assert provider.ended
    finally:
        procs.stop()
        loop_thread.run(provider.stop())
    print(f"back-pressure: provider wrote {stalled_at / 2**20:.1f} MiB then {sent / 2**20:.1f} MiB after 3 s more "
          f"without a read; RSS growth edge {edge_grew:.1f} MiB, core {core_grew:.1f} MiB")
    assert sent - stalled_at < 1024 * 1024  # held back, not flowing into buffers
    assert sent < 64 * 1024 * 1024
    assert edge_grew < 32 and core_grew < 32
