"""The fault-injecting proxy the outage tests stand on does what each mode says."""
from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from tests.fakes.fault_proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def proxy():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with FaultProxy("127.0.0.1", server.server_address[1]) as p:
        yield p
    server.shutdown()
    server.server_close()


def _connect(proxy: FaultProxy, check: bool = True) -> socket.socket:
    """A connection through the proxy, once it carries bytes (accepted, upstream reached)."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    sock.settimeout(2)
    if check:
        sock.sendall(b".")
        assert sock.recv(1) == b"."
    return sock


def test_pass_carries_bytes_both_ways(proxy):
    with _connect(proxy) as sock:
        sock.sendall(b"hello")
        assert sock.recv(10) == b"hello"


def test_refuse_closes_the_port_and_keeps_open_connections(proxy):
    sock = _connect(proxy)
    proxy.set("refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    sock.sendall(b"still")
    assert sock.recv(10) == b"still"
    proxy.set("pass")
    with _connect(proxy) as again:
        again.sendall(b"back")
        assert again.recv(10) == b"back"
    sock.close()


def test_cut_resets_open_connections(proxy):
    sock = _connect(proxy)
    proxy.set("cut")
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        sock.sendall(b"x")
        if sock.recv(10) == b"":
            raise ConnectionResetError
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)


def test_hold_moves_nothing_until_it_ends(proxy):
    sock = _connect(proxy)
    proxy.set("hold")
    fresh = _connect(proxy, check=False)  # accepted, then silent
    sock.sendall(b"held")
    fresh.sendall(b"new")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(10)
    proxy.set("pass")
    sock.settimeout(2)
    assert sock.recv(10) == b"held"
    assert fresh.recv(10) == b"new"
    sock.close()
    fresh.close()
