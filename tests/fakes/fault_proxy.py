"""A TCP proxy that injects the faults a network and a restarting server cause.

Placed between OneKey and PostgreSQL, Redis or the core, it passes bytes both ways until told
otherwise:
- `refuse`: new connections are refused (the port is closed); open ones go on.
- `cut`: open connections are reset (RST, as a restarted server's host sends) and new ones
  refused, as during a database restart or failover.
- `hold`: nothing moves, on open connections or new ones, which are accepted: a partition
  where the peer's kernel still holds the connection. Bytes sent meanwhile arrive when it ends.
- `pass`: back to normal; a listener closed by `refuse` or `cut` opens again on the same port.

It runs its own event loop in a thread, so a test (sync or async) or any process can use it.
"""
from __future__ import annotations

import asyncio
import socket
import struct
import threading

MODES = ("pass", "refuse", "cut", "hold")


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, listen_port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = listen_port
        self.mode = "pass"
        self.accepted = 0  # connections accepted since start
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._flowing: asyncio.Event | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._setup())
        return self

    def set(self, mode: str) -> None:
        """Switch to `mode` (see the module docstring); returns once it is in force."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self._call(self._switch(mode))

    def stop(self) -> None:
        self._call(self._close_all(reset=False))
        self._call(self._cancel_tasks())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (postgresql://, redis://, ...)."""
        scheme, rest = url.split("://", 1)
        netloc, _, path = rest.partition("/")
        userinfo = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}/{path}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop's side -------------------------------------------------------------------------

    def _call(self, coro) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _setup(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: str) -> None:
        self.mode = mode
        if mode == "hold":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode in ("refuse", "cut") and self._server is not None:
            self._server.close()  # the listener only: connections it accepted go on
            self._server = None
        if mode == "cut":
            await self._close_all(reset=True)
        if mode in ("pass", "hold") and self._server is None:
            await self._listen()

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_all(self, reset: bool) -> None:
        for writer in list(self._writers):
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    try:  # linger 0: close() sends RST, not FIN
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                writer.transport.abort()
            else:
                writer.close()
        self._writers.clear()
        if self._server is not None and not reset:
            self._server.close()
            self._server = None

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(client_w)
        await self._flowing.wait()  # a connection made during a hold is accepted, then silent
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.transport.abort()
            self._writers.discard(client_w)
            return
        self._writers.add(upstream_w)
        await asyncio.gather(self._pump(client_r, upstream_w, client_w), self._pump(upstream_r, client_w, upstream_w),
                             return_exceptions=True)
        self._writers.discard(client_w)
        self._writers.discard(upstream_w)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    other: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            # One side ended or was reset: the other goes the same way.
            for w in (writer, other):
                if not w.is_closing():
                    w.transport.abort() if self.mode == "cut" else w.close()
